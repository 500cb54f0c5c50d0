// Package tracing is the service's OpenTelemetry tracing: the SDK set up
// from the standard OTEL_* variables, a server span per RPC (gRPC and the
// REST gateway alike), a span per PostgreSQL statement, trace IDs in the logs
// and on the latency histograms' exemplars.
//
// Off (no OTLP endpoint) it installs nothing: Setup returns nil, the
// interceptor and the pgx tracer are left out, and the child spans below
// check that their parent records before doing any work.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"go.opentelemetry.io/otel/attribute"
)

// Scope names the instrumentation in every span this service makes.
const Scope = "github.com/nova-auth/nova-auth/service"

// Settings are the OTEL_* variables the service acts on itself; the OTLP
// exporter reads the rest of OTEL_EXPORTER_OTLP_* (headers, certificate,
// timeout, compression, and their TRACES_ forms) from the environment.
type Settings struct {
	// Endpoint is OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (EndpointIsSignal,
	// used as it is) or else OTEL_EXPORTER_OTLP_ENDPOINT (the signal's
	// path appended for http/protobuf); empty is off.
	Endpoint         string
	EndpointIsSignal bool
	// Protocol is "grpc" or "http/protobuf".
	Protocol string
	// Sampler is an OTEL_TRACES_SAMPLER name; Ratio its argument for the
	// ratio samplers.
	Sampler string
	Ratio   float64
	// ServiceName and Version are the resource's service.name and
	// service.version (OTEL_RESOURCE_ATTRIBUTES may override them).
	ServiceName, Version string
}

// Tracing is the service's tracer provider and propagators; nil when off.
type Tracing struct {
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
}

// Samplers are the OTEL_TRACES_SAMPLER values the service accepts.
var Samplers = []string{"always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"}

// Sampler builds the sampler named by OTEL_TRACES_SAMPLER (the names of the
// OpenTelemetry specification); ratio is OTEL_TRACES_SAMPLER_ARG.
func Sampler(name string, ratio float64) (sdktrace.Sampler, error) {
	switch name {
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), nil
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), nil
	}
	return nil, fmt.Errorf("unknown sampler %q", name)
}

// Setup builds the exporter and tracer provider, or returns nil when no
// endpoint is set. The exporter connects lazily: a collector that is down
// costs dropped spans, never a failed start.
func Setup(ctx context.Context, s Settings) (*Tracing, error) {
	if s.Endpoint == "" {
		return nil, nil
	}
	sampler, err := Sampler(s.Sampler, s.Ratio)
	if err != nil {
		return nil, err
	}
	// The endpoint as configured (validated there); the exporter reads the
	// other OTEL_EXPORTER_OTLP_* variables itself.
	var exp sdktrace.SpanExporter
	switch s.Protocol {
	case "", "grpc":
		exp, err = otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(s.Endpoint))
	case "http/protobuf":
		// As the specification says: the signal's path is appended to
		// OTEL_EXPORTER_OTLP_ENDPOINT, never to the traces endpoint.
		u := s.Endpoint
		if !s.EndpointIsSignal {
			u = strings.TrimSuffix(u, "/") + "/v1/traces"
		}
		exp, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(u))
	default:
		err = fmt.Errorf("unknown OTLP protocol %q", s.Protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("OTLP exporter: %w", err)
	}
	// Our defaults first, so OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
	// (WithFromEnv, merged last) override them.
	attrs := []attribute.KeyValue{attribute.String("service.name", s.ServiceName)}
	if s.Version != "" {
		attrs = append(attrs, attribute.String("service.version", s.Version))
	}
	res, err := resource.New(ctx, resource.WithAttributes(attrs...), resource.WithTelemetrySDK(), resource.WithHost(), resource.WithFromEnv())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res), sdktrace.WithSampler(sampler))
	return &Tracing{
		tp:     tp,
		tracer: tp.Tracer(Scope),
		prop:   propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}, nil
}

// Shutdown flushes the spans still buffered, within timeout.
func (t *Tracing) Shutdown(timeout time.Duration) error {
	if t == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return t.tp.Shutdown(ctx)
}

// Child is a span below the current one. It is only started when the
// parent records (sampled, tracing on); otherwise End and Set do nothing.
type Child struct{ span trace.Span }

// Start begins a child span of ctx's span named name.
func Start(ctx context.Context, name string) (context.Context, Child) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, Child{}
	}
	ctx, sp := parent.TracerProvider().Tracer(Scope).Start(ctx, name)
	return ctx, Child{sp}
}

// Set adds attributes.
func (c Child) Set(kv ...attribute.KeyValue) {
	if c.span != nil {
		c.span.SetAttributes(kv...)
	}
}

// End ends the span.
func (c Child) End() {
	if c.span != nil {
		c.span.End()
	}
}

// Verified ends VerifyToken's check span with whether the verified-token
// cache answered (then no signature was checked) and the outcome; the
// reason is the one the caller gets, never the token.
func (c Child) Verified(cacheHit, valid bool, reason string) {
	if c.span == nil {
		return
	}
	c.span.SetAttributes(attribute.Bool("nova.token.cache_hit", cacheHit), attribute.Bool("nova.token.valid", valid))
	if reason != "" {
		c.span.SetAttributes(attribute.String("nova.token.invalid_reason", reason))
	}
	c.span.End()
}

// Flush exports the spans buffered so far.
func (t *Tracing) Flush(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.tp.ForceFlush(ctx)
}

// CacheResult records on the call's span (ctx's, when it records) what
// the read cache did: "hit" (answered from memory, no statement), "miss"
// (read from PostgreSQL, then cached) or "bypass" (read from PostgreSQL,
// the cache off while its listener is down). Not recording, it only looks
// the span up: no allocation.
func CacheResult(ctx context.Context, result string) {
	if sp := trace.SpanFromContext(ctx); sp.IsRecording() {
		sp.SetAttributes(attribute.String("nova.cache.result", result))
	}
}
