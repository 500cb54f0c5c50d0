package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bojand/ghz/runner"
	"github.com/jhump/protoreflect/dynamic"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// Target is the server under test and how to reach it.
type Target struct {
	Addr        string
	TLS         bool   // off: plaintext
	CACert      string // PEM bundle that signs the server's certificate
	Cert, Key   string // client certificate and key (mTLS)
	ServerName  string // overrides the name checked in the server's certificate
	SkipVerify  bool
	Authority   string // :authority header
	Metadata    map[string]string
	DialTimeout time.Duration
}

// Shape is the load: how fast, how many at once, how long.
type Shape struct {
	RPS          uint          // 0: as fast as Concurrency allows (closed loop)
	Schedule     string        // const, step or line
	Start, End   uint          // step/line: rps at the start, rps cap at the end
	Step         int           // step/line: rps change per step (line: per second)
	StepDuration time.Duration // step: how long each step lasts
	Concurrency  uint          // workers
	Connections  uint          // gRPC connections
	Duration     time.Duration // timed run; calls in flight at the end are awaited
	Warmup       uint          // calls left out of the statistics at the start
	WarmupTime   time.Duration // calls started this early in the run are left out too
	Timeout      time.Duration // per-call deadline
	// WaitForReady makes a call issued while its connection is being
	// re-established (a server draining in a rolling upgrade sends GOAWAY)
	// wait for it, within Timeout, instead of failing at once with
	// UNAVAILABLE: what a caller that retries UNAVAILABLE observes.
	WaitForReady bool
}

func (s Shape) paced() bool { return s.RPS > 0 || s.Schedule == "step" || s.Schedule == "line" }

// scaled is this shape's share w (0..1] of a mix: rates, warm-up and workers
// split by weight, each part keeping enough workers to absorb jitter.
func (s Shape) scaled(w float64) Shape {
	r := func(v uint) uint {
		if v == 0 {
			return 0
		}
		return uint(math.Max(1, math.Round(float64(v)*w)))
	}
	out := s
	out.RPS, out.Start, out.End = r(s.RPS), r(s.Start), r(s.End)
	if s.Step != 0 {
		out.Step = int(math.Copysign(math.Max(1, math.Round(math.Abs(float64(s.Step))*w)), float64(s.Step)))
	}
	out.Warmup = uint(math.Round(float64(s.Warmup) * w))
	out.Concurrency = uint(math.Max(4, math.Ceil(float64(s.Concurrency)*w)))
	out.Connections = uint(math.Max(1, math.Round(float64(s.Connections)*w)))
	if out.Connections > out.Concurrency {
		out.Connections = out.Concurrency
	}
	return out
}

// transportCredentials builds the same credentials the ghz runs use, for the
// pre-flight check.
func (t Target) transportCredentials() (credentials.TransportCredentials, error) {
	if !t.TLS {
		return insecure.NewCredentials(), nil
	}
	conf := &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: t.SkipVerify} //nolint:gosec // an explicit flag
	if t.CACert != "" {
		pem, err := os.ReadFile(t.CACert)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate", t.CACert)
		}
		conf.RootCAs = pool
	}
	if t.Cert != "" || t.Key != "" {
		c, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		conf.Certificates = []tls.Certificate{c}
	}
	return credentials.NewTLS(conf), nil
}

// dial opens a client connection for the checks made outside ghz.
func (t Target) dial() (*grpc.ClientConn, error) {
	creds, err := t.transportCredentials()
	if err != nil {
		return nil, err
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if t.Authority != "" {
		opts = append(opts, grpc.WithAuthority(t.Authority))
	}
	cc, err := grpc.NewClient(t.Addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("cannot use address %q: %w", t.Addr, err)
	}
	return cc, nil
}

// preflight makes one health check before any load, so a wrong address, a
// stopped server or a TLS mismatch ends the run with that reason instead of
// a report full of failed calls.
func preflight(ctx context.Context, t Target) error {
	cc, err := t.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(ctx, t.DialTimeout)
	defer cancel()
	// WaitForReady: keep trying to connect until the deadline, then report the
	// last connection error.
	resp, err := grpc_health_v1.NewHealthClient(cc).Check(ctx, &grpc_health_v1.HealthCheckRequest{}, grpc.WaitForReady(true))
	switch {
	case status.Code(err) == codes.Unimplemented:
		return nil // a gRPC server without the health service: reachable
	case err != nil:
		return fmt.Errorf("cannot reach a gRPC server at %s within %s: %s (wrong address, server down, plaintext/TLS mismatch, or a client certificate missing or refused: --cert/--key?)",
			t.Addr, t.DialTimeout, status.Convert(err).Message())
	case resp.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING:
		return fmt.Errorf("server at %s reports %s", t.Addr, resp.GetStatus())
	}
	return nil
}

// progress counts calls started across concurrent runs for the progress line.
type progress struct{ started atomic.Int64 }

// report prints a progress line every interval until ctx ends.
func (p *progress) report(ctx context.Context, w io.Writer, label string, every, total time.Duration) {
	if every <= 0 {
		return
	}
	start := time.Now()
	t := time.NewTicker(every)
	defer t.Stop()
	var last int64
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			n := p.started.Load()
			fmt.Fprintf(w, "  %s: %4.0fs / %s  %d calls sent, %.0f/s now\n", label,
				now.Sub(start).Seconds(), total, n, float64(n-last)/every.Seconds())
			last = n
		}
	}
}

