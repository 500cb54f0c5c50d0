package config

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/nova-auth/nova-auth/service/internal/tracing"
)

// Tracing is what the service reads of the standard OTEL_* variables. The
// OTLP exporter reads the headers (and the other OTEL_EXPORTER_OTLP_*
// settings) from the environment itself, so they are checked here, never
// kept.
type Tracing struct {
	Endpoint string
	// TracesEndpoint and TracesProtocol are the signal-specific
	// OTEL_EXPORTER_OTLP_TRACES_*, which take precedence (Settings).
	TracesEndpoint string
	Protocol       string
	TracesProtocol string
	Sampler        string
	SamplerArg     float64
	ServiceName    string
}

// Settings is what tracing.Setup takes: the traces-specific endpoint and
// protocol win over the generic ones, as the OpenTelemetry specification
// says, and that endpoint is used as it is (no /v1/traces appended).
func (t Tracing) Settings(version string) tracing.Settings {
	s := tracing.Settings{Endpoint: t.Endpoint, Protocol: t.Protocol, Sampler: t.Sampler, Ratio: t.SamplerArg,
		ServiceName: t.ServiceName, Version: version}
	if t.TracesEndpoint != "" {
		s.Endpoint, s.EndpointIsSignal = t.TracesEndpoint, true
	}
	if t.TracesProtocol != "" {
		s.Protocol = t.TracesProtocol
	}
	return s
}

// tracingVars are the OpenTelemetry variables, under their standard names
// so that a platform's usual settings (an operator's injection, a
// collector's Helm values) apply as they are.
var tracingVars = []Var{
	{Name: "OTEL_EXPORTER_OTLP_ENDPOINT",
		Help:  "OTLP collector URL for traces, e.g. http://otel-collector:4317 (grpc) or http://otel-collector:4318 (http/protobuf, /v1/traces appended); https:// uses TLS. Empty, and OTEL_EXPORTER_OTLP_TRACES_ENDPOINT empty too: tracing is off (no exporter, no spans).",
		Parse: func(c *Config, v string) error { return endpoint(&c.Tracing.Endpoint, v) }},
	{Name: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
		Help:  "OTLP URL for traces only, taking precedence over OTEL_EXPORTER_OTLP_ENDPOINT and used as it is (for http/protobuf the full path, e.g. http://otel-collector:4318/v1/traces). Either one set turns tracing on.",
		Parse: func(c *Config, v string) error { return endpoint(&c.Tracing.TracesEndpoint, v) }},
	{Name: "OTEL_EXPORTER_OTLP_PROTOCOL", Default: "grpc",
		Help:  "OTLP transport: grpc or http/protobuf.",
		Parse: func(c *Config, v string) error { return protocol(&c.Tracing.Protocol, v) }},
	{Name: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
		Help: "OTLP transport of traces, taking precedence over OTEL_EXPORTER_OTLP_PROTOCOL: grpc or http/protobuf. Empty: OTEL_EXPORTER_OTLP_PROTOCOL.",
		Parse: func(c *Config, v string) error {
			if v == "" {
				c.Tracing.TracesProtocol = ""
				return nil
			}
			return protocol(&c.Tracing.TracesProtocol, v)
		}},
	{Name: "OTEL_EXPORTER_OTLP_HEADERS", Secret: true,
		Help:  "Headers sent with every export, key=value pairs separated by commas (URL-encoded values), e.g. a collector's API key: keep it in a Secret.",
		Parse: func(_ *Config, v string) error { return keyValues(v) }},
	{Name: "OTEL_EXPORTER_OTLP_TRACES_HEADERS", Secret: true,
		Help:  "Headers sent with trace exports, in the form of OTEL_EXPORTER_OTLP_HEADERS; when set, these are sent instead of OTEL_EXPORTER_OTLP_HEADERS (not merged). Keep it in a Secret.",
		Parse: func(_ *Config, v string) error { return keyValues(v) }},
	{Name: "OTEL_TRACES_SAMPLER", Default: "parentbased_always_on",
		Help: "Which calls are traced: " + strings.Join(tracing.Samplers, ", ") + ". The parentbased ones follow the caller's decision when it sent a traceparent.",
		Parse: func(c *Config, v string) error {
			if !slices.Contains(tracing.Samplers, v) {
				return fmt.Errorf("must be one of %s", strings.Join(tracing.Samplers, ", "))
			}
			c.Tracing.Sampler = v
			return nil
		}},
	{Name: "OTEL_TRACES_SAMPLER_ARG", Default: "1.0",
		Help: "The fraction of traces the traceidratio samplers keep, 0..1 (0.01: one in a hundred).",
		Parse: func(c *Config, v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1 {
				return errors.New("must be a number from 0 to 1")
			}
			c.Tracing.SamplerArg = f
			return nil
		}},
	{Name: "OTEL_SERVICE_NAME", Default: "auth-service",
		Help:  "service.name of the spans.",
		Parse: func(c *Config, v string) error { c.Tracing.ServiceName = v; return nil }},
	{Name: "OTEL_RESOURCE_ATTRIBUTES",
		Help:  "More resource attributes of the spans, key=value pairs separated by commas, e.g. deployment.environment.name=prod,k8s.namespace.name=nova-auth.",
		Parse: func(_ *Config, v string) error { return keyValues(v) }},
}

// endpoint checks an OTLP endpoint URL into dst; empty is unset.
func endpoint(dst *string, v string) error {
	if v == "" {
		*dst = ""
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("must be an http:// or https:// URL with a host, e.g. http://otel-collector:4317")
	}
	*dst = v
	return nil
}

// protocol checks an OTLP transport name into dst.
func protocol(dst *string, v string) error {
	if v != "grpc" && v != "http/protobuf" {
		return errors.New("must be grpc or http/protobuf")
	}
	*dst = v
	return nil
}

// keyValues checks the key=value,… form of the OTEL_* list variables.
func keyValues(v string) error {
	if v == "" {
		return nil
	}
	for _, kv := range strings.Split(v, ",") {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return errors.New("must be key=value pairs separated by commas")
		}
	}
	return nil
}
