package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bojand/ghz/runner"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/nova-auth/nova-auth/internal/devstack"
	"github.com/nova-auth/nova-auth/internal/testenv"
)

func TestMain(m *testing.M) {
	// The external benchmark starts its own executable as the bare health
	// server: in a test, that is this binary.
	if len(os.Args) == 3 && os.Args[1] == "serve-health" {
		os.Exit(serveHealth(os.Args[2], os.Stderr))
	}
	code := m.Run()
	testenv.RemoveBinary()
	os.Exit(code)
}

func TestGates(t *testing.T) {
	spec := Gates{P95: 200 * time.Millisecond, P99: 500 * time.Millisecond, MaxErrorRate: 0.001, MinRPS: 1000}
	ok := Result{Name: "mix", Calls: 10000, RPS: 1500, P95: 20 * time.Millisecond, P99: 40 * time.Millisecond}
	tests := []struct {
		name  string
		gates Gates
		edit  func(*Result)
		want  []string // substrings, one per failed gate, in order
	}{
		{"all pass", spec, func(*Result) {}, nil},
		{"p95", spec, func(r *Result) { r.P95 = 250 * time.Millisecond }, []string{"mix: p95 250ms is above the --p95 gate of 200ms"}},
		{"p99", spec, func(r *Result) { r.P99 = 612 * time.Millisecond }, []string{"p99 612ms is above the --p99 gate of 500ms"}},
		{"errors", spec, func(r *Result) { r.Errors, r.ErrorRate = 25, 0.0025 }, []string{"error rate 0.250% (25 of 10000 calls) is above the --max-error-rate gate of 0.100%"}},
		{"rps", spec, func(r *Result) { r.RPS = 812.4 }, []string{"throughput 812 req/s is below the --min-rps gate of 1000 req/s"}},
		{"several", spec, func(r *Result) { r.P99, r.RPS = time.Second, 10 }, []string{"p99 1s", "throughput 10 req/s"}},
		{"gates off", Gates{MaxErrorRate: -1}, func(r *Result) { r.P99, r.RPS, r.ErrorRate = time.Hour, 0, 1 }, nil},
		{"zero errors allowed", Gates{}, func(r *Result) { r.Errors, r.ErrorRate = 1, 0.0001 }, []string{"error rate 0.010%"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok
			tt.edit(&r)
			got := tt.gates.check(&r)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d failures %q, want %d", len(got), got, len(tt.want))
			}
			for i := range got {
				if !strings.Contains(got[i], tt.want[i]) {
					t.Errorf("failure %d = %q, want it to contain %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	t0 := time.Now()
	ms := time.Millisecond
	d := func(startMs int, lat time.Duration, status, err string) runner.ResultDetail {
		return runner.ResultDetail{Timestamp: t0.Add(time.Duration(startMs)*ms + lat), Latency: lat, Status: status, Error: err}
	}
	details := []runner.ResultDetail{
		d(0, 900*ms, "OK", ""), // warm-up: left out
		d(1000, 1*ms, "OK", ""),
		d(1100, 2*ms, "OK", ""),
		d(1200, 3*ms, "Unavailable", "connection refused"), // errors count in latency
		d(1999, 1*ms, "OK", ""),
	}
	r := summarize("x", details, t0.Add(time.Second))
	if r.Calls != 4 || r.Errors != 1 || r.ErrorRate != 0.25 {
		t.Fatalf("calls %d errors %d rate %v, want 4 1 0.25", r.Calls, r.Errors, r.ErrorRate)
	}
	if r.Max != 3*ms || r.P99 != 3*ms || r.P50 != 1*ms {
		t.Errorf("p50 %v p99 %v max %v, want 1ms 3ms 3ms", r.P50, r.P99, r.Max)
	}
	if r.Codes["OK"] != 3 || r.Codes["Unavailable"] != 1 || r.ErrorMsgs["connection refused"] != 1 {
		t.Errorf("codes %v errors %v", r.Codes, r.ErrorMsgs)
	}
	if r.RPS < 3.99 || r.RPS > 4.01 { // 4 calls from 1.000 s to 2.000 s
		t.Errorf("rps %v, want 4", r.RPS)
	}
	if err := allFailed(summarize("y", details[3:4], t0)); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("allFailed = %v, want the error named", err)
	}
	if want := t0.Add(1200 * ms); !r.FirstError.Equal(want) {
		t.Errorf("first error at %v, want %v (the failed call's start)", r.FirstError, want)
	}
	// The printed summary says what the failed calls said, and when.
	var b strings.Builder
	printTable(&b, []*Result{r, r})
	if want := "x failed ×1, the first at " + t0.Add(1200*ms).UTC().Format("15:04:05.000") + ": connection refused"; strings.Count(b.String(), want) != 1 {
		t.Errorf("summary:\n%s\nwant once: %s", b.String(), want)
	}
}

func TestFlagsAndMix(t *testing.T) {
	tests := []struct {
		args []string
		want string // "" when valid
	}{
		{[]string{"--local"}, ""},
		{[]string{"--addr", "h:1", "--data", "d.json", "--rps", "100"}, ""},
		{[]string{}, "--addr HOST:PORT or --local is required"},
		{[]string{"--addr", "h:1"}, "--seed N (with a database) or --data FILE is required"},
		{[]string{"--local", "--addr", "h:1"}, "exclude each other"},
		{[]string{"--local", "--cert", "c.pem"}, "--cert and --key go together"},
		{[]string{"--local", "--duration", "1s", "--warmup-time", "2s"}, "longer than --warmup-time"},
		{[]string{"--local", "--metadata", "novalue"}, "want key=value"},
		{[]string{"--local", "stray"}, "unexpected arguments"},
	}
	for _, tt := range tests {
		_, err := parseFlags(tt.args, &bytes.Buffer{})
		if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("parseFlags(%q) = %v, want %q", tt.args, err, tt.want)
		}
	}
	for in, want := range map[string]string{
		defaultMix:                    "",
		"VerifyToken=1,getuser=3":     "",
		"VerifyToken":                 "not Name=weight",
		"Login=1":                     "unknown scenario",
		"GetUser=0":                   "positive number",
		"GetUser=1,GetUser=2":         "given twice",
		"VerifyToken=2,CheckUser=abc": "unknown scenario",
	} {
		mix, err := parseMix(in)
		if (err == nil) != (want == "") || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("parseMix(%q) = %v, want %q", in, err, want)
		}
		if err == nil && in == "VerifyToken=1,getuser=3" && (mix[0].Scenario.Name != "GetUser" || mix[0].Weight != 0.75) {
			t.Errorf("parseMix(%q) = %+v", in, mix)
		}
	}
}

// writeData writes a small valid-looking data set.
func writeData(t *testing.T, d *Dataset) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "data.json")
	if err := d.save(p); err != nil {
		t.Fatal(err)
	}
	return p
}

