package tracing_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nova-auth/nova-auth/clients"
	"github.com/nova-auth/nova-auth/internal/testenv"
	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

// The package's test runs the auth-service binary with tracing on against a
// real OpenTelemetry Collector (OTLP receiver, file exporter), calls it
// through clients.Pool from a "caller" with an SDK of its own exporting to
// the same collector, and reads the traces back from its file.
var (
	bin string
	pg  *testenv.Postgres
	col *testenv.Collector
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	fail := func(step string, err error) int {
		fmt.Fprintf(os.Stderr, "tracing TestMain: %s: %v\n", step, err)
		return 1
	}
	ctx := context.Background()
	defer testenv.RemoveBinary()
	var err error
	if bin, err = testenv.Binary(); err != nil {
		return fail("build auth-service", err)
	}
	cb, err := testenv.CollectorBinary()
	if err != nil {
		return fail("build the collector", err)
	}
	if col, err = testenv.StartCollector(ctx, cb); err != nil {
		return fail("start the collector", err)
	}
	defer col.Close()
	if pg, err = testenv.StartPostgres(ctx, ""); err != nil {
		return fail("start PostgreSQL", err)
	}
	defer pg.Close()
	return m.Run()
}

func cli(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("auth-service %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// caller is the calling service: its own tracer provider exporting to
// the collector as "caller", and a clients.Pool using it.
type caller struct {
	tp   *sdktrace.TracerProvider
	pool *clients.Pool
}

func newCaller(t *testing.T, grpcAddr string) *caller {
	t.Helper()
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpointURL(col.OTLPGRPC))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "caller"))))
	cfg := clients.DefaultConfig()
	cfg.Targets = map[string]string{"auth": grpcAddr}
	cfg.Registerer = prometheus.NewRegistry()
	// No TracerProvider: the pool uses the one of the caller's span.
	pool, err := clients.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close(); tp.Shutdown(context.Background()) })
	return &caller{tp: tp, pool: pool}
}

// call runs f under a root span of the caller and returns its trace ID.
func (c *caller) call(t *testing.T, f func(ctx context.Context)) string {
	t.Helper()
	ctx, span := c.tp.Tracer("test").Start(context.Background(), "caller operation")
	f(ctx)
	span.End()
	return span.SpanContext().TraceID().String()
}

// spans reads a trace back from the collector, waiting for at least min spans.
func spans(t *testing.T, traceID string, min int) []testenv.Span {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got, err := col.Trace(ctx, traceID, min)
	if err != nil {
		t.Fatalf("%v\nspans so far: %s", err, dump(got))
	}
	return got
}

func dump(spans []testenv.Span) string {
	b, _ := json.MarshalIndent(spans, "", "  ")
	return string(b)
}

