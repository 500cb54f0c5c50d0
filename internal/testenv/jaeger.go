package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// jaegerBuilt is the Jaeger binary of this test process.
var jaegerBuilt struct {
	sync.Mutex
	bin string
	err error
}

// JaegerBinary returns bin/jaeger of the root module, built from the
// pinned module in tools/jaeger (its own go.mod, so none of Jaeger's
// dependencies reach the service's). `make test` builds it first; here the
// go build cache makes that a link at most.
func JaegerBinary() (string, error) {
	jaegerBuilt.Lock()
	defer jaegerBuilt.Unlock()
	if jaegerBuilt.bin == "" && jaegerBuilt.err == nil {
		jaegerBuilt.bin, jaegerBuilt.err = buildJaeger()
	}
	return jaegerBuilt.bin, jaegerBuilt.err
}

func buildJaeger() (string, error) {
	root, err := rootDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, "bin", "jaeger")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/jaegertracing/jaeger/cmd/jaeger")
	cmd.Dir = filepath.Join(root, "tools", "jaeger")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build Jaeger (make bin/jaeger; go build in %s): %w\n%s", cmd.Dir, err, out)
	}
	return bin, nil
}

// Jaeger is a Jaeger all-in-one on loopback: an OTLP receiver (gRPC and
// HTTP) that keeps traces in memory, and the query API they are read back
// from.
type Jaeger struct {
	// OTLPGRPC and OTLPHTTP are the receiver's endpoints as URLs, for
	// OTEL_EXPORTER_OTLP_ENDPOINT.
	OTLPGRPC, OTLPHTTP string
	// QueryURL is the query service's base URL.
	QueryURL string

	cmd  *exec.Cmd
	dir  string
	log  *LogBuffer
	done chan struct{}
}

const jaegerConfig = `service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: 127.0.0.1:%[1]d
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:%[2]d
    grpc:
      endpoint: 127.0.0.1:%[3]d
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%[4]d
      http:
        endpoint: 127.0.0.1:%[5]d
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`

// StartJaeger runs bin with a configuration of free loopback ports and
// waits until the query API answers.
func StartJaeger(ctx context.Context, bin string) (*Jaeger, error) {
	var ports [5]int
	for i := range ports {
		p, err := FreePort("127.0.0.1")
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	dir, err := os.MkdirTemp("", "nova-auth-jaeger-")
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, jaegerConfig, ports[0], ports[1], ports[2], ports[3], ports[4]), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	j := &Jaeger{
		OTLPGRPC: fmt.Sprintf("http://127.0.0.1:%d", ports[3]),
		OTLPHTTP: fmt.Sprintf("http://127.0.0.1:%d", ports[4]),
		QueryURL: fmt.Sprintf("http://127.0.0.1:%d", ports[1]),
		dir:      dir, log: &LogBuffer{}, done: make(chan struct{}),
	}
	j.cmd = exec.Command(bin, "--config", "file:"+cfg)
	j.cmd.Stdout, j.cmd.Stderr = j.log, j.log
	j.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := j.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start Jaeger: %w", err)
	}
	go func() { j.cmd.Wait(); close(j.done) }() //nolint:errcheck // the log says why
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		resp, err := http.Get(j.QueryURL + "/api/services")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return j, nil
			}
		}
		select {
		case <-j.done:
			j.Close()
			return nil, fmt.Errorf("Jaeger exited at start:\n%s", j.Log())
		case <-ctx.Done():
			j.Close()
			return nil, fmt.Errorf("Jaeger's query API did not answer within a minute:\n%s", j.Log())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Log is what Jaeger printed.
func (j *Jaeger) Log() string { return j.log.String() }

// Close stops Jaeger and removes its configuration.
func (j *Jaeger) Close() {
	j.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // already gone is fine
	select {
	case <-j.done:
	case <-time.After(10 * time.Second):
		j.cmd.Process.Kill() //nolint:errcheck // already gone is fine
		<-j.done
	}
	os.RemoveAll(j.dir)
}

// Span is a span as Jaeger's query API returns it, its tags flattened.
type Span struct {
	TraceID, SpanID, ParentID, Name, Service string
	Tags                                     map[string]any
}

// Kind is the span's kind ("server", "client", "internal").
func (s Span) Kind() string { v, _ := s.Tags["span.kind"].(string); return v }

// Trace returns the spans of traceID (32 hex digits) once Jaeger holds at
// least min of them: exporters batch, so spans arrive some time after the
// call. It gives up when ctx ends, returning what it has.
func (j *Jaeger) Trace(ctx context.Context, traceID string, min int) ([]Span, error) {
	for {
		spans, err := j.trace(ctx, traceID)
		if err == nil && len(spans) >= min {
			return spans, nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("trace %s: %d spans, want at least %d", traceID, len(spans), min)
			}
			return spans, err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Find returns the spans of the traces (at most 100, of the last hour) in
// which service has a span with every tag of tags.
func (j *Jaeger) Find(ctx context.Context, service string, tags map[string]string) ([]Span, error) {
	tj, err := json.Marshal(tags)
	if err != nil {
		return nil, err
	}
	q := url.Values{"service": {service}, "tags": {string(tj)}, "limit": {"100"}, "lookback": {"1h"}}
	return j.get(ctx, "/api/traces?"+q.Encode())
}

func (j *Jaeger) trace(ctx context.Context, traceID string) ([]Span, error) {
	return j.get(ctx, "/api/traces/"+traceID)
}

// get reads the traces of one query API call, as spans.
func (j *Jaeger) get(ctx context.Context, path string) ([]Span, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.QueryURL+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	var body struct {
		Data []struct {
			Spans []struct {
				TraceID       string `json:"traceID"`
				SpanID        string `json:"spanID"`
				OperationName string `json:"operationName"`
				ProcessID     string `json:"processID"`
				References    []struct {
					RefType string `json:"refType"`
					SpanID  string `json:"spanID"`
				} `json:"references"`
				Tags []struct {
					Key   string `json:"key"`
					Value any    `json:"value"`
				} `json:"tags"`
			} `json:"spans"`
			Processes map[string]struct {
				ServiceName string `json:"serviceName"`
			} `json:"processes"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	var spans []Span
	for _, d := range body.Data {
		for _, s := range d.Spans {
			sp := Span{TraceID: s.TraceID, SpanID: s.SpanID, Name: s.OperationName,
				Service: d.Processes[s.ProcessID].ServiceName, Tags: map[string]any{}}
			for _, r := range s.References {
				if r.RefType == "CHILD_OF" {
					sp.ParentID = r.SpanID
				}
			}
			for _, t := range s.Tags {
				sp.Tags[t.Key] = t.Value
			}
			spans = append(spans, sp)
		}
	}
	return spans, nil
}

// rootDir is the root module's folder, from any module that requires it.
func rootDir() (string, error) {
	var stderr bytes.Buffer
	list := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/nova-auth/nova-auth")
	list.Stderr = &stderr
	out, err := list.Output()
	if err != nil {
		return "", fmt.Errorf("find the root module: %w\n%s", err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}