// runOne drives one scenario with ghz and summarises it.
func runOne(t Target, sc Scenario, msgs []*dynamic.Message, s Shape, ps []byte, prog *progress) (*Result, *runner.Report, error) {
	since := time.Now().Add(s.WarmupTime)
	n := int64(len(msgs))
	opts := []runner.Option{
		runner.WithName(sc.Name),
		runner.WithProtosetBinary(ps),
		runner.WithInsecure(!t.TLS),
		runner.WithSkipTLSVerify(t.SkipVerify),
		runner.WithDialTimeout(t.DialTimeout),
		runner.WithConcurrency(s.Concurrency),
		runner.WithConnections(s.Connections),
		runner.WithRunDuration(s.Duration),
		// Calls in flight when the time is up finish and count.
		runner.WithDurationStopAction("wait"),
		runner.WithCountErrors(true),
		runner.WithTimeout(s.Timeout),
		runner.WithAsync(s.paced()),
		runner.WithDisableTemplateFuncs(true),
		runner.WithDisableTemplateData(true),
		runner.WithDataProvider(func(cd *runner.CallData) ([]*dynamic.Message, error) {
			prog.started.Add(1)
			return []*dynamic.Message{msgs[cd.RequestNumber%n]}, nil
		}),
	}
	outcomes := &calls{}
	copts := []grpc.CallOption{
		grpc.OnFinish(outcomes.finish),
		// ghz's own defaults, which any default call options replace.
		grpc.MaxCallRecvMsgSize(math.MaxInt32), grpc.MaxCallSendMsgSize(math.MaxInt32),
	}
	if s.WaitForReady {
		copts = append(copts, grpc.WaitForReady(true))
	}
	opts = append(opts, runner.WithDefaultCallOptions(copts))
	if t.CACert != "" {
		opts = append(opts, runner.WithRootCertificate(t.CACert))
	}
	if t.Cert != "" {
		opts = append(opts, runner.WithCertificate(t.Cert, t.Key))
	}
	if t.ServerName != "" {
		opts = append(opts, runner.WithServerNameOverride(t.ServerName))
	}
	if t.Authority != "" {
		opts = append(opts, runner.WithAuthority(t.Authority))
	}
	if len(t.Metadata) > 0 {
		opts = append(opts, runner.WithMetadata(t.Metadata))
	}
	switch s.Schedule {
	case "", "const":
		if s.RPS > 0 {
			opts = append(opts, runner.WithRPS(s.RPS))
		}
	case "step", "line":
		opts = append(opts, runner.WithLoadSchedule(s.Schedule), runner.WithLoadStart(s.Start),
			runner.WithLoadEnd(s.End), runner.WithLoadStep(s.Step), runner.WithLoadStepDuration(s.StepDuration))
	default:
		return nil, nil, fmt.Errorf("--load-schedule %q: want const, step or line", s.Schedule)
	}
	rep, err := runner.Run(sc.Call, t.Addr, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", sc.Name, err)
	}
	// Calls, not attempts, in the rows the mix's row is summarised from too
	// (ghz's HTML report keeps its own per-attempt figures). The warm-up's
	// first calls are left out here, after the matching, so that it sees
	// every attempt (ghz's WithSkipFirst would count attempts).
	var retried []runner.ResultDetail
	rep.Details, retried = outcomes.withoutRetried(rep.Details)
	rep.Details = rep.Details[min(uint(len(rep.Details)), s.Warmup):]
	res := summarize(sc.Name, rep.Details, since)
	res.Weight = 1
	res.addRetried(retried, since)
	return res, rep, nil
}

type runnerReport = runner.Report

// Part is one scenario's run inside a mix.
type Part struct {
	Result *Result
	Report *runner.Report
}

