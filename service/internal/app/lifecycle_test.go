package app

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nova-auth/nova-auth/internal/testenv"
	"github.com/nova-auth/nova-auth/internal/tokens"
	"github.com/nova-auth/nova-auth/service/internal/config"
	"github.com/nova-auth/nova-auth/service/internal/store"
	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

// TestDatabaseOutage: with PostgreSQL stopped, calls that need it fail with
// Unavailable, but the replica stays ready (/readiness 200 with a warning,
// gRPC health SERVING) and VerifyToken keeps answering: the database is
// shared, so unready on it would empty the Service of every replica at once.
// The outage shows in nova_auth_database_up instead. Once PostgreSQL is back
// the service recovers by itself, with no restart.
//
// This contract changed deliberately (issue 12, item 5): readiness used to
// turn 503 "database unreachable" here.
func TestDatabaseOutage(t *testing.T) {
	ctx := context.Background()
	srv, err := testenv.StartPostgres(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	e := newEnv(t, srv, nil)
	id := e.user(t, "o@example.com", "o")
	tok, _, err := e.signer.Issue(id, "o@example.com", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	get := func() error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := e.client.GetUser(ctx, &authpb.GetUserRequest{UserId: id})
		return err
	}
	if err := get(); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, e, "nova_auth_database_up 1")

	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// Every call now fails with Unavailable (the first may find a dead pooled
	// connection, the rest a refused one), never Internal.
	for i := range 5 {
		err := get()
		wantCode(t, err, codes.Unavailable)
		if i == 0 {
			t.Logf("during the outage: %v", status.Convert(err).Message())
		}
	}
	// Several readiness periods (100ms) into the outage, the replica is
	// still ready and VerifyToken still answers.
	waitMetric(t, e, "nova_auth_database_up 0")
	time.Sleep(500 * time.Millisecond)
	e.waitServing(t, true)
	if code, body := httpGet(t, e.httpURL+"/readiness"); code != 200 || !contains(body, "database unreachable") {
		t.Fatalf("readiness during outage = %d %s, want 200 with a warning naming the database", code, body)
	}
	if _, body := httpGet(t, e.httpURL+"/metrics"); !contains(body, "nova_auth_ready 1") {
		t.Errorf("nova_auth_ready during the outage: want 1")
	}
	r, err := e.client.VerifyToken(ctx, &authpb.VerifyTokenRequest{Token: tok})
	wantCode(t, err, codes.OK)
	if !r.GetValid() || r.GetUserId() != id {
		t.Fatalf("VerifyToken during the outage = %v", r)
	}
	if code, _ := httpGet(t, e.httpURL+"/health"); code != 200 {
		t.Fatalf("liveness must not fail on a database outage, got %d", code)
	}

	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for get() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after PostgreSQL restarted: %v", get())
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitMetric(t, e, "nova_auth_database_up 1")
	if code, body := httpGet(t, e.httpURL+"/readiness"); code != 200 || contains(body, "warning") {
		t.Fatalf("readiness after recovery = %d %s", code, body)
	}
}

// TestUnreadyWithoutDatabaseAtStart: a replica that never reached the
// database is not ready: it has not shown it can serve (a new pod of a
// rolling upgrade waits, the old ones keep serving).
func TestUnreadyWithoutDatabaseAtStart(t *testing.T) {
	port, err := testenv.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	e := newEnvNoMigrate(t, fmt.Sprintf("postgres://nobody@127.0.0.1:%d/none?sslmode=disable", port))
	time.Sleep(300 * time.Millisecond) // a few readiness periods
	e.waitServing(t, false)
	if code, body := httpGet(t, e.httpURL+"/readiness"); code != 503 || !contains(body, "database unreachable") {
		t.Fatalf("readiness = %d %s, want 503 database unreachable", code, body)
	}
	// The log says why, with the error, once (not every check, here every
	// 100ms): what someone reading a pod stuck unready at start sees.
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waiting := 0
	for _, l := range strings.Split(e.logs.String(), "\n") {
		if contains(l, `"msg":"not ready yet"`) {
			waiting++
			if !contains(l, `"level":"WARN"`) || !contains(l, `"reason":"database unreachable"`) || !contains(l, addr) {
				t.Errorf("log line %s: want level WARN, reason database unreachable and the address %s in the error", l, addr)
			}
		}
	}
	if waiting != 1 {
		t.Errorf("%d \"not ready yet\" lines in %s of checks, want 1:\n%s", waiting, time.Since(start).Round(time.Millisecond), e.logs)
	}
}

// TestUnreadyWhenSchemaFallsBehind: after serving, a database whose schema
// is older than this binary (restored from an old backup, or another
// database behind the same URL) makes the replica unready again; the
// outage rule does not cover it, because the database answers.
func TestUnreadyWhenSchemaFallsBehind(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil, nil)
	last := store.SchemaVersion()
	var name string
	if err := e.st.Pool().QueryRow(ctx, "DELETE FROM schema_migrations WHERE version = $1 RETURNING name", last).Scan(&name); err != nil {
		t.Fatal(err)
	}
	e.waitServing(t, false)
	want := fmt.Sprintf("schema at version %d, need %d", last-1, last)
	if code, body := httpGet(t, e.httpURL+"/readiness"); code != 503 || !contains(body, want) {
		t.Fatalf("readiness = %d %s, want 503 %q", code, body, want)
	}
	if _, err := e.st.Pool().Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", last, name); err != nil {
		t.Fatal(err)
	}
	e.waitServing(t, true)
}

