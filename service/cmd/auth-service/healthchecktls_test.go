package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/nova-auth/nova-auth/internal/testenv"
	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

// TestHealthcheckTLS: `healthcheck` speaks TLS and mutual TLS to a service
// that serves them (the chart's test pod with tls.enabled), and fails, with
// the reason, without the client certificate or the CA.
// mtlsService is the binary serving mutual TLS with certificates made in
// the test; the server's certificate doubles as a client certificate.
type mtlsService struct {
	p                        *testenv.Proc
	ca                       *testenv.CA
	caFile, crtFile, keyFile string
	logs                     *testenv.LogBuffer
}

func serveMTLS(t *testing.T, extraEnv ...string) *mtlsService {
	t.Helper()
	env := newDB(t)
	if _, stderr, code := cli(t, env, "", "migrate"); code != 0 {
		t.Fatal(stderr)
	}
	dir := t.TempDir()
	ca, err := testenv.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	s := &mtlsService{ca: ca, logs: &testenv.LogBuffer{}}
	if s.crtFile, s.keyFile, err = ca.IssueFiles(dir, "tls", testenv.CertOptions{DNSNames: []string{"auth.nova.svc"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}); err != nil {
		t.Fatal(err)
	}
	if s.caFile, err = ca.WriteCert(dir, "ca.crt"); err != nil {
		t.Fatal(err)
	}
	env = append(env, "SHUTDOWN_DELAY=0s", "TLS_CERT_FILE="+s.crtFile, "TLS_KEY_FILE="+s.keyFile, "TLS_CLIENT_CA_FILE="+s.caFile)
	if s.p, err = testenv.Serve(bin, testenv.ServeOptions{Env: append(env, extraEnv...), Log: s.logs}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.p.Stop() })
	return s
}

// waitServing waits until a mutual TLS healthcheck passes and returns its
// command line.
func (s *mtlsService) waitServing(t *testing.T) []string {
	t.Helper()
	mtls := []string{"healthcheck", "--addr", s.p.GRPCAddr, "--timeout", "1s", "--cacert", s.caFile, "--cert", s.crtFile, "--key", s.keyFile}
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, stderr, code := cli(t, nil, "", mtls...)
		if code == 0 && strings.Contains(out, "SERVING") {
			return mtls
		}
		if time.Now().After(deadline) {
			t.Fatalf("mutual TLS healthcheck never passed: %s %s\nlogs:\n%s", out, stderr, s.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCallerPolicyLogged: a call CALLER_POLICY refuses is logged with the
// caller's identity and the method, as JSON, and answered PERMISSION_DENIED.
func TestCallerPolicyLogged(t *testing.T) {
	const allowed, refused = "spiffe://nova/ns/admin/sa/console", "spiffe://nova/ns/feed/sa/feed"
	s := serveMTLS(t, "CALLER_POLICY=ListUsers="+allowed+";*=*")
	s.waitServing(t)
	crt, key, _, err := s.ca.Issue(testenv.CertOptions{URIs: []string{refused}})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(s.ca.Cert)
	cc, err := grpc.NewClient(s.p.GRPCAddr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		RootCAs: roots, Certificates: []tls.Certificate{pair}, ServerName: "auth.nova.svc", MinVersion: tls.VersionTLS12})))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = authpb.NewAuthServiceClient(cc).ListUsers(ctx, &authpb.ListUsersRequest{})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("ListUsers by %s: %v, want PERMISSION_DENIED", refused, err)
	}
	want := []string{`"level":"WARN"`, `"msg":"call refused by CALLER_POLICY"`, `"method":"ListUsers"`, `"caller":"` + refused + `"`}
	logged := func() bool {
		for _, line := range strings.Split(s.logs.String(), "\n") {
			n := 0
			for _, w := range want {
				if strings.Contains(line, w) {
					n++
				}
			}
			if n == len(want) {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(5 * time.Second)
	for !logged() {
		if time.Now().After(deadline) {
			t.Fatalf("no log line with all of %v:\n%s", want, s.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHealthcheckTLS(t *testing.T) {
	s := serveMTLS(t)
	p, caFile, crtFile, keyFile := s.p, s.caFile, s.crtFile, s.keyFile
	dir := t.TempDir()
	mtls := s.waitServing(t)
	if out, stderr, code := cli(t, nil, "", append(mtls, "--server-name", "auth.nova.svc")...); code != 0 {
		t.Fatalf("--server-name auth.nova.svc: %s %s", out, stderr)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"plaintext", []string{}, ""},
		{"no client certificate", []string{"--cacert", caFile}, ""},
		{"server not trusted", []string{"--tls", "--cert", crtFile, "--key", keyFile}, "certificate"},
		{"wrong server name", []string{"--cacert", caFile, "--cert", crtFile, "--key", keyFile, "--server-name", "other.svc"}, "other.svc"},
		{"cert without key", []string{"--cert", crtFile}, "--cert and --key go together"},
		{"CA file missing", []string{"--cacert", filepath.Join(dir, "nope")}, "--cacert"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"healthcheck", "--addr", p.GRPCAddr, "--timeout", "1s"}, tc.args...)
			_, stderr, code := cli(t, nil, "", args...)
			if code == 0 {
				t.Fatal("passed")
			}
			if !strings.Contains(stderr, tc.wantErr) {
				t.Fatalf("stderr %q lacks %q", stderr, tc.wantErr)
			}
		})
	}
}
