// Command loadtest (its own module: run it from loadtest/) drives the auth service with ghz (used as a library) and
// gates the result on latency, error rate and throughput: against any address
// (plaintext, TLS, mTLS), or against a throwaway local stack it starts itself.
//
//	go run . --local                                # make loadtest
//	go run . --local --bench                        # make bench
//	go run . --addr auth.staging:9080 --tls --cacert ca.pem --data users.json
//
// Exit status: 0 when every gate passes, 1 when a gate fails (each failure is
// printed with the measured value), 2 when the run could not be made.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/nova-auth/nova-auth/clients"
	"github.com/nova-auth/nova-auth/internal/devstack"
	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// config is everything the flags say.
type config struct {
	target   Target
	shape    Shape
	gates    Gates
	scenario string
	mix      string
	bench    bool
	benchMix uint
	local    bool
	bin      string
	svcEnv   map[string]string
	seed     SeedOptions
	data     string
	out      string
	progress time.Duration
	// metricsURL is the service's /metrics, for the read cache's hit rate.
	metricsURL string
	// ghz is the ghz CLI for the external benchmark; externalRPS is each
	// of its processes' rate.
	ghz         string
	externalRPS uint
}

// traceTagRE is what --trace-tag accepts: a baggage value that needs no
// percent-encoding and a trace store's tag search takes as typed.
var traceTagRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// kvFlag collects repeated key=value flags; gRPC metadata keys are lower case.
type kvFlag struct {
	m     map[string]string
	lower bool
}

