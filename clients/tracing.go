package clients

import (
	"context"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/nova-auth/nova-auth/internal/rpcspan"
)

const tracerScope = "github.com/nova-auth/nova-auth/clients"

// tracer makes a span per call and a client span per attempt of it. gRPC
// retries below the interceptors (the service config's retry policy), so
// the attempts are seen by a stats handler, which gRPC calls once per
// attempt with a context whose outgoing metadata it then sends: each
// attempt carries its own traceparent, and the server's span hangs below it.
type tracer struct {
	provider trace.TracerProvider // nil: the provider of the caller's span
	prop     propagation.TextMapPropagator
}

func newTracer(cfg *Config) *tracer {
	t := &tracer{provider: cfg.TracerProvider, prop: cfg.Propagator}
	if t.prop == nil {
		t.prop = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	}
	return t
}

// tracer is the configured provider's, or that of the span in ctx: the
// caller's SDK when it traces, a no-op when ctx holds no span. So the
// library reads no global and needs no SDK of its own.
func (t *tracer) tracer(ctx context.Context) trace.Tracer {
	p := t.provider
	if p == nil {
		p = trace.SpanFromContext(ctx).TracerProvider()
	}
	return p.Tracer(tracerScope)
}

// callKey marks a call's context: only unary calls made through the pool
// get attempt spans, not the health checks' long-lived Watch streams.
type callKey struct{}

type callState struct{ attempts atomic.Int32 }

// unary is the call span: the caller's view of one call, however many
// attempts it took, with its final status (a breaker's refusal included).
func (t *tracer) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	ctx, span := t.tracer(ctx).Start(ctx, strings.TrimPrefix(method, "/"), trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(rpcspan.Attributes(method)...))
	cs := &callState{}
	err := invoker(context.WithValue(ctx, callKey{}, cs), method, req, reply, cc, opts...)
	span.SetAttributes(attribute.Int("nova.rpc.attempts", int(cs.attempts.Load())))
	rpcspan.SetStatus(span, status.Convert(err), false)
	span.End()
	return err
}

type attemptKey struct{}

// TagRPC starts an attempt's client span and writes its context into the
// attempt's metadata.
func (t *tracer) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	cs, ok := ctx.Value(callKey{}).(*callState)
	if !ok {
		return ctx
	}
	n := cs.attempts.Add(1)
	ctx, span := t.tracer(ctx).Start(ctx, strings.TrimPrefix(info.FullMethodName, "/"), trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(append(rpcspan.Attributes(info.FullMethodName), attribute.Int("nova.rpc.attempt", int(n)))...))
	md, _ := metadata.FromOutgoingContext(ctx)
	md = md.Copy()
	t.prop.Inject(ctx, rpcspan.Carrier(md))
	return context.WithValue(metadata.NewOutgoingContext(ctx, md), attemptKey{}, span)
}

// HandleRPC ends the attempt's span with its status.
func (t *tracer) HandleRPC(ctx context.Context, s stats.RPCStats) {
	end, ok := s.(*stats.End)
	if !ok {
		return
	}
	span, ok := ctx.Value(attemptKey{}).(trace.Span)
	if !ok {
		return
	}
	rpcspan.SetStatus(span, status.Convert(end.Error), false)
	span.End()
}

func (t *tracer) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (t *tracer) HandleConn(context.Context, stats.ConnStats)                       {}
