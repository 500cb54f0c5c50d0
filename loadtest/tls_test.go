package main

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nova-auth/nova-auth/internal/testenv"
)

// TestMutualTLS: the load test's --cacert, --cert/--key and --server-name
// against the service serving mutual TLS with certificates made in the
// test; without the client certificate the pre-flight check refuses to run.
func TestMutualTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts PostgreSQL and the service (make test runs it without -short)")
	}
	ctx := context.Background()
	sv := newService(t, "loadtest_tls")
	bin, dbURL, dir, keys, env := sv.bin, sv.dbURL, sv.dir, sv.keys, sv.env
	ca, err := testenv.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	srvCrtFile, srvKeyFile, err := ca.IssueFiles(dir, "server", testenv.CertOptions{DNSNames: []string{"auth.nova.svc"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	cliCrtFile, cliKeyFile, err := ca.IssueFiles(dir, "client", testenv.CertOptions{URIs: []string{"spiffe://nova/ns/loadtest/sa/loadtest"}})
	if err != nil {
		t.Fatal(err)
	}
	caFile, err := ca.WriteCert(dir, "ca.crt")
	if err != nil {
		t.Fatal(err)
	}
	env = append(env,
		"TLS_CERT_FILE="+srvCrtFile, "TLS_KEY_FILE="+srvKeyFile, "TLS_CLIENT_CA_FILE="+caFile,
		"CALLER_POLICY=*=spiffe://nova/ns/loadtest/sa/loadtest")
	var logs bytes.Buffer
	p, err := testenv.Serve(bin, testenv.ServeOptions{Env: env, Log: &logs})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	mtls := []string{"healthcheck", "--addr", p.GRPCAddr, "--cacert", caFile, "--cert", cliCrtFile, "--key", cliKeyFile, "--timeout", "1s"}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := command(bin, nil, mtls...); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the service never became SERVING over mutual TLS")
		}
		time.Sleep(100 * time.Millisecond)
	}

	base := []string{"--addr", p.GRPCAddr, "--cacert", caFile, "--server-name", "auth.nova.svc", "--dial-timeout", "2s", "--progress", "0"}
	var stdout, stderr bytes.Buffer
	code := run(ctx, append(base, "--cert", cliCrtFile, "--key", cliKeyFile,
		"--seed", "20", "--database-url", dbURL, "--jwt-private-key-file", filepath.Join(keys, "private.pem"),
		"--jwt-issuer", "https://auth.nova.test", "--jwt-audience", "nova",
		"--rps", "300", "--duration", "4s", "--warmup-time", "1s", "--min-rps", "0", "--p95", "0", "--p99", "0",
		"--out", filepath.Join(dir, "out")), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("mutual TLS run: exit %d\nstdout:\n%s\nstderr:\n%s\nlogs:\n%s", code, stdout.String(), stderr.String(), logs.String())
	}

	stderr.Reset()
	code = run(ctx, append(base, "--data", filepath.Join(dir, "out", "data.json"), "--duration", "3s", "--out", t.TempDir()), &stdout, &stderr)
	// With TLS 1.3 the server's refusal reaches the client as a broken
	// connection, not an alert: the hint names the client certificate.
	if code != 2 || !strings.Contains(stderr.String(), "client certificate missing or refused: --cert/--key?") {
		t.Fatalf("without --cert: exit %d, stderr %q; want 2 and the client certificate named", code, stderr.String())
	}
}

// service is a database migrated for the auth service and its keys, ready
// for `serve` with env: what each load-test test against a real service needs.
type service struct {
	bin, dbURL, dir, keys string
	env                   []string // DATABASE_URL, JWT_*, SHUTDOWN_DELAY=0s
}

// newService starts a throwaway PostgreSQL (closed when t ends), creates db
// in it, generates keys and migrates.
func newService(t *testing.T, db string) *service {
	t.Helper()
	ctx := context.Background()
	bin, err := testenv.Binary()
	if err != nil {
		t.Fatal(err)
	}
	pg, err := testenv.StartPostgres(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Close)
	dbURL, err := pg.CreateDatabase(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	sv := &service{bin: bin, dbURL: dbURL, dir: t.TempDir()}
	sv.keys = filepath.Join(sv.dir, "keys")
	env := []string{"DATABASE_URL=" + dbURL, "JWT_ISSUER=https://auth.nova.test", "JWT_AUDIENCE=nova", "SHUTDOWN_DELAY=0s"}
	for _, args := range [][]string{{"keys", "generate", "--out-dir", sv.keys}, {"migrate"}} {
		if out, err := command(bin, env, args...); err != nil {
			t.Fatalf("auth-service %v: %v\n%s", args, err, out)
		}
	}
	sv.env = append(env, "JWT_PUBLIC_KEY_FILE="+filepath.Join(sv.keys, "public.pem"))
	return sv
}

// command runs the auth-service binary once with env (nothing inherited).
func command(bin string, env []string, args ...string) ([]byte, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	return cmd.CombinedOutput()
}
