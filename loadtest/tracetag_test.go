package main

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/nova-auth/nova-auth/internal/testenv"
)

// TestTraceTag: with --trace-tag the service's spans of the run carry the
// tag, so the run's traces are found by it in what the collector received; a tag a trace store
// could not search for as typed is refused.
func TestTraceTag(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the collector, starts PostgreSQL and the service (make test runs it without -short)")
	}
	if _, err := parseFlags([]string{"--local", "--trace-tag", "run 1"}, &bytes.Buffer{}); err == nil {
		t.Error("--trace-tag 'run 1' accepted")
	}
	ctx := context.Background()
	cb, err := testenv.CollectorBinary()
	if err != nil {
		t.Fatal(err)
	}
	j, err := testenv.StartCollector(ctx, cb)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	bin, err := testenv.Binary()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"--local", "--bin", bin, "--seed", "100", "--scenario", "GetUser", "--rps", "200",
		"--duration", "3s", "--warmup-time", "1s", "--warmup", "0", "--progress", "0", "--min-rps", "0",
		"--out", filepath.Join(enterableTempDir(t), "out"), "--trace-tag", "run-42",
		"--service-env", "OTEL_EXPORTER_OTLP_ENDPOINT=" + j.OTLPGRPC, "--service-env", "OTEL_BSP_SCHEDULE_DELAY=100"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := j.Find(ctx, "auth-service", map[string]string{"baggage.nova.loadtest.run": "run-42"}); err != nil {
		t.Fatalf("no span of auth-service tagged baggage.nova.loadtest.run=run-42 received: %v\n%s", err, stdout.String())
	}
}
