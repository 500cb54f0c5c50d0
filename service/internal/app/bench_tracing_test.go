package app

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

// otlpSink is an OTLP trace receiver that counts spans and keeps none: the
// benchmarks measure what tracing costs the service (spans, batching,
// export), not what a collector costs, which runs elsewhere.
type otlpSink struct {
	coltracepb.UnimplementedTraceServiceServer
	spans atomic.Int64
}

func (s *otlpSink) Export(_ context.Context, r *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	for _, rs := range r.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			s.spans.Add(int64(len(ss.GetSpans())))
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func startSink(b *testing.B) (*otlpSink, string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s, sink := grpc.NewServer(), &otlpSink{}
	coltracepb.RegisterTraceServiceServer(s, sink)
	go s.Serve(l) //nolint:errcheck // ends with Stop
	b.Cleanup(s.Stop)
	return sink, "http://" + l.Addr().String()
}

// tracingModes runs f against a service with tracing off (no endpoint),
// and on with 1 % and 100 % of the calls sampled; the caller sends no
// trace context, so the service's sampler decides. Compare each to
// BenchmarkBaselineHealthCheck of the same run.
func tracingModes(b *testing.B, vars map[string]string, f func(b *testing.B, e *env)) {
	for _, m := range []struct{ name, ratio string }{{"tracing=off", ""}, {"tracing=1%", "0.01"}, {"tracing=100%", "1"}} {
		b.Run(m.name, func(b *testing.B) {
			v := map[string]string{}
			for k, val := range vars {
				v[k] = val
			}
			var sink *otlpSink
			if m.ratio != "" {
				var endpoint string
				sink, endpoint = startSink(b)
				v["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
				v["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
				v["OTEL_TRACES_SAMPLER_ARG"] = m.ratio
			}
			e := newEnv(b, nil, v)
			b.ReportAllocs()
			b.ResetTimer()
			f(b, e)
			b.StopTimer()
			if sink != nil {
				// Spans leave in batches: flush them, then report how many
				// each call made (a sampled GetUser without the cache: the
				// server span and its statement; the batcher drops spans
				// when its queue is full, and this would show it).
				if err := e.app.tracing.Flush(context.Background()); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(sink.spans.Load())/float64(b.N), "spans/op")
			}
		})
	}
}

func BenchmarkTracingVerifyToken(b *testing.B) {
	tracingModes(b, nil, func(b *testing.B, e *env) {
		id := e.user(b, "t@example.com", "t")
		tok, _, _ := e.signer.Issue(id, "t@example.com", time.Hour)
		req := &authpb.VerifyTokenRequest{Token: tok}
		ctx := context.Background()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if r, err := e.client.VerifyToken(ctx, req); err != nil || !r.GetValid() {
					b.Fatal(err, r.GetError())
				}
			}
		})
	})
}

// BenchmarkTracingGetUser is GetUser without the read cache, so every
// call runs its statement (and a sampled one makes its span).
func BenchmarkTracingGetUser(b *testing.B) {
	tracingModes(b, map[string]string{"CACHE_SIZE": "0"}, func(b *testing.B, e *env) {
		req := &authpb.GetUserRequest{UserId: e.user(b, "u@example.com", "u")}
		ctx := context.Background()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := e.client.GetUser(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
