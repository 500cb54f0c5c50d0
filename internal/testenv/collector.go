package testenv

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// collectorBuilt is the collector binary of this test process.
var collectorBuilt struct {
	sync.Mutex
	bin string
	err error
}

// CollectorBinary returns bin/otelcol of the root module, built from
// tools/otelcol (an OpenTelemetry Collector with the OTLP receiver and the
// file exporter, pinned in a module of its own, so none of its dependencies
// reach the service's). `make test` builds it first; here the go build
// cache makes that a link at most.
func CollectorBinary() (string, error) {
	collectorBuilt.Lock()
	defer collectorBuilt.Unlock()
	if collectorBuilt.bin == "" && collectorBuilt.err == nil {
		collectorBuilt.bin, collectorBuilt.err = buildCollector()
	}
	return collectorBuilt.bin, collectorBuilt.err
}

func buildCollector() (string, error) {
	root, err := rootDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, "bin", "otelcol")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = filepath.Join(root, "tools", "otelcol")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the collector (make bin/otelcol; go build in %s): %w\n%s", cmd.Dir, err, out)
	}
	return bin, nil
}

// Collector is an OpenTelemetry Collector on loopback: an OTLP receiver
// (gRPC and HTTP) whose traces the file exporter writes, one export request
// per line of OTLP JSON, where Trace and Find read them back.
type Collector struct {
	// OTLPGRPC and OTLPHTTP are the receiver's endpoints as URLs, for
	// OTEL_EXPORTER_OTLP_ENDPOINT.
	OTLPGRPC, OTLPHTTP string

	cmd  *exec.Cmd
	dir  string
	file string
	log  *LogBuffer
	done chan struct{}
}

const collectorConfig = `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%[1]d
      http:
        endpoint: 127.0.0.1:%[2]d
exporters:
  file:
    path: %[3]s
    flush_interval: 50ms
service:
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [file]
`

// StartCollector runs bin with a configuration of free loopback ports and
// waits until the OTLP receiver accepts connections.
func StartCollector(ctx context.Context, bin string) (*Collector, error) {
	var ports [2]int
	for i := range ports {
		p, err := FreePort("127.0.0.1")
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	dir, err := os.MkdirTemp("", "nova-auth-otelcol-")
	if err != nil {
		return nil, err
	}
	c := &Collector{
		OTLPGRPC: fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		OTLPHTTP: fmt.Sprintf("http://127.0.0.1:%d", ports[1]),
		dir:      dir, file: filepath.Join(dir, "traces.jsonl"), log: &LogBuffer{}, done: make(chan struct{}),
	}
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, collectorConfig, ports[0], ports[1], c.file), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c.cmd = exec.Command(bin, "--config", "file:"+cfg)
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start the collector: %w", err)
	}
	go func() { c.cmd.Wait(); close(c.done) }() //nolint:errcheck // the log says why
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		if conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ports[0])); err == nil {
			conn.Close()
			return c, nil
		}
		select {
		case <-c.done:
			c.Close()
			return nil, fmt.Errorf("the collector exited at start:\n%s", c.log)
		case <-ctx.Done():
			c.Close()
			return nil, fmt.Errorf("the collector's OTLP receiver did not listen within a minute:\n%s", c.log)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Log is what the collector printed.
func (c *Collector) Log() string { return c.log.String() }

// Close stops the collector and removes its files.
func (c *Collector) Close() {
	c.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // already gone is fine
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill() //nolint:errcheck // already gone is fine
		<-c.done
	}
	os.RemoveAll(c.dir)
}

// Span is a span the collector received, its attributes flattened into
// Tags, with "span.kind" and, for an error status, "otel.status_code".
type Span struct {
	TraceID, SpanID, ParentID, Name, Service string
	Tags                                     map[string]any
}

// Kind is the span's kind ("server", "client", "internal").
func (s Span) Kind() string { v, _ := s.Tags["span.kind"].(string); return v }

// Trace returns the spans of traceID (32 hex digits) once the collector has
// written at least min of them: exporters batch, so spans arrive some time
// after the call. It gives up when ctx ends, returning what it has.
func (c *Collector) Trace(ctx context.Context, traceID string, min int) ([]Span, error) {
	return c.await(ctx, func(s Span) bool { return s.TraceID == traceID }, min)
}

// Find returns the spans of service with every tag of tags, once there is
// at least one.
func (c *Collector) Find(ctx context.Context, service string, tags map[string]string) ([]Span, error) {
	return c.await(ctx, func(s Span) bool {
		if s.Service != service {
			return false
		}
		for k, v := range tags {
			if fmt.Sprint(s.Tags[k]) != v {
				return false
			}
		}
		return true
	}, 1)
}

func (c *Collector) await(ctx context.Context, keep func(Span) bool, min int) ([]Span, error) {
	for {
		all, err := c.spans()
		var got []Span
		for _, s := range all {
			if keep(s) {
				got = append(got, s)
			}
		}
		if err == nil && len(got) >= min {
			return got, nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("%d matching spans, want at least %d", len(got), min)
			}
			return got, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// otlpJSON is the part of an OTLP/JSON ExportTraceServiceRequest read here.
type otlpJSON struct {
	ResourceSpans []struct {
		Resource struct {
			Attributes []otlpAttr `json:"attributes"`
		} `json:"resource"`
		ScopeSpans []struct {
			Spans []struct {
				TraceID      string     `json:"traceId"`
				SpanID       string     `json:"spanId"`
				ParentSpanID string     `json:"parentSpanId"`
				Name         string     `json:"name"`
				Kind         int        `json:"kind"`
				Attributes   []otlpAttr `json:"attributes"`
				Status       struct {
					Code int `json:"code"`
				} `json:"status"`
			} `json:"spans"`
		} `json:"scopeSpans"`
	} `json:"resourceSpans"`
}

type otlpAttr struct {
	Key   string         `json:"key"`
	Value map[string]any `json:"value"` // {"stringValue": …} or intValue (a string), boolValue, doubleValue
}

func flatten(attrs []otlpAttr, into map[string]any) {
	for _, a := range attrs {
		for _, v := range a.Value {
			into[a.Key] = v
		}
	}
}

var spanKinds = map[int]string{1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}

// spans reads every span the file holds so far. A last line still being
// written does not parse and is left for the next read.
func (c *Collector) spans() ([]Span, error) {
	b, err := os.ReadFile(c.file)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Span
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var req otlpJSON
		if json.Unmarshal(sc.Bytes(), &req) != nil {
			continue
		}
		for _, rs := range req.ResourceSpans {
			res := map[string]any{}
			flatten(rs.Resource.Attributes, res)
			svc, _ := res["service.name"].(string)
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					sp := Span{TraceID: s.TraceID, SpanID: s.SpanID, ParentID: s.ParentSpanID, Name: s.Name, Service: svc,
						Tags: map[string]any{"span.kind": spanKinds[s.Kind]}}
					flatten(s.Attributes, sp.Tags)
					if s.Status.Code == 2 {
						sp.Tags["otel.status_code"] = "ERROR"
					}
					out = append(out, sp)
				}
			}
		}
	}
	return out, sc.Err()
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