// waitMetric waits until /metrics has the line want (readiness checks run
// every 100ms in these tests).
func waitMetric(t *testing.T, e *env, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := httpGet(t, e.httpURL+"/metrics")
		if contains(body, "\n"+want+"\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics never showed %q", want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestUnreadyUntilMigrated: a service pointed at an empty database answers
// health with NOT_SERVING and readiness explains what to run.
func TestUnreadyUntilMigrated(t *testing.T) {
	ctx := context.Background()
	url, err := pg.CreateDatabase(ctx, "unmigrated")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvNoMigrate(t, url)
	e.waitServing(t, false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := httpGet(t, e.httpURL+"/readiness")
		if code == 503 && contains(body, fmt.Sprintf("schema at version 0, need %d: run `auth-service migrate`", store.SchemaVersion())) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readiness = %d %s", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := e.st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	e.waitServing(t, true)
}

// TestGracefulDrain: a call in flight when shutdown starts completes; health
// turns NOT_SERVING at once; the server then stops.
func TestGracefulDrain(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil, map[string]string{"SHUTDOWN_DELAY": "200ms", "SHUTDOWN_TIMEOUT": "10s"})
	id := e.user(t, "d@example.com", "d")

	// Hold the user's row so RecordFailedLogin blocks in the database.
	tx, err := e.st.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT 1 FROM users WHERE id = $1 FOR UPDATE", id); err != nil {
		t.Fatal(err)
	}
	result := make(chan error, 1)
	go func() {
		_, err := e.client.RecordFailedLogin(ctx, &authpb.RecordFailedLoginRequest{UserId: id})
		result <- err
	}()
	time.Sleep(200 * time.Millisecond) // the call is now waiting on the row lock

	e.stop() // what SIGTERM does
	e.waitServing(t, false)
	time.Sleep(300 * time.Millisecond) // past SHUTDOWN_DELAY: GracefulStop is draining
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-result; err != nil {
		t.Fatalf("in-flight call was cut: %v", err)
	}
	select {
	case err := <-e.done:
		if err != nil {
			t.Fatal(err)
		}
		e.done <- nil // for Cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop after draining")
	}
}

// TestDeadlines: a call stuck in the database ends with DeadlineExceeded at
// the caller's deadline, or at REQUEST_TIMEOUT when the caller set none,
// and the interrupted update leaves no trace.
func TestDeadlines(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil, map[string]string{"REQUEST_TIMEOUT": "300ms"})
	id := e.user(t, "dl@example.com", "dl")
	tx, err := e.st.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT 1 FROM users WHERE id = $1 FOR UPDATE", id); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = e.client.RecordFailedLogin(cctx, &authpb.RecordFailedLoginRequest{UserId: id})
	cancel()
	wantCode(t, err, codes.DeadlineExceeded)
	_, err = e.client.RecordFailedLogin(ctx, &authpb.RecordFailedLoginRequest{UserId: id})
	wantCode(t, err, codes.DeadlineExceeded)
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// Let any statement the service left behind finish before counting: an
	// UPDATE still queued on the row would run now that the lock is gone.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var active int
		if err := e.st.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid()
			AND state = 'active' AND query LIKE '%failed_login_attempts%'`).Scan(&active); err != nil {
			t.Fatal(err)
		}
		if active == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d abandoned statements still run", active)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	r, err := e.client.GetUser(ctx, &authpb.GetUserRequest{UserId: id})
	wantCode(t, err, codes.OK)
	if n := r.GetUser().GetFailedLoginAttempts(); n != 0 {
		t.Fatalf("interrupted calls counted %d failures", n)
	}
}

// TestPublicKeyFileMustExist: a named public key file that cannot be read
// stops the start, even with a private key to fall back on.
func TestPublicKeyFileMustExist(t *testing.T) {
	priv, _, _ := tokens.GenerateEd25519PEM()
	cfg, err := config.Load(func(k string) string {
		return map[string]string{
			"DATABASE_URL":        "postgres://u@127.0.0.1:1/x",
			"JWT_PRIVATE_KEY":     string(priv),
			"JWT_PUBLIC_KEY_FILE": "/nonexistent/keys/public.pem",
		}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewVerifier(cfg); err == nil || !strings.Contains(err.Error(), "JWT_PUBLIC_KEY_FILE") {
		t.Fatalf("err = %v, want it to name JWT_PUBLIC_KEY_FILE", err)
	}
	cfg.JWTPublicKeyFile = ""
	if _, err := NewVerifier(cfg); err != nil {
		t.Fatalf("no public key configured: the private key's half should do: %v", err)
	}
}
