package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nova-auth/nova-auth/internal/testenv"
)

// TestHealthcheckTLS: `healthcheck` speaks TLS and mutual TLS to a service
// that serves them (the chart's test pod with tls.enabled), and fails, with
// the reason, without the client certificate or the CA.
func TestHealthcheckTLS(t *testing.T) {
	env := newDB(t)
	if _, stderr, code := cli(t, env, "", "migrate"); code != 0 {
		t.Fatal(stderr)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ca, err := testenv.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	crt, key, _, err := ca.Issue(testenv.CertOptions{DNSNames: []string{"auth.nova.svc"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	caFile, crtFile, keyFile := write("ca.crt", ca.PEM), write("tls.crt", crt), write("tls.key", key)
	env = append(env, "SHUTDOWN_DELAY=0s", "TLS_CERT_FILE="+crtFile, "TLS_KEY_FILE="+keyFile, "TLS_CLIENT_CA_FILE="+caFile)
	var logs strings.Builder
	p, err := testenv.Serve(bin, testenv.ServeOptions{Env: env, Log: &logs})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()

	mtls := []string{"healthcheck", "--addr", p.GRPCAddr, "--timeout", "1s", "--cacert", caFile, "--cert", crtFile, "--key", keyFile}
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, stderr, code := cli(t, nil, "", mtls...)
		if code == 0 && strings.Contains(out, "SERVING") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mutual TLS healthcheck never passed: %s %s\nlogs:\n%s", out, stderr, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
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
