package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nova-auth/nova-auth/internal/testenv"
	"github.com/nova-auth/nova-auth/internal/tokens"
	"github.com/nova-auth/nova-auth/service/internal/config"
)

var (
	pg  *testenv.Postgres
	bin string // the auth-service binary, built once
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	defer testenv.RemoveBinary()
	var err error
	if bin, err = testenv.Binary(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if pg, err = testenv.StartPostgres(context.Background(), ""); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer pg.Close()
	return m.Run()
}

var dbSeq int

// cli runs the binary with env and returns stdout, stderr, exit code.
func cli(t *testing.T, env []string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func newDB(t *testing.T) []string {
	t.Helper()
	dbSeq++
	url, err := pg.CreateDatabase(context.Background(), fmt.Sprintf("cli%d", dbSeq))
	if err != nil {
		t.Fatal(err)
	}
	keys := t.TempDir()
	if _, stderr, code := cli(t, nil, "", "keys", "generate", "--out-dir", keys); code != 0 {
		t.Fatal(stderr)
	}
	return []string{"DATABASE_URL=" + url, "JWT_PRIVATE_KEY_FILE=" + filepath.Join(keys, "private.pem"),
		"JWT_PUBLIC_KEY_FILE=" + filepath.Join(keys, "public.pem"), "JWT_ISSUER=iss", "JWT_AUDIENCE=aud"}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\n$`)

func TestOperatorCommands(t *testing.T) {
	env := newDB(t)

	// Several replicas migrating at once: the advisory lock lets one apply,
	// the others find the schema current; all succeed.
	var wg sync.WaitGroup
	outs := make([]string, 4)
	codes := make([]int, 4)
	for i := range outs {
		wg.Add(1)
		go func() { defer wg.Done(); outs[i], _, codes[i] = cli(t, env, "", "migrate") }()
	}
	wg.Wait()
	applied := 0
	for i := range outs {
		if codes[i] != 0 {
			t.Fatalf("migrate %d exited %d: %s", i, codes[i], outs[i])
		}
		if strings.HasPrefix(outs[i], "applied") {
			applied++
		}
	}
	if applied != 1 {
		t.Fatalf("%d concurrent migrate runs applied migrations, want 1: %q", applied, outs)
	}
	if out, _, _ := cli(t, env, "", "migrate"); !strings.Contains(out, "schema is current") {
		t.Fatalf("second migrate: %q", out)
	}

	id, stderr, code := cli(t, env, "", "users", "create", "--email", "ops@example.com", "--username", "ops", "--password", "s3cret-pass")
	if code != 0 || !uuidRE.MatchString(id) {
		t.Fatalf("users create: code %d stdout %q stderr %q", code, id, stderr)
	}
	id = strings.TrimSpace(id)
	id2, _, code := cli(t, env, "pw-from-stdin\n", "users", "create", "--email", "two@example.com", "--username", "two", "--password-stdin")
	if code != 0 || !uuidRE.MatchString(id2) {
		t.Fatalf("users create --password-stdin: %d %q", code, id2)
	}
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"users", "create", "--email", "OPS@example.com", "--username", "x", "--password", "longenough"}, 1, "already exists"},
		{[]string{"users", "create", "--email", "a@b.c"}, 2, "missing --username, --password or --password-stdin"},
		{[]string{"users", "create", "--email", "nope", "--username", "u", "--password", "longenough"}, 2, "not an email address"},
		{[]string{"users", "create", "--email", "s@b.c", "--username", "s", "--password", "short"}, 2, "at least 8 characters"},
		{[]string{"permissions", "grant", "--user", "nope", "--permission", "p"}, 2, "not a UUID"},
		{[]string{"permissions", "grant", "--user", "00000000-0000-4000-8000-000000000000", "--permission", "p"}, 1, "not found"},
		{[]string{"tokens", "issue", "--user", "00000000-0000-4000-8000-000000000000"}, 1, "not found"},
		{[]string{"frobnicate"}, 2, "unknown command"},
	} {
		_, stderr, code := cli(t, env, "", tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.msg) {
			t.Errorf("%v: exit %d stderr %q; want %d with %q", tc.args, code, stderr, tc.code, tc.msg)
		}
		if strings.Contains(stderr, "longenough") {
			t.Errorf("%v: password echoed: %q", tc.args, stderr)
		}
	}
	if _, stderr, code := cli(t, env, "", "permissions", "grant", "--user", id, "--permission", "users:read"); code != 0 {
		t.Fatal(stderr)
	}
	tok, stderr, code := cli(t, env, "", "tokens", "issue", "--user", id, "--ttl", "5m")
	if code != 0 {
		t.Fatal(stderr)
	}
	// The issued token passes the same checks VerifyToken runs.
	cfg, err := config.Load(func(k string) string {
		for _, kv := range env {
			if name, v, _ := strings.Cut(kv, "="); name == k {
				return v
			}
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := cfg.PublicKeyPEM()
	pubs, _ := tokens.ParsePublicKeys(pem)
	v, _ := tokens.NewVerifier(pubs, tokens.VerifierOptions{Algorithms: cfg.JWTAlgorithms, Issuer: "iss", Audience: "aud"})
	r := v.Verify(strings.TrimSpace(tok))
	if !r.Valid || r.UserID != id || r.Email != "ops@example.com" || time.Until(r.ExpiresAt) > 5*time.Minute {
		t.Fatalf("issued token: %+v", r)
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	_, stderr, code := cli(t, []string{"GRPC_PORT=abc", "LOCKOUT_THRESHOLD=-1", "DATABASE_URL=postgres://u:hunter2@db/x"}, "", "serve")
	if code != 1 || !strings.Contains(stderr, "GRPC_PORT=\"abc\"") || !strings.Contains(stderr, "LOCKOUT_THRESHOLD=\"-1\"") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Contains(stderr, "hunter2") {
		t.Fatalf("password from DATABASE_URL printed: %s", stderr)
	}
	_, stderr, code = cli(t, nil, "", "migrate")
	if code != 1 || !strings.Contains(stderr, "DATABASE_URL is not set") {
		t.Fatalf("migrate without DATABASE_URL: %d %s", code, stderr)
	}
	_, stderr, code = cli(t, []string{"DATABASE_URL=postgres://u:hunter2@127.0.0.1:1/x"}, "", "serve")
	if code != 1 || !strings.Contains(stderr, "JWT_PUBLIC_KEY") || strings.Contains(stderr, "hunter2") {
		t.Fatalf("serve without keys: %d %s", code, stderr)
	}
	_, stderr, code = cli(t, []string{"DATABASE_URL=postgres://u:hunter2@127.0.0.1:1/x", "DB_CONNECT_TIMEOUT=500ms"}, "", "migrate")
	if code != 1 || !strings.Contains(stderr, "cannot reach the database") || !strings.Contains(stderr, "connection refused") ||
		strings.Contains(stderr, "hunter2") || strings.Contains(stderr, "%!") {
		t.Fatalf("migrate with the database down: %d %s", code, stderr)
	}
}

func TestEnvListsEveryVariable(t *testing.T) {
	out, _, code := cli(t, nil, "", "env", "--names")
	if code != 0 || strings.Join(config.Names(), "\n")+"\n" != out {
		t.Fatalf("env --names: %q", out)
	}
	out, _, _ = cli(t, nil, "", "--version")
	if !strings.HasPrefix(out, "auth-service ") {
		t.Fatalf("--version: %q", out)
	}
}

// TestServeHealthcheckSIGTERM: the binary serves, `healthcheck` says SERVING,
// SIGTERM stops it cleanly with exit 0, and nothing secret reaches the log.
func TestServeHealthcheckSIGTERM(t *testing.T) {
	env := newDB(t)
	if _, stderr, code := cli(t, env, "", "migrate"); code != 0 {
		t.Fatal(stderr)
	}
	env = append(env, "SHUTDOWN_DELAY=100ms", "LOG_LEVEL=debug")
	var logs bytes.Buffer
	p, err := testenv.Serve(bin, testenv.ServeOptions{Env: env, Log: &logs})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.WaitReady(ctx); err != nil {
		p.Stop()
		t.Fatalf("never ready: %v\nlogs:\n%s", err, logs.String())
	}
	if out, stderr, code := cli(t, nil, "", "healthcheck", "--addr", p.GRPCAddr, "--timeout", "1s"); code != 0 || !strings.Contains(out, "SERVING") {
		p.Stop()
		t.Fatalf("healthcheck did not pass: %s %s\nlogs:\n%s", out, stderr, logs.String())
	}
	if _, _, code := cli(t, nil, "", "healthcheck", "--addr", "127.0.0.1:1", "--timeout", "300ms"); code == 0 {
		p.Stop()
		t.Fatal("healthcheck passed against a closed port")
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
	}
	l := logs.String()
	for _, want := range []string{`"msg":"ready"`, `"msg":"shutting down"`, `"msg":"stopped"`} {
		if !strings.Contains(l, want) {
			t.Errorf("log lacks %s:\n%s", want, l)
		}
	}
	if strings.Contains(l, "PRIVATE KEY") || strings.Contains(l, "postgres://") {
		t.Errorf("log holds a secret:\n%s", l)
	}
}

// TestREADMEConfigTable: the README's configuration table is what
// `auth-service env --markdown` prints.
func TestREADMEConfigTable(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	table, _, code := cli(t, nil, "", "env", "--markdown")
	if code != 0 || !strings.Contains(string(readme), table) {
		t.Fatalf("README.md's configuration table is stale: replace it with `go run ./service/cmd/auth-service env --markdown`")
	}
}