// find returns the spans named name of service svc and kind kind.
func find(spans []testenv.Span, svc, kind, name string) []testenv.Span {
	var out []testenv.Span
	for _, s := range spans {
		if s.Service == svc && s.Kind() == kind && s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

func children(spans []testenv.Span, parent testenv.Span) []testenv.Span {
	var out []testenv.Span
	for _, s := range spans {
		if s.ParentID == parent.SpanID {
			out = append(out, s)
		}
	}
	return out
}

func tag(s testenv.Span, key string) string {
	v, ok := s.Tags[key]
	if !ok {
		return "<unset>"
	}
	return fmt.Sprint(v)
}

// serveTraced runs the service on a new database db with one user, its
// token, and tracing set by otel (OTEL_* variables).
func serveTraced(t *testing.T, db string, otel ...string) (p *testenv.Proc, logs *testenv.LogBuffer, userID, token string) {
	t.Helper()
	ctx := context.Background()
	dbURL, err := pg.CreateDatabase(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	keys := t.TempDir()
	env := []string{"PATH=" + os.Getenv("PATH"), "DATABASE_URL=" + dbURL,
		"JWT_PRIVATE_KEY_FILE=" + filepath.Join(keys, "private.pem"), "JWT_PUBLIC_KEY_FILE=" + filepath.Join(keys, "public.pem")}
	cli(t, env, "keys", "generate", "--out-dir", keys)
	cli(t, env, "migrate")
	userID = cli(t, env, "users", "create", "--email", "trace@example.com", "--username", "trace", "--password", "correct horse battery")
	token = cli(t, env, "tokens", "issue", "--user", userID)

	logs = &testenv.LogBuffer{}
	env = append(env, "SHUTDOWN_DELAY=0s", "OTEL_SERVICE_NAME=auth-service",
		// The batch exporter's delay, shortened so the test reads spans
		// back within a second rather than five.
		"OTEL_BSP_SCHEDULE_DELAY=100")
	if p, err = testenv.Serve(bin, testenv.ServeOptions{Env: append(env, otel...), Log: logs}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.WaitReady(wctx); err != nil {
		t.Fatalf("%v\n%s", err, logs)
	}
	return p, logs, userID, token
}

// TestHTTPProtobufExport: the spans reach the collector's OTLP/HTTP
// receiver, continuing the REST caller's trace, with the endpoint given as
// the specification says: OTEL_EXPORTER_OTLP_ENDPOINT with /v1/traces
// appended, or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT alone (an operator's
// injection, say), used as it is and turning tracing on by itself, with
// its own protocol variable winning over the generic one.
func TestHTTPProtobufExport(t *testing.T) {
	for i, tc := range []struct {
		name string
		otel []string
	}{
		{"generic endpoint, /v1/traces appended", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + col.OTLPHTTP, "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"}},
		{"only the traces endpoint, used as it is", []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=" + col.OTLPHTTP + "/v1/traces",
			"OTEL_EXPORTER_OTLP_PROTOCOL=grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/protobuf"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _, _, token := serveTraced(t, fmt.Sprintf("traced_http%d", i), tc.otel...)
			traceID, parent := fmt.Sprintf("5bf92f3577b34da6a3ce929d0e0e473%d", i), "10f067aa0ba902b7"
			req, _ := http.NewRequest(http.MethodPost, "http://"+p.HTTPAddr+"/v1/auth/VerifyToken", strings.NewReader(`{"token":"`+token+`"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("traceparent", "00-"+traceID+"-"+parent+"-01")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("POST /v1/auth/VerifyToken: %s", resp.Status)
			}
			got := spans(t, traceID, 2)
			server := find(got, "auth-service", "server", "nova.auth_service.AuthService/VerifyToken")
			if len(server) != 1 || server[0].ParentID != parent || len(find(got, "auth-service", "internal", "tokens.Verify")) != 1 {
				t.Fatalf("want the VerifyToken server span under %s and its check:\n%s", parent, dump(got))
			}
		})
	}
}

const getUser = "nova.auth_service.AuthService/GetUser"

// TestTraceThroughPoolServiceAndPostgreSQL: one GetUser through
// clients.Pool is one trace in the collector: the caller's call span, its attempt
// (client), the service's server span, and the PostgreSQL statement under
// it, all with the caller's trace ID; NOT_FOUND is an error to the caller
// but not a server fault; with the database stopped the retried call shows
// each attempt UNAVAILABLE, and the service's log line of that call and the
// /metrics exemplar carry the trace ID.
func TestTraceThroughPoolServiceAndPostgreSQL(t *testing.T) {
	ctx := context.Background()
	p, logs, userID, token := serveTraced(t, "traced", "OTEL_EXPORTER_OTLP_ENDPOINT="+col.OTLPGRPC)
	c := newCaller(t, p.GRPCAddr)

	t.Run("GetUser: caller → attempt → server → PostgreSQL", func(t *testing.T) {
		// The read cache in use, so this first read is its miss.
		waitCacheListening(t, p)
		traceID := c.call(t, func(ctx context.Context) {
			if _, err := c.pool.Auth().GetUser(ctx, &authpb.GetUserRequest{UserId: userID}); err != nil {
				t.Fatal(err)
			}
		})
		got := spans(t, traceID, 5)
		call := find(got, "caller", "internal", getUser)
		attempt := find(got, "caller", "client", getUser)
		server := find(got, "auth-service", "server", getUser)
		db := find(got, "auth-service", "client", "SELECT users")
		if len(call) != 1 || len(attempt) != 1 || len(server) != 1 || len(db) != 1 {
			t.Fatalf("want one call, attempt, server and SELECT users span, got %d %d %d %d:\n%s", len(call), len(attempt), len(server), len(db), dump(got))
		}
		for _, link := range []struct {
			child, parent testenv.Span
			what          string
		}{{attempt[0], call[0], "attempt under the call"}, {server[0], attempt[0], "server span under the attempt"}, {db[0], server[0], "statement under the server span"}} {
			if link.child.ParentID != link.parent.SpanID {
				t.Errorf("%s: parent %s, want %s\n%s", link.what, link.child.ParentID, link.parent.SpanID, dump(got))
			}
		}
		for _, s := range got {
			if s.TraceID != traceID {
				t.Errorf("span %s has trace %s, want %s", s.Name, s.TraceID, traceID)
			}
		}
		if v := tag(server[0], "rpc.grpc.status_code"); v != "0" {
			t.Errorf("server span rpc.grpc.status_code = %s, want 0", v)
		}
		if v := tag(server[0], "nova.cache.result"); v != "miss" {
			t.Errorf("server span nova.cache.result = %s, want miss (read from PostgreSQL)", v)
		}
		if v := tag(db[0], "db.system.name"); v != "postgresql" {
			t.Errorf("statement span db.system.name = %s, want postgresql", v)
		}
		for k, v := range db[0].Tags {
			if strings.Contains(fmt.Sprint(v), userID) {
				t.Errorf("statement span tag %s carries the user id (a parameter): %v", k, v)
			}
		}

		// The latency histogram's exemplar links the bucket to this trace,
		// in the OpenMetrics format a scraper asks for.
		req, _ := http.NewRequest(http.MethodGet, "http://"+p.HTTPAddr+"/metrics", nil)
		req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
			t.Errorf("/metrics Content-Type %q, want OpenMetrics", ct)
		}
		ex := regexp.MustCompile(`(?m)^grpc_server_handling_seconds_bucket\{[^}]*grpc_method="GetUser"[^}]*\} \d+ # \{trace_id="` + traceID + `"\}`)
		if !ex.Match(body) {
			t.Errorf("no GetUser bucket with exemplar trace_id=%s in /metrics:\n%s", traceID, grepLines(string(body), "grpc_server_handling_seconds_bucket"))
		}
	})

	t.Run("GetUser again: the read cache answers, no statement, the span says so", func(t *testing.T) {
		traceID := c.call(t, func(ctx context.Context) {
			if _, err := c.pool.Auth().GetUser(ctx, &authpb.GetUserRequest{UserId: userID}); err != nil {
				t.Fatal(err)
			}
		})
		// The caller's three spans and the server's: a statement, had
		// there been one, ends before the server span and is exported
		// with it or before it.
		got := spans(t, traceID, 4)
		server := find(got, "auth-service", "server", getUser)
		if len(server) != 1 {
			t.Fatalf("want one server span:\n%s", dump(got))
		}
		if v := tag(server[0], "nova.cache.result"); v != "hit" {
			t.Errorf("server span nova.cache.result = %s, want hit", v)
		}
		if ch := children(got, server[0]); len(ch) != 0 {
			t.Errorf("a read the cache answered has spans under it:\n%s", dump(ch))
		}
	})

	t.Run("GetUser NOT_FOUND: an error to the caller, not a server fault", func(t *testing.T) {
		traceID := c.call(t, func(ctx context.Context) {
			_, err := c.pool.Auth().GetUser(ctx, &authpb.GetUserRequest{UserId: uuid.NewString()})
			if status.Code(err) != codes.NotFound {
				t.Fatalf("GetUser of an unknown id: %v, want NotFound", err)
			}
		})
		got := spans(t, traceID, 5)
		attempt := find(got, "caller", "client", getUser)
		server := find(got, "auth-service", "server", getUser)
		if len(attempt) != 1 || len(server) != 1 {
			t.Fatalf("want one attempt and one server span:\n%s", dump(got))
		}
		if tag(attempt[0], "rpc.grpc.status_code") != "5" || tag(attempt[0], "otel.status_code") != "ERROR" {
			t.Errorf("attempt span: status_code %s, otel.status_code %s; want 5 and ERROR", tag(attempt[0], "rpc.grpc.status_code"), tag(attempt[0], "otel.status_code"))
		}
		if tag(server[0], "rpc.grpc.status_code") != "5" || tag(server[0], "otel.status_code") != "<unset>" {
			t.Errorf("server span: status_code %s, otel.status_code %s; want 5 and unset (the service worked)", tag(server[0], "rpc.grpc.status_code"), tag(server[0], "otel.status_code"))
		}
	})

	t.Run("VerifyToken: the check's span says whether the cache answered", func(t *testing.T) {
		traceID := c.call(t, func(ctx context.Context) {
			for range 2 {
				r, err := c.pool.Auth().VerifyToken(ctx, &authpb.VerifyTokenRequest{Token: token})
				if err != nil || !r.GetValid() {
					t.Fatalf("VerifyToken: %v %v", r, err)
				}
			}
		})
		got := spans(t, traceID, 9)
		checks := find(got, "auth-service", "internal", "tokens.Verify")
		var hits []string
		for _, s := range checks {
			hits = append(hits, tag(s, "nova.token.cache_hit"))
			if tag(s, "nova.token.valid") != "true" {
				t.Errorf("tokens.Verify nova.token.valid = %s, want true", tag(s, "nova.token.valid"))
			}
		}
		if strings.Join(hits, ",") != "false,true" && strings.Join(hits, ",") != "true,false" {
			t.Errorf("tokens.Verify cache hits %v, want one miss and one hit:\n%s", hits, dump(got))
		}
	})

	t.Run("REST: the gateway continues the caller's traceparent", func(t *testing.T) {
		// An id never asked for, so the read cache has to ask PostgreSQL.
		traceID, parent, id := "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", uuid.NewString()
		req, _ := http.NewRequest(http.MethodGet, "http://"+p.HTTPAddr+"/v1/users/"+id, nil)
		req.Header.Set("traceparent", "00-"+traceID+"-"+parent+"-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("GET /v1/users/%s: %s, want 404", id, resp.Status)
		}
		got := spans(t, traceID, 2)
		server := find(got, "auth-service", "server", getUser)
		if len(server) != 1 || server[0].ParentID != parent || tag(server[0], "nova.transport") != "rest" {
			t.Fatalf("want one server span of transport rest under %s:\n%s", parent, dump(got))
		}
		if len(children(got, server[0])) == 0 {
			t.Errorf("the REST call's server span has no statement under it:\n%s", dump(got))
		}
	})

	t.Run("database stopped: each attempt UNAVAILABLE, logged with the trace ID", func(t *testing.T) {
		if err := pg.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pg.Restart(context.Background()) })
		// An id the read cache does not know, so the call needs PostgreSQL.
		traceID := c.call(t, func(ctx context.Context) {
			_, err := c.pool.Auth().GetUser(ctx, &authpb.GetUserRequest{UserId: uuid.NewString()})
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("GetUser with the database stopped: %v, want Unavailable", err)
			}
		})
		attempts := clients.DefaultConfig().MaxAttempts
		got := spans(t, traceID, 2+3*attempts)
		att := find(got, "caller", "client", getUser)
		server := find(got, "auth-service", "server", getUser)
		if len(att) != attempts || len(server) != attempts {
			t.Fatalf("want %d attempts, each with its server span; got %d and %d:\n%s", attempts, len(att), len(server), dump(got))
		}
		for _, s := range server {
			if tag(s, "rpc.grpc.status_code") != "14" || tag(s, "otel.status_code") != "ERROR" {
				t.Errorf("server span: status_code %s, otel.status_code %s; want 14 and ERROR", tag(s, "rpc.grpc.status_code"), tag(s, "otel.status_code"))
			}
			var dbErr bool
			for _, ch := range children(got, s) {
				dbErr = dbErr || (tag(ch, "db.system.name") == "postgresql" && tag(ch, "otel.status_code") == "ERROR")
			}
			if !dbErr {
				t.Errorf("server span %s has no failed PostgreSQL span under it:\n%s", s.SpanID, dump(got))
			}
		}
		call := find(got, "caller", "internal", getUser)
		if len(call) != 1 || tag(call[0], "nova.rpc.attempts") != fmt.Sprint(attempts) || tag(call[0], "otel.status_code") != "ERROR" {
			t.Errorf("want one failed call span of %d attempts:\n%s", attempts, dump(call))
		}

		// The service logged the outage for this call with its trace ID.
		var logged bool
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "database unavailable" && line["trace_id"] == traceID {
				logged = line["span_id"] != nil
			}
		}
		if !logged {
			t.Errorf("no \"database unavailable\" log line with trace_id %s and a span_id:\n%s", traceID, logs)
		}
	})
}

// waitCacheListening waits until the service's read cache has subscribed
// to its notifications (until then every read bypasses it).
func waitCacheListening(t *testing.T, p *testenv.Proc) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + p.HTTPAddr + "/metrics")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if regexp.MustCompile(`(?m)^nova_auth_cache_listener_up 1$`).Match(body) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the read cache did not start listening within 20s (nova_auth_cache_listener_up): %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
