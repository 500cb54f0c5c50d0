package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/bojand/ghz/runner"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"

	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

// The external benchmark's targets (issue 15): the service's latency
// against a bare grpc-go health server's, both driven by the same ghz CLI
// processes on the same machine in the same run.
const (
	externalP50Ratio = 2.0
	externalP99Ratio = 1.5
)

// serveHealth is `loadtest serve-health ADDR`: a gRPC server with only the
// standard health service, SERVING, until SIGTERM or SIGINT. It is the floor
// the external benchmark measures the service against: the same transport,
// nothing behind it.
func serveHealth(addr string, stderr io.Writer) int {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(stderr, "serve-health:", err)
		return 2
	}
	s := grpc.NewServer()
	grpc_health_v1.RegisterHealthServer(s, health.NewServer())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	go func() { <-sig; s.Stop() }()
	if err := s.Serve(l); err != nil {
		fmt.Fprintln(stderr, "serve-health:", err)
		return 2
	}
	return 0
}

// ghzRun is one ghz CLI process: a call at a rate, with its request file.
type ghzRun struct {
	Target string `json:"target"` // "floor" or "service"
	Call   string `json:"call"`
	Addr   string `json:"-"`
	Data   string `json:"-"`
	Report *runner.Report
}

// ExternalRow is one ghz process's result (Name is the method).
type ExternalRow struct {
	Target string `json:"target"`
	Result
}