func (f kvFlag) String() string { return "" }
func (f kvFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", v)
	}
	if f.lower {
		k = strings.ToLower(k)
	}
	f.m[k] = val
	return nil
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{target: Target{Metadata: map[string]string{}}, svcEnv: map[string]string{}}
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: loadtest (--addr HOST:PORT (--seed N | --data FILE) | --local) [flags]")
		fs.PrintDefaults()
	}
	t, s, g := &c.target, &c.shape, &c.gates
	fs.StringVar(&t.Addr, "addr", "", "gRPC address of the service under test (host:port)")
	fs.BoolVar(&t.TLS, "tls", false, "use TLS (default plaintext)")
	fs.StringVar(&t.CACert, "cacert", "", "PEM CA bundle that signs the server certificate (implies --tls)")
	fs.StringVar(&t.Cert, "cert", "", "client certificate PEM for mTLS (implies --tls; with --key)")
	fs.StringVar(&t.Key, "key", "", "client private key PEM for mTLS")
	fs.StringVar(&t.ServerName, "server-name", "", "name to verify in the server certificate (TLS SNI)")
	fs.BoolVar(&t.SkipVerify, "skip-verify", false, "TLS without verifying the server certificate")
	fs.StringVar(&t.Authority, "authority", "", ":authority header (virtual host behind a proxy)")
	fs.Var(kvFlag{t.Metadata, true}, "metadata", "per-call metadata key=value, repeatable (e.g. 'authorization=Bearer …')")
	traceTag := fs.String("trace-tag", "", "tag every call with the W3C baggage nova.loadtest.run=TAG; the service records it on its spans (baggage.nova.loadtest.run), so this run's traces can be found in the trace store")
	fs.DurationVar(&t.DialTimeout, "dial-timeout", 5*time.Second, "how long to wait for the server before giving up")

	fs.StringVar(&c.scenario, "scenario", "mix", "mix, all (each RPC alone, one after another), or one RPC name, or HealthCheck")
	fs.StringVar(&c.mix, "mix", defaultMix, "weights of the mix, Name=weight,...")
	fs.UintVar(&s.RPS, "rps", 0, "constant request rate (0: as fast as --concurrency allows)")
	fs.StringVar(&s.Schedule, "load-schedule", "const", "const, step or line (ramp)")
	fs.UintVar(&s.Start, "load-start", 0, "step/line: starting rps")
	fs.UintVar(&s.End, "load-end", 0, "step/line: final rps cap (0: none)")
	fs.IntVar(&s.Step, "load-step", 0, "step/line: rps change per step")
	fs.DurationVar(&s.StepDuration, "load-step-duration", 5*time.Second, "step: how long each step lasts")
	fs.UintVar(&s.Concurrency, "concurrency", 16, "concurrent workers (split by weight in the mix)")
	fs.UintVar(&s.Connections, "connections", 1, "gRPC connections (per scenario in the mix, split by weight)")
	fs.DurationVar(&s.Duration, "duration", 20*time.Second, "timed run; calls in flight at the end are awaited and counted")
	fs.UintVar(&s.Warmup, "warmup", 500, "calls at the start left out of the statistics (split by weight in the mix)")
	fs.DurationVar(&s.WarmupTime, "warmup-time", 2*time.Second, "calls started in the first part of the run left out too (connection and pool growth)")
	fs.DurationVar(&s.Timeout, "timeout", 5*time.Second, "per-call deadline")
	fs.BoolVar(&s.WaitForReady, "wait-for-ready", false, "a call made while its connection is being re-established waits for it (within --timeout) instead of failing with UNAVAILABLE, as a caller that retries would see it (rolling upgrades)")

	fs.DurationVar(&g.P95, "p95", 200*time.Millisecond, "gate: fail when p95 latency is above (0: off)")
	fs.DurationVar(&g.P99, "p99", 500*time.Millisecond, "gate: fail when p99 latency is above (0: off)")
	fs.Float64Var(&g.MaxErrorRate, "max-error-rate", 0.001, "gate: fail when the fraction of failed calls is above (0.001 = 0.1%; negative: off)")
	fs.Float64Var(&g.MinRPS, "min-rps", 1000, "gate: fail when throughput is below, req/s (0: off)")

	fs.BoolVar(&c.bench, "bench", false, "benchmark: health-check floor, then each RPC at the same --concurrency, ratios; then the mix at --bench-mix-rps")
	fs.UintVar(&c.benchMix, "bench-mix-rps", 5000, "bench: rate of the final mix run (0: skip)")
	fs.StringVar(&c.ghz, "external", "", "external benchmark instead: the ghz CLI at this path, two processes at a time at --external-rps each, against a bare grpc-go health server and then the service (VerifyToken and GetUser); p50 and p99 compared")
	fs.UintVar(&c.externalRPS, "external-rps", 2500, "external: each ghz process's rate")
	fs.BoolVar(&c.local, "local", false, "start a throwaway local stack (PostgreSQL + auth-service from --bin) and test it")
	fs.StringVar(&c.bin, "bin", "bin/auth-service", "auth-service binary for --local")
	fs.Var(kvFlag{c.svcEnv, false}, "service-env", "--local: KEY=value for the service's environment, repeatable (e.g. JWT_VERIFY_CACHE_SIZE=0)")
	fs.IntVar(&c.seed.N, "seed", 0, "create N users with permissions and tokens in --database-url (default with --local: 10000)")
	fs.StringVar(&c.seed.DatabaseURL, "database-url", os.Getenv("DATABASE_URL"), "database --seed writes to")
	fs.StringVar(&c.seed.PrivateKeyFile, "jwt-private-key-file", os.Getenv("JWT_PRIVATE_KEY_FILE"), "the service's signing key, for --seed tokens")
	fs.StringVar(&c.seed.Issuer, "jwt-issuer", os.Getenv("JWT_ISSUER"), "iss of --seed tokens")
	fs.StringVar(&c.seed.Audience, "jwt-audience", os.Getenv("JWT_AUDIENCE"), "aud of --seed tokens")
	fs.DurationVar(&c.seed.TokenTTL, "token-ttl", 2*time.Hour, "lifetime of --seed tokens")
	fs.StringVar(&c.data, "data", "", "JSON data set to read ids, emails and tokens from (nothing is written; see data.go)")
	fs.StringVar(&c.metricsURL, "metrics-url", "", "the service's /metrics URL, to report the read cache's hit rate in the mix (set by --local)")
	fs.StringVar(&c.out, "out", "loadtest/out", "folder for summary.json, data.json and ghz's HTML reports")
	fs.DurationVar(&c.progress, "progress", 5*time.Second, "progress line interval (0: off)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if t.CACert != "" || t.Cert != "" || t.SkipVerify {
		t.TLS = true
	}
	var problems []string
	if *traceTag != "" {
		if !traceTagRE.MatchString(*traceTag) {
			problems = append(problems, "--trace-tag: 1 to 64 letters, digits, '.', '_', ':' or '-' (a baggage value as it is)")
		}
		// Beside any baggage --metadata gives.
		t.Metadata["baggage"] = strings.TrimPrefix(t.Metadata["baggage"]+",nova.loadtest.run="+*traceTag, ",")
	}
	switch {
	case c.local && t.Addr != "":
		problems = append(problems, "--local and --addr exclude each other")
	case !c.local && t.Addr == "":
		problems = append(problems, "--addr HOST:PORT or --local is required")
	}
	if c.seed.N > 0 && c.data != "" {
		problems = append(problems, "--seed and --data exclude each other")
	}
	if !c.local && c.seed.N == 0 && c.data == "" {
		problems = append(problems, "--seed N (with a database) or --data FILE is required with --addr")
	}
	if (t.Cert == "") != (t.Key == "") {
		problems = append(problems, "--cert and --key go together")
	}
	if s.Concurrency == 0 || s.Connections == 0 {
		problems = append(problems, "--concurrency and --connections must be at least 1")
	}
	if s.Duration <= 0 || s.WarmupTime < 0 || s.WarmupTime >= s.Duration {
		problems = append(problems, "--duration must be positive and longer than --warmup-time")
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return c, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 2 && args[0] == "serve-health" { // the external benchmark's floor
		return serveHealth(args[1], stderr)
	}
	c, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "loadtest:", err)
		return 2
	}
	failures, err := execute(ctx, c, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "loadtest:", err)
		return 2
	}
	if len(failures) > 0 {
		fmt.Fprintln(stdout, "\nFAIL")
		for _, f := range failures {
			fmt.Fprintln(stdout, "  gate failed:", f)
		}
		return 1
	}
	fmt.Fprintln(stdout, "\nPASS")
	return 0
}

