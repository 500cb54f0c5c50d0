package main

import (
	"fmt"
	"time"
)

// Gates are the pass/fail thresholds of a run: a zero latency or rps gate
// and a negative error-rate gate are off.
// The defaults are the spec's targets.
type Gates struct {
	P95          time.Duration
	P99          time.Duration
	MaxErrorRate float64 // fraction: 0.001 is 0.1 %
	MinRPS       float64
}

// check returns one line per failed gate, naming the measured value.
func (g Gates) check(r *Result) []string {
	var out []string
	if g.P95 > 0 && r.P95 > g.P95 {
		out = append(out, fmt.Sprintf("%s: p95 %s is above the --p95 gate of %s", r.Name, fmtDur(r.P95), fmtDur(g.P95)))
	}
	if g.P99 > 0 && r.P99 > g.P99 {
		out = append(out, fmt.Sprintf("%s: p99 %s is above the --p99 gate of %s", r.Name, fmtDur(r.P99), fmtDur(g.P99)))
	}
	if g.MaxErrorRate >= 0 && r.ErrorRate > g.MaxErrorRate {
		out = append(out, fmt.Sprintf("%s: error rate %.3f%% (%d of %d calls) is above the --max-error-rate gate of %.3f%%",
			r.Name, 100*r.ErrorRate, r.Errors, r.Calls, 100*g.MaxErrorRate))
	}
	if g.MinRPS > 0 && r.RPS < g.MinRPS {
		out = append(out, fmt.Sprintf("%s: throughput %.0f req/s is below the --min-rps gate of %.0f req/s", r.Name, r.RPS, g.MinRPS))
	}
	return out
}

// fmtDur prints a latency with three significant digits.
func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.3gs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.3gms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.3gµs", float64(d)/float64(time.Microsecond))
	}
}