// runMix drives the weighted scenarios at once, each with its share of the
// load, and adds an overall row computed from every call.
func runMix(ctx context.Context, t Target, mix []Weight, d *Dataset, s Shape, ps []byte, progEvery time.Duration, log io.Writer) ([]Part, *Result, error) {
	msgs := make([][]*dynamic.Message, len(mix))
	for i, w := range mix {
		var err error
		if msgs[i], err = w.Scenario.messages(d); err != nil {
			return nil, nil, err
		}
	}
	prog := &progress{}
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	go prog.report(pctx, log, "mix", progEvery, s.Duration)

	since := time.Now().Add(s.WarmupTime)
	parts := make([]Part, len(mix))
	errs := make([]error, len(mix))
	var wg sync.WaitGroup
	for i, w := range mix {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, rep, err := runOne(t, w.Scenario, msgs[i], s.scaled(w.Weight), ps, prog)
			if res != nil {
				res.Weight = w.Weight
			}
			parts[i], errs[i] = Part{res, rep}, err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	var all []runner.ResultDetail
	for _, p := range parts {
		all = append(all, p.Report.Details...)
	}
	total := summarize("mix", all, since)
	total.Weight = 1
	for _, p := range parts {
		total.Retried += p.Result.Retried
		for m, n := range p.Result.RetriedMsgs {
			total.RetriedMsgs[m] += n
		}
	}
	return parts, total, nil
}

// Result is one row of the summary.
type Result struct {
	Name      string         `json:"name"`
	Weight    float64        `json:"weight"`
	Calls     int            `json:"calls"`
	Errors    int            `json:"errors"`
	ErrorRate float64        `json:"error_rate"`
	RPS       float64        `json:"rps"`
	P50       time.Duration  `json:"p50_ns"`
	P90       time.Duration  `json:"p90_ns"`
	P95       time.Duration  `json:"p95_ns"`
	P99       time.Duration  `json:"p99_ns"`
	Max       time.Duration  `json:"max_ns"`
	Codes     map[string]int `json:"codes"`
	ErrorMsgs map[string]int `json:"errors_by_message,omitempty"`
	// FirstError is when the earliest failed call began (zero: none), to
	// line a failure up with what the cluster did then.
	FirstError time.Time `json:"first_error_at,omitzero"`
	// Retried counts failed attempts that grpc-go retried by itself (a
	// connection draining or closing under the call); the calls succeeded
	// or failed later and count as such. Not in Calls or Errors, nor in the
	// latencies: a retried call's latency is its last attempt's.
	Retried     int            `json:"retried_attempts,omitempty"`
	RetriedMsgs map[string]int `json:"retried_attempts_by_message,omitempty"`
}

// addRetried counts the retried attempts that began at or after since.
func (r *Result) addRetried(rows []runner.ResultDetail, since time.Time) {
	for _, d := range rows {
		if !d.Timestamp.Add(-d.Latency).Before(since) {
			r.Retried++
			r.RetriedMsgs[d.Error]++
		}
	}
}

// summarize computes a row from the calls that started at or after since (the
// end of the warm-up). Failed calls count in the latency percentiles too; throughput is calls over the span from the first
// counted call's start to the last one's end, so skipped warm-up calls and the
// final drain do not dilute it.
func summarize(name string, all []runner.ResultDetail, since time.Time) *Result {
	r := &Result{Name: name, Codes: map[string]int{}, ErrorMsgs: map[string]int{}, RetriedMsgs: map[string]int{}}
	details := make([]runner.ResultDetail, 0, len(all))
	for _, d := range all {
		if !d.Timestamp.Add(-d.Latency).Before(since) {
			details = append(details, d)
		}
	}
	r.Calls = len(details)
	if len(details) == 0 {
		return r
	}
	lat := make([]time.Duration, len(details))
	var first, last time.Time
	for i, d := range details {
		lat[i] = d.Latency
		code := d.Status
		if code == "" {
			code = "Unknown"
		}
		r.Codes[code]++
		start := d.Timestamp.Add(-d.Latency)
		if rowFailed(d) {
			r.Errors++
			r.ErrorMsgs[d.Error]++
			if r.FirstError.IsZero() || start.Before(r.FirstError) {
				r.FirstError = start
			}
		}
		if first.IsZero() || start.Before(first) {
			first = start
		}
		if d.Timestamp.After(last) {
			last = d.Timestamp
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration { // nearest rank
		k := int(math.Ceil(p/100*float64(len(lat)))) - 1
		return lat[max(0, min(k, len(lat)-1))]
	}
	r.P50, r.P90, r.P95, r.P99, r.Max = pct(50), pct(90), pct(95), pct(99), lat[len(lat)-1]
	r.ErrorRate = float64(r.Errors) / float64(r.Calls)
	if span := last.Sub(first); span > 0 {
		r.RPS = float64(r.Calls) / span.Seconds()
	}
	return r
}

// allFailed names a run in which nothing succeeded: a wrong address or
// service, not a slow one, so it ends the run rather than fill a table.
func allFailed(r *Result) error {
	if r.Calls == 0 {
		return fmt.Errorf("%s: no call completed", r.Name)
	}
	if r.Errors < r.Calls {
		return nil
	}
	top, n := "", 0
	for m, c := range r.ErrorMsgs {
		if c > n || (c == n && m < top) {
			top, n = m, c
		}
	}
	return fmt.Errorf("%s: every one of %d calls failed, e.g. %q", r.Name, r.Calls, strings.TrimSpace(top))
}