// execute prepares the target and the data set, runs, reports and returns the
// failed gates.
func execute(ctx context.Context, c *config, stdout, stderr io.Writer) ([]string, error) {
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return nil, err
	}
	if c.local {
		start := time.Now()
		logf, err := os.Create(filepath.Join(c.out, "service.log"))
		if err != nil {
			return nil, err
		}
		defer logf.Close()
		// A state folder others can enter: as root, PostgreSQL runs as the
		// postgres user, which cannot enter a 0700 temporary folder of root's.
		dir, err := os.MkdirTemp("", "nova-auth-loadtest-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		if err := os.Chmod(dir, 0o755); err != nil {
			return nil, err
		}
		var svcEnv []string
		for k, v := range c.svcEnv {
			svcEnv = append(svcEnv, k+"="+v)
		}
		st, err := devstack.Start(ctx, devstack.Options{Bin: c.bin, Dir: filepath.Join(dir, "stack"), Log: logf, Env: svcEnv})
		if err != nil {
			return nil, fmt.Errorf("local stack: %w", err)
		}
		defer st.Stop()
		c.target.Addr = st.GRPCAddr
		c.metricsURL = "http://" + st.HTTPAddr + "/metrics"
		env := envMap(st.Env)
		c.seed.DatabaseURL = env["DATABASE_URL"]
		c.seed.PrivateKeyFile = env["JWT_PRIVATE_KEY_FILE"]
		c.seed.Issuer, c.seed.Audience = env["JWT_ISSUER"], env["JWT_AUDIENCE"]
		if c.seed.N == 0 && c.data == "" {
			c.seed.N = 10000
		}
		fmt.Fprintf(stderr, "local stack up in %.1fs: gRPC %s, HTTP %s (service log: %s)\n",
			time.Since(start).Seconds(), st.GRPCAddr, st.HTTPAddr, logf.Name())
	}
	if err := preflight(ctx, c.target); err != nil {
		return nil, err
	}
	d, err := dataset(ctx, c, stderr)
	if err != nil {
		return nil, err
	}
	if err := checkDataset(ctx, c.target, d); err != nil {
		return nil, err
	}
	ps, err := protoset()
	if err != nil {
		return nil, err
	}
	if c.ghz != "" {
		return externalBench(ctx, c, d, ps, stdout, stderr)
	}
	if c.bench {
		return bench(ctx, c, d, ps, stdout, stderr)
	}
	return loadRun(ctx, c, d, ps, stdout, stderr)
}

