package tracing

import (
	"context"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/nova-auth/nova-auth/internal/rpcspan"
)

// BaggagePrefix marks the baggage members a server span records as
// attributes (a load test run's tag, say). Others are passed on in the
// context only: baggage is caller-controlled, so it is not copied wholesale.
const BaggagePrefix = "nova."

type restKey struct{}

const healthPrefix = "/grpc.health.v1.Health/"

// HTTP extracts the trace context and baggage of a REST call's headers, so
// that the server span the interceptor starts continues the caller's trace,
// and marks the call as one of the gateway's.
func (t *Tracing) HTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := t.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, restKey{}, true)))
	})
}

// UnaryServer starts the server span of each call: named after the method
// ("nova.auth_service.AuthService/GetUser"), continuing the caller's trace
// from the gRPC metadata (or the REST headers, see HTTP). It is the
// outermost interceptor, so it sees the status code errors.go chose.
func (t *Tracing) UnaryServer() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if strings.HasPrefix(info.FullMethod, healthPrefix) {
			return h(ctx, req) // probes, every few seconds: noise in a trace store
		}
		transport := "grpc"
		if rest, _ := ctx.Value(restKey{}).(bool); rest {
			transport = "rest"
		} else if md, ok := metadata.FromIncomingContext(ctx); ok {
			ctx = t.prop.Extract(ctx, rpcspan.Carrier(md))
		}
		ctx, span := t.tracer.Start(ctx, info.FullMethod[1:], trace.WithSpanKind(trace.SpanKindServer))
		if !span.IsRecording() {
			// Not sampled: the context still carries the trace (logs,
			// the calls it makes), but nothing is recorded.
			return h(ctx, req)
		}
		defer span.End()
		span.SetAttributes(rpcspan.Attributes(info.FullMethod)...)
		span.SetAttributes(attribute.String("nova.transport", transport))
		for _, m := range baggage.FromContext(ctx).Members() {
			if strings.HasPrefix(m.Key(), BaggagePrefix) {
				span.SetAttributes(attribute.String("baggage."+m.Key(), m.Value()))
			}
		}
		resp, err := h(ctx, req)
		rpcspan.SetStatus(span, status.Convert(err), true)
		return resp, err
	}
}