var fakeData = &Dataset{Permission: "users:read", Users: []DataUser{{ID: "6f1c2a53-2d8e-4c39-9a51-1f6b1d5b8f10", Email: "a@b.c", Token: "x.y.z"}}}

// A run against an address nothing listens on, or against a gRPC server that
// is not the auth service, ends with the reason and no table.
func TestWrongAddress(t *testing.T) {
	port, err := testenv.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	closed := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	grpc_health_v1.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(other) //nolint:errcheck
	defer srv.Stop()

	data := writeData(t, fakeData)
	for _, tt := range []struct{ addr, want string }{
		{closed, "cannot reach a gRPC server at " + closed + " within 1s"},
		{other.Addr().String(), "Unimplemented"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{"--addr", tt.addr, "--data", data, "--dial-timeout", "1s",
			"--duration", "3s", "--out", t.TempDir()}, &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", tt.addr, code, stderr.String(), tt.want)
		}
		if strings.Contains(stdout.String(), "scenario") {
			t.Errorf("%s: a table was printed:\n%s", tt.addr, stdout.String())
		}
	}
}

// TestSmoke seeds a real local stack, runs the gated mix briefly, and checks
// that data sets the server cannot use are refused by name.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts PostgreSQL and the service (make test runs it without -short)")
	}
	ctx := context.Background()
	bin, err := testenv.Binary()
	if err != nil {
		t.Fatal(err)
	}
	dir := enterableTempDir(t)
	st, err := devstack.Start(ctx, devstack.Options{Bin: bin, Dir: filepath.Join(dir, "stack")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Stop()
	env := envMap(st.Env)
	out := filepath.Join(dir, "out")

	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"--addr", st.GRPCAddr, "--seed", "500", "--database-url", env["DATABASE_URL"],
		"--jwt-private-key-file", env["JWT_PRIVATE_KEY_FILE"], "--jwt-issuer", env["JWT_ISSUER"], "--jwt-audience", env["JWT_AUDIENCE"],
		"--rps", "1500", "--duration", "5s", "--warmup-time", "2s", "--progress", "0", "--out", out,
		"--metrics-url", "http://" + st.HTTPAddr + "/metrics"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("smoke run: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	t.Logf("smoke run:\n%s", stdout.String())
	// The read cache's hit rate over the measured part of the mix.
	if !regexp.MustCompile(`Cache hit rate in the mix \(after the warm-up\): [0-9.]+% \([0-9]+ hits`).MatchString(stdout.String()) {
		t.Errorf("no cache hit rate in the report:\n%s", stdout.String())
	}
	for _, f := range []string{"summary.json", "data.json", "mix-VerifyToken.html", "mix-RecordFailedLogin.html"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}

	seeded, err := loadDataset(filepath.Join(out, "data.json"))
	if err != nil {
		t.Fatal(err)
	}
	// Tokens signed with a key the server does not know.
	_, priv, _ := ed25519.GenerateKey(nil)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	keyFile := filepath.Join(dir, "other.pem")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600) //nolint:errcheck
	signer, err := newTokenSigner(keyFile, env["JWT_ISSUER"], env["JWT_AUDIENCE"])
	if err != nil {
		t.Fatal(err)
	}
	forged := *seeded
	forged.Users = append([]DataUser(nil), seeded.Users[:1]...)
	if forged.Users[0].Token, _, err = signer.Issue(forged.Users[0].ID, forged.Users[0].Email, time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		data *Dataset
		want string
	}{
		{fakeData, "is not on the server"},
		{&forged, "the server refuses the data set's tokens (invalid signature)"},
	} {
		stderr.Reset()
		code := run(ctx, []string{"--addr", st.GRPCAddr, "--data", writeData(t, tt.data), "--duration", "3s", "--out", out}, &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr.String(), tt.want)
		}
	}
}

// enterableTempDir is a temporary folder others can enter. Not t.TempDir: as
// root, PostgreSQL runs as postgres, which must be able to enter every
// folder on the way.
func enterableTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "nova-loadtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