// externalBench drives the bare health server and then the service, each
// with two ghz CLI processes at --external-rps each (the floor: Health/Check
// twice; the service: VerifyToken and GetUser), and compares p50 and p99.
func externalBench(ctx context.Context, c *config, d *Dataset, ps []byte, stdout, stderr io.Writer) ([]string, error) {
	dir, err := filepath.Abs(filepath.Join(c.out, "external"))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	protoset := filepath.Join(dir, "protoset.bin")
	if err := os.WriteFile(protoset, ps, 0o644); err != nil {
		return nil, err
	}
	files := map[string][]any{"health": {map[string]any{}}}
	n := min(len(d.Users), maxMessages)
	for i := range n {
		u := d.user(i)
		files["tokens"] = append(files["tokens"], map[string]string{"token": u.Token})
		files["users"] = append(files["users"], map[string]string{"user_id": u.ID})
	}
	for name, msgs := range files {
		b, _ := json.Marshal(msgs)
		if err := os.WriteFile(filepath.Join(dir, name+".json"), b, 0o644); err != nil {
			return nil, err
		}
	}

	// The floor: this program, as a separate process serving health only.
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	healthAddr := l.Addr().String()
	l.Close()
	floor := exec.CommandContext(ctx, self, "serve-health", healthAddr)
	floor.Stderr = stderr
	if err := floor.Start(); err != nil {
		return nil, fmt.Errorf("start the bare health server: %w", err)
	}
	defer func() { floor.Process.Signal(syscall.SIGTERM); floor.Wait() }() //nolint:errcheck // best effort
	ht := c.target
	ht.Addr = healthAddr
	deadline := time.Now().Add(10 * time.Second)
	for preflight(ctx, ht) != nil {
		if time.Now().After(deadline) {
			return nil, errors.New("the bare health server did not answer within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}

	check := grpc_health_v1.Health_ServiceDesc.ServiceName + "/Check"
	svc := authpb.AuthService_ServiceDesc.ServiceName + "/"
	phases := [][]*ghzRun{
		{{Target: "floor", Call: check, Addr: healthAddr, Data: "health"}, {Target: "floor", Call: check, Addr: healthAddr, Data: "health"}},
		{{Target: "service", Call: svc + "VerifyToken", Addr: c.target.Addr, Data: "tokens"}, {Target: "service", Call: svc + "GetUser", Addr: c.target.Addr, Data: "users"}},
	}
	var rows []ExternalRow
	for _, phase := range phases {
		fmt.Fprintf(stderr, "external: two ghz processes at %d req/s each for %s against the %s (%s)\n", c.externalRPS, c.shape.Duration, phase[0].Target, phase[0].Addr)
		if err := runGhzPhase(ctx, c, dir, protoset, phase); err != nil {
			return nil, err
		}
		for _, r := range phase {
			rows = append(rows, externalRow(r))
		}
	}
	md, missed := externalMarkdown(c, rows)
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, md)
	if err := os.WriteFile(filepath.Join(c.out, "external.md"), []byte(md), 0o644); err != nil {
		return nil, err
	}
	if err := writeJSON(c.out, "external.json", map[string]any{"machine": machine(), "rows": rows, "missed": missed}); err != nil {
		return nil, err
	}
	// Measured and reported, not gated, like the in-process benchmark.
	return nil, nil
}

// runGhzPhase runs one ghz CLI process per run at once and reads their
// JSON reports.
func runGhzPhase(ctx context.Context, c *config, dir, protoset string, runs []*ghzRun) error {
	var wg sync.WaitGroup
	errs := make([]error, len(runs))
	for i, r := range runs {
		out := filepath.Join(dir, fmt.Sprintf("%s-%d.json", r.Target, i))
		args := []string{"--insecure", "--protoset", protoset, "--call", r.Call,
			"--data-file", filepath.Join(dir, r.Data+".json"),
			"--rps", strconv.FormatUint(uint64(c.externalRPS), 10), "--duration", c.shape.Duration.String(),
			"--concurrency", strconv.FormatUint(uint64(c.shape.Concurrency), 10), "--connections", "1",
			"--skipFirst", strconv.FormatUint(uint64(c.shape.Warmup), 10), "--count-errors",
			"--timeout", c.shape.Timeout.String(), "--disable-template-functions",
			"--duration-stop", "wait", "--format", "json", "--output", out, r.Addr}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.CommandContext(ctx, c.ghz, args...)
			if b, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("%s %s: %w\n%s", c.ghz, strings.Join(args, " "), err, b)
				return
			}
			b, err := os.ReadFile(out)
			if err == nil {
				r.Report = &runner.Report{}
				err = json.Unmarshal(b, r.Report)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func externalRow(r *ghzRun) ExternalRow {
	row := ExternalRow{Target: r.Target, Result: Result{Name: r.Call[strings.LastIndex(r.Call, "/")+1:], RPS: r.Report.Rps, Calls: int(r.Report.Count)}}
	for _, ld := range r.Report.LatencyDistribution {
		switch ld.Percentage {
		case 50:
			row.P50 = ld.Latency
		case 99:
			row.P99 = ld.Latency
		}
	}
	for code, n := range r.Report.StatusCodeDist {
		if code != "OK" {
			row.Errors += n
		}
	}
	return row
}

// externalMarkdown is the table RESULTS.md records, and the targets missed.
func externalMarkdown(c *config, rows []ExternalRow) (string, []string) {
	var floorP50, floorP99 time.Duration
	nf := 0
	for _, r := range rows {
		if r.Target == "floor" {
			floorP50 += r.P50
			floorP99 += r.P99
			nf++
		}
	}
	floorP50 /= time.Duration(max(nf, 1))
	floorP99 /= time.Duration(max(nf, 1))
	var b strings.Builder
	m := machine()
	fmt.Fprintf(&b, "External ghz CLI processes, two at a time, %d req/s each, %s, concurrency %d each, first %d calls skipped; load average at the end: %s\n\n",
		c.externalRPS, c.shape.Duration, c.shape.Concurrency, c.shape.Warmup, m["loadavg"])
	tw := tabwriter.NewWriter(&b, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "| server\t call\t req/s\t p50\t p99\t p50 / floor\t p99 / floor\t errors\t")
	fmt.Fprintln(tw, "|---\t---\t---:\t---:\t---:\t---:\t---:\t---:\t")
	var missed []string
	for _, r := range rows {
		name := "bare grpc-go health"
		if r.Target == "service" {
			name = "auth-service"
		}
		p50r, p99r := float64(r.P50)/float64(floorP50), float64(r.P99)/float64(floorP99)
		fmt.Fprintf(tw, "| %s\t %s\t %.0f\t %s\t %s\t %.2f×\t %.2f×\t %d\t\n", name, r.Name, r.RPS, fmtDur(r.P50), fmtDur(r.P99), p50r, p99r, r.Errors)
		if r.Target != "service" {
			continue
		}
		if p50r > externalP50Ratio {
			missed = append(missed, fmt.Sprintf("%s p50 %.2f× the floor's (target ≤ %.1f×)", r.Name, p50r, externalP50Ratio))
		}
		if p99r > externalP99Ratio {
			missed = append(missed, fmt.Sprintf("%s p99 %.2f× the floor's (target ≤ %.1f×)", r.Name, p99r, externalP99Ratio))
		}
		if r.Errors > 0 {
			missed = append(missed, fmt.Sprintf("%s: %d errors", r.Name, r.Errors))
		}
	}
	tw.Flush()
	if len(missed) > 0 {
		fmt.Fprintf(&b, "\nMissed: %s\n", strings.Join(missed, "; "))
	} else {
		fmt.Fprintf(&b, "\nTargets met: p50 ≤ %.0f× and p99 ≤ %.1f× the floor's, no errors.\n", externalP50Ratio, externalP99Ratio)
	}
	return b.String(), missed
}