func dataset(ctx context.Context, c *config, stderr io.Writer) (*Dataset, error) {
	if c.data != "" {
		return loadDataset(c.data)
	}
	start := time.Now()
	d, err := seed(ctx, c.seed)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(c.out, "data.json")
	if err := d.save(path); err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "seeded %d users with permissions and tokens in %.1fs (data set: %s, reuse with --data)\n",
		len(d.Users), time.Since(start).Seconds(), path)
	return d, nil
}

// checkDataset asks the server about the data set's first user and token, so
// users from another database or tokens signed with another key end the run
// here, named, instead of as a wall of NOT_FOUND or invalid tokens.
func checkDataset(ctx context.Context, t Target, d *Dataset) error {
	// Through the platform's own client library, as another service would
	// call: health-checked connection, retries of Unavailable, breaker.
	creds, err := t.transportCredentials()
	if err != nil {
		return err
	}
	cfg := clients.DefaultConfig()
	cfg.Targets = map[string]string{"auth": t.Addr}
	cfg.Registerer = prometheus.NewRegistry()
	// preflight already asked grpc.health.v1; without the pool's own health
	// watch, a server lacking AuthService answers Unimplemented, which says so.
	cfg.HealthCheck = false
	cfg.DialOptions = []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if t.Authority != "" {
		cfg.DialOptions = append(cfg.DialOptions, grpc.WithAuthority(t.Authority))
	}
	pool, err := clients.New(cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	cl := pool.Auth()
	// Each call waits for its connection, within the pool's per-call
	// timeout and the check's 10 s in all. A server that
	// answered preflight can still refuse this new connection for a moment:
	// behind a Service, it may reach a replica on a node whose policy engine
	// has not yet admitted this client (kube-router REJECTs until it syncs:
	// "connection refused"). The pool's quick retries alone give up on that.
	wait := grpc.WaitForReady(true)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for k, v := range t.Metadata {
		ctx = metadata.AppendToOutgoingContext(ctx, k, v)
	}
	u := d.Users[0]
	if _, err := cl.GetUser(ctx, &authpb.GetUserRequest{UserId: u.ID}, wait); err != nil {
		if status.Code(err) == codes.NotFound {
			return fmt.Errorf("the data set's user %s is not on the server at %s: wrong data set or database", u.ID, t.Addr)
		}
		return fmt.Errorf("GetUser of the data set's first user: %w", err)
	}
	v, err := cl.VerifyToken(ctx, &authpb.VerifyTokenRequest{Token: u.Token}, wait)
	if err != nil {
		return fmt.Errorf("VerifyToken of the data set's first token: %w", err)
	}
	if !v.GetValid() {
		return fmt.Errorf("the server refuses the data set's tokens (%s): wrong signing key, issuer or audience, or expired", v.GetError())
	}
	// ListUsers pages after the first go by page_token (keyset), as a
	// client paging through would.
	d.PageTokens = nil
	tok := ""
	for range 4 {
		r, err := cl.ListUsers(ctx, &authpb.ListUsersRequest{Limit: 20, PageToken: tok}, wait)
		if err != nil {
			return fmt.Errorf("ListUsers: %w", err)
		}
		if tok = r.GetNextPageToken(); tok == "" {
			break
		}
		d.PageTokens = append(d.PageTokens, tok)
	}
	return nil
}

func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// loadRun runs the mix, one scenario, or each scenario in turn, and gates it.
func loadRun(ctx context.Context, c *config, d *Dataset, ps []byte, stdout, stderr io.Writer) ([]string, error) {
	var rows []*Result
	var failures []string
	summary := map[string]any{"target": c.target.Addr, "shape": c.shape, "gates": c.gates, "started": time.Now()}
	switch strings.ToLower(c.scenario) {
	case "mix":
		mix, err := parseMix(c.mix)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(stderr, "mix for %s at %s against %s\n", c.shape.Duration, rateText(c.shape), c.target.Addr)
		window := cacheWindow(c.metricsURL, c.shape.WarmupTime)
		parts, total, err := runMix(ctx, c.target, mix, d, c.shape, ps, c.progress, stderr)
		if err != nil {
			return nil, err
		}
		hr := window()
		defer fmt.Fprintln(stdout, hr)
		summary["cache"] = hr
		if err := allFailed(total); err != nil {
			return nil, err
		}
		for _, p := range parts {
			rows = append(rows, p.Result)
			if err := writeHTML(c.out, "mix-", p.Report); err != nil {
				return nil, err
			}
		}
		rows = append(rows, total)
		failures = c.gates.check(total)
		summary["mix"] = c.mix
	default:
		list := scenarios
		if strings.ToLower(c.scenario) != "all" {
			sc, err := scenarioByName(c.scenario)
			if err != nil {
				return nil, err
			}
			list = []Scenario{sc}
		}
		for _, sc := range list {
			res, rep, err := runAlone(ctx, c, sc, d, c.shape, ps, stderr)
			if err != nil {
				return nil, err
			}
			if err := writeHTML(c.out, "", rep); err != nil {
				return nil, err
			}
			rows = append(rows, res)
			failures = append(failures, c.gates.check(res)...)
		}
	}
	fmt.Fprintln(stdout)
	printTable(stdout, rows)
	summary["results"], summary["failures"] = rows, failures
	if err := writeJSON(c.out, "summary.json", summary); err != nil {
		return nil, err
	}
	fmt.Fprintf(stdout, "\nreports: %s (summary.json, *.html)\n", c.out)
	return failures, nil
}

// runAlone runs one scenario by itself with a progress line.
func runAlone(ctx context.Context, c *config, sc Scenario, d *Dataset, s Shape, ps []byte, stderr io.Writer) (*Result, *runnerReport, error) {
	msgs, err := sc.messages(d)
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(stderr, "%s for %s at %s\n", sc.Name, s.Duration, rateText(s))
	prog := &progress{}
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	go prog.report(pctx, stderr, sc.Name, c.progress, s.Duration)
	res, rep, err := runOne(c.target, sc, msgs, s, ps, prog)
	if err != nil {
		return nil, nil, err
	}
	return res, rep, allFailed(res)
}

func rateText(s Shape) string {
	switch {
	case s.Schedule == "step" || s.Schedule == "line":
		return fmt.Sprintf("%s load from %d req/s, %+d per step, up to %d", s.Schedule, s.Start, s.Step, s.End)
	case s.RPS > 0:
		return fmt.Sprintf("%d req/s (concurrency cap %d)", s.RPS, s.Concurrency)
	}
	return fmt.Sprintf("concurrency %d, unpaced", s.Concurrency)
}
