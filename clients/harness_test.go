package clients_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/nova-auth/nova-auth/clients"
	"github.com/nova-auth/nova-auth/internal/testenv"
)

// The package's tests share one PostgreSQL cluster, one migrated database
// and three auth-service processes on 127.0.0.1, 127.0.0.2 and 127.0.0.3.
var (
	pg       *testenv.Postgres
	bin      string // the auth-service binary, built once
	baseEnv  []string
	aliceID  string
	backends []*backend
)

const aliceEmail = "alice@example.com"

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	fail := func(step string, err error) int {
		fmt.Fprintf(os.Stderr, "clients TestMain: %s: %v\n", step, err)
		return 1
	}
	ctx := context.Background()
	defer testenv.RemoveBinary()
	var err error
	if bin, err = testenv.Binary(); err != nil {
		return fail("build auth-service", err)
	}
	if pg, err = testenv.StartPostgres(ctx, ""); err != nil {
		return fail("start PostgreSQL", err)
	}
	defer pg.Close()
	url, err := pg.CreateDatabase(ctx, "clients")
	if err != nil {
		return fail("create database", err)
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fail("key", err)
	}
	der, _ := x509.MarshalPKIXPublicKey(pub)
	baseEnv = []string{
		"JWT_PUBLIC_KEY=" + string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
		"SHUTDOWN_DELAY=0s",
		"DB_HEALTH_CHECK_PERIOD=100ms",
		"DB_CONNECT_TIMEOUT=1s",
		"LOG_LEVEL=warn",
	}
	if _, err := authService(url, "migrate"); err != nil {
		return fail("migrate", err)
	}
	out, err := authService(url, "users", "create", "--email", aliceEmail, "--username", "alice", "--password", "correct horse battery staple")
	if err != nil {
		return fail("create user", err)
	}
	aliceID = strings.TrimSpace(out)

	for i := 1; i <= 3; i++ {
		b, err := newBackend(fmt.Sprintf("127.0.0.%d", i), url)
		if err != nil {
			return fail("ports", err)
		}
		backends = append(backends, b)
		defer b.stop()
		if err := b.start(); err != nil {
			return fail("start backend", err)
		}
	}
	for _, b := range backends {
		if err := b.waitReady(30 * time.Second); err != nil {
			return fail("backend ready", err)
		}
	}
	// What a deployment would set; the Example reads it through FromEnv.
	os.Setenv(clients.TargetVar("auth"), backends[0].grpcAddr())
	return m.Run()
}

// authService runs a one-shot subcommand against the database at url.
func authService(url string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), append(baseEnv, "DATABASE_URL="+url)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("auth-service %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// backend is one auth-service process; it can be stopped and started again
// on the same addresses.
type backend struct {
	host string
	opts testenv.ServeOptions // the ports fixed, so that a restart keeps them
	proc *testenv.Proc        // nil while stopped
}

func newBackend(host, dbURL string) (*backend, error) {
	gp, err := testenv.FreePort(host)
	if err != nil {
		return nil, err
	}
	hp, err := testenv.FreePort(host)
	if err != nil {
		return nil, err
	}
	env := append(os.Environ(), baseEnv...)
	// Logs are seen only when the package fails or with -v.
	return &backend{host: host, opts: testenv.ServeOptions{Host: host, GRPCPort: gp, HTTPPort: hp,
		Env: append(env, "DATABASE_URL="+dbURL), Log: os.Stderr}}, nil
}

func (b *backend) grpcAddr() string { return net.JoinHostPort(b.host, strconv.Itoa(b.opts.GRPCPort)) }

func (b *backend) httpURL(path string) string {
	return "http://" + net.JoinHostPort(b.host, strconv.Itoa(b.opts.HTTPPort)) + path
}

func (b *backend) running() bool { return b.proc != nil }

func (b *backend) start() (err error) {
	b.proc, err = testenv.Serve(bin, b.opts)
	return err
}

// stop sends SIGTERM, as Kubernetes does, and waits for the exit.
func (b *backend) stop() error { return b.signal(syscall.SIGTERM) }

// signal sends sig and waits for the process to exit.
func (b *backend) signal(sig syscall.Signal) error {
	if b.proc == nil {
		return nil
	}
	err := b.proc.Signal(sig)
	b.proc = nil
	return err
}

// waitReady waits for /readiness to answer 200 (database reachable, schema
// current: the gRPC health status is SERVING).
func (b *backend) waitReady(timeout time.Duration) error {
	return b.waitHTTP("/readiness", timeout)
}

func (b *backend) waitHTTP(path string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return b.proc.WaitHTTP(ctx, path)
}

// handled is the backend's count of completed calls of one method, any
// status, from its Prometheus /metrics.
func (b *backend) handled(method string) (int, error) {
	resp, err := http.Get(b.httpURL("/metrics"))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	total := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "grpc_server_handled_total{") || !strings.Contains(line, `grpc_method="`+method+`"`) {
			continue
		}
		f := strings.Fields(line)
		n, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("metrics line %q: %w", line, err)
		}
		total += int(n)
	}
	return total, sc.Err()
}

// counts reads handled(method) from each backend; a stopped one counts -1.
func counts(t testing.TB, bs []*backend, method string) []int {
	t.Helper()
	out := make([]int, len(bs))
	for i, b := range bs {
		if !b.running() {
			out[i] = -1
			continue
		}
		n, err := b.handled(method)
		if err != nil {
			t.Fatalf("metrics of %s: %v", b.host, err)
		}
		out[i] = n
	}
	return out
}

func diff(after, before []int) []int {
	out := make([]int, len(after))
	for i := range after {
		out[i] = after[i] - before[i]
	}
	return out
}

var schemeSeq atomic.Int64

// newPool returns a pool whose "auth" target resolves, through a manual
// resolver standing in for DNS over the headless Service, to addrs. Its
// metrics go to the returned registry.
func newPool(t testing.TB, addrs []string, edit func(*clients.Config)) (*clients.Pool, *prometheus.Registry) {
	t.Helper()
	r := manual.NewBuilderWithScheme(fmt.Sprintf("novatest%d", schemeSeq.Add(1)))
	var st resolver.State
	for _, a := range addrs {
		st.Addresses = append(st.Addresses, resolver.Address{Addr: a})
	}
	r.InitialState(st)
	reg := prometheus.NewRegistry()
	cfg := clients.DefaultConfig()
	cfg.Targets = map[string]string{"auth": r.Scheme() + ":///auth"}
	cfg.ReconnectMaxBackoff = 500 * time.Millisecond
	cfg.Registerer = reg
	cfg.Logger = testLogger()
	cfg.DialOptions = []grpc.DialOption{grpc.WithResolvers(r)}
	if edit != nil {
		edit(&cfg)
	}
	p, err := clients.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, reg
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func addrsOf(bs []*backend) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.grpcAddr())
	}
	return out
}

// eventually polls cond every 20ms until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metricValue sums the samples of a metric whose labels include want.
func metricValue(t testing.TB, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue next
				}
			}
			sum += value(m)
		}
	}
	return sum
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	}
	return 0
}
