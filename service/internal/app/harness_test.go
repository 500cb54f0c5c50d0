package app

import (
	"context"
	"crypto"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/nova-auth/nova-auth/internal/password"
	"github.com/nova-auth/nova-auth/internal/testenv"
	"github.com/nova-auth/nova-auth/internal/tokens"
	"github.com/nova-auth/nova-auth/service/internal/config"
	"github.com/nova-auth/nova-auth/service/internal/store"
	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

// pg is this package's own PostgreSQL cluster; every test gets a fresh
// database in it.
var pg *testenv.Postgres

func TestMain(m *testing.M) {
	var err error
	pg, err = testenv.StartPostgres(context.Background(), "")
	if err != nil {
		fmt.Fprintln(os.Stderr, "start PostgreSQL:", err)
		os.Exit(1)
	}
	code := m.Run()
	pg.Close()
	os.Exit(code)
}

var dbSeq atomic.Int64

// env is one running service on loopback, its database and a client.
type env struct {
	cfg     *config.Config
	st      *store.Store
	conn    *grpc.ClientConn
	client  authpb.AuthServiceClient
	health  healthpb.HealthClient
	httpURL string
	signer  *tokens.Signer
	priv    crypto.Signer
	pubPEM  []byte
	app     *App
	logs    *testenv.LogBuffer // the service's log lines at warning level and above
	stop    context.CancelFunc
	done    chan error
}

// newEnv starts the service against a fresh, migrated database of server
// srv (pg when nil); vars override the environment the service reads.
func newEnv(t testing.TB, srv *testenv.Postgres, vars map[string]string) *env {
	t.Helper()
	if srv == nil {
		srv = pg
	}
	url, err := srv.CreateDatabase(context.Background(), fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	e := start(t, url, vars, true)
	e.waitServing(t, true)
	return e
}

// newEnvNoMigrate starts the service on a database left as it is.
func newEnvNoMigrate(t testing.TB, url string) *env { return start(t, url, nil, false) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func start(t testing.TB, url string, vars map[string]string, migrate bool) *env {
	t.Helper()
	ctx := context.Background()
	privPEM, pubPEM, err := tokens.GenerateEd25519PEM()
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]string{
		"DATABASE_URL":           url,
		"JWT_PUBLIC_KEY":         string(pubPEM),
		"JWT_ISSUER":             "https://auth.nova.test",
		"JWT_AUDIENCE":           "nova",
		"DB_HEALTH_CHECK_PERIOD": "100ms",
		"DB_CONNECT_TIMEOUT":     "1s",
		"SHUTDOWN_DELAY":         "0s",
		"LOG_LEVEL":              "error",
	}
	for k, v := range vars {
		vals[k] = v
	}
	cfg, err := config.Load(func(k string) string { return vals[k] })
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.LogBuffer{}
	var w io.Writer = logs
	level := min(cfg.LogLevel, slog.LevelWarn)
	if testing.Verbose() {
		w = io.MultiWriter(logs, os.Stderr)
	}
	log := slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
	a, err := New(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if migrate {
		if _, err := a.Store().Migrate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	e := &env{cfg: cfg, st: a.Store(), app: a, logs: logs, stop: stop, done: make(chan error, 1), pubPEM: pubPEM,
		httpURL: "http://" + hl.Addr().String()}
	go func() { e.done <- a.Serve(sctx, gl, hl) }()

	e.conn, err = grpc.NewClient(gl.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	e.client = authpb.NewAuthServiceClient(e.conn)
	e.health = healthpb.NewHealthClient(e.conn)
	key, err := tokens.ParsePrivateKey(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	e.priv = key
	if e.signer, err = tokens.NewSigner(key, cfg.JWTIssuer, cfg.JWTAudience); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.close)
	return e
}

func (e *env) close() {
	e.stop()
	<-e.done
	e.conn.Close()
}

// waitServing waits until grpc.health.v1 reports the wanted state.
func (e *env) waitServing(t testing.TB, want bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		r, err := e.health.Check(ctx, &healthpb.HealthCheckRequest{Service: authpb.AuthService_ServiceDesc.ServiceName})
		cancel()
		if err == nil && (r.GetStatus() == healthpb.HealthCheckResponse_SERVING) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("health never became serving=%v (last: %v, %v)", want, r.GetStatus(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// user creates a user directly in the store.
func (e *env) user(t testing.TB, email, username string, perms ...string) string {
	t.Helper()
	ctx := context.Background()
	id, err := e.st.CreateUser(ctx, store.NewUser{Email: email, Username: username, PasswordHash: cheapHash})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range perms {
		if err := e.st.GrantPermission(ctx, id, p); err != nil {
			t.Fatal(err)
		}
	}
	return id.String()
}

// cheapHash is a real argon2id hash computed once; hashing per user would
// only slow the tests down.
var cheapHash = func() string {
	h, err := password.Hash("correct horse battery")
	if err != nil {
		panic(err)
	}
	return h
}()

// waitCache waits until the read cache listens for changes (and so is in
// use): it starts off, and reads go to PostgreSQL until then.
func (e *env) waitCache(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for e.app.cache == nil || !e.app.cache.Up() {
		if time.Now().After(deadline) {
			t.Fatal("the read cache never started listening")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
