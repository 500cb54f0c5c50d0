package clients_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nova-auth/nova-auth/clients"
	"github.com/nova-auth/nova-auth/internal/testenv"
	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

// TestTLSAgainstTheService: the library's TLS options against an
// auth-service serving mutual TLS with a caller policy. A client with a
// certificate from the service's client CA gets in, and the policy applies
// to its identity; one without a certificate, or plaintext, never becomes
// ready.
func TestTLSAgainstTheService(t *testing.T) {
	const (
		caller = "spiffe://nova/ns/feed/sa/feed"
		other  = "spiffe://nova/ns/admin/sa/console"
	)
	dir := t.TempDir()
	ca, err := testenv.NewCA("nova test CA")
	if err != nil {
		t.Fatal(err)
	}
	srvCrt, srvKey, err := ca.IssueFiles(dir, "server", testenv.CertOptions{DNSNames: []string{"auth.nova.svc"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	cliCrt, cliKey, err := ca.IssueFiles(dir, "client", testenv.CertOptions{URIs: []string{caller}})
	if err != nil {
		t.Fatal(err)
	}
	caFile, err := ca.WriteCert(dir, "ca.crt")
	if err != nil {
		t.Fatal(err)
	}

	var dbURL string
	for _, kv := range backends[0].opts.Env {
		if v, ok := strings.CutPrefix(kv, "DATABASE_URL="); ok {
			dbURL = v
		}
	}
	b, err := newBackend("127.0.0.1", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	b.opts.Env = append(b.opts.Env, "TLS_CERT_FILE="+srvCrt, "TLS_KEY_FILE="+srvKey, "TLS_CLIENT_CA_FILE="+caFile,
		"CALLER_POLICY=VerifyToken=*;GetUser="+other)
	if err := b.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.stop() })

	mtls := func(c *clients.Config) {
		c.TLS = clients.TLSConfig{Enabled: true, CAFile: caFile, CertFile: cliCrt, KeyFile: cliKey, ServerName: "auth.nova.svc"}
	}
	pool, _ := newPool(t, []string{b.grpcAddr()}, mtls)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pool.WaitReady(ctx); err != nil {
		t.Fatalf("mutual TLS client: %v", err)
	}
	if _, err := pool.Auth().VerifyToken(ctx, &authpb.VerifyTokenRequest{Token: "not-a-token"}); err != nil {
		t.Fatalf("VerifyToken, allowed to any verified caller: %v", err)
	}
	_, err = pool.Auth().GetUser(ctx, &authpb.GetUserRequest{UserId: aliceID})
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), caller) {
		t.Fatalf("GetUser by %s: %v, want PERMISSION_DENIED naming the caller", caller, err)
	}

	for _, tc := range []struct {
		name string
		edit func(*clients.Config)
	}{
		{"TLS without a client certificate", func(c *clients.Config) {
			c.TLS = clients.TLSConfig{Enabled: true, CAFile: caFile, ServerName: "auth.nova.svc"}
		}},
		{"plaintext", nil},
		{"server name not in the certificate", func(c *clients.Config) {
			mtls(c)
			c.TLS.ServerName = "auth.elsewhere"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := newPool(t, []string{b.grpcAddr()}, tc.edit)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := p.WaitReady(ctx); err == nil {
				t.Fatal("became ready")
			}
		})
	}
}
