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
	Endpoint    string
	Protocol    string
	Sampler     string
	SamplerArg  float64
	ServiceName string
}

// Settings is what tracing.Setup takes.
func (t Tracing) Settings(version string) tracing.Settings {
	return tracing.Settings{Endpoint: t.Endpoint, Protocol: t.Protocol, Sampler: t.Sampler, Ratio: t.SamplerArg,
		ServiceName: t.ServiceName, Version: version}
}

// tracingVars are the OpenTelemetry variables, under their standard names
// so that a platform's usual settings (an operator's injection, a
// collector's Helm values) apply as they are.
var tracingVars = []Var{
	{Name: "OTEL_EXPORTER_OTLP_ENDPOINT",
		Help: "OTLP collector URL for traces, e.g. http://otel-collector:4317 (grpc) or http://otel-collector:4318 (http/protobuf); https:// uses TLS. Empty: tracing is off (no exporter, no spans).",
		Parse: func(c *Config, v string) error {
			if v == "" {
				c.Tracing.Endpoint = ""
				return nil
			}
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return errors.New("must be an http:// or https:// URL with a host, e.g. http://otel-collector:4317")
			}
			c.Tracing.Endpoint = v
			return nil
		}},
	{Name: "OTEL_EXPORTER_OTLP_PROTOCOL", Default: "grpc",
		Help: "OTLP transport: grpc or http/protobuf.",
		Parse: func(c *Config, v string) error {
			if v != "grpc" && v != "http/protobuf" {
				return errors.New("must be grpc or http/protobuf")
			}
			c.Tracing.Protocol = v
			return nil
		}},
	{Name: "OTEL_EXPORTER_OTLP_HEADERS", Secret: true,
		Help:  "Headers sent with every export, key=value pairs separated by commas (URL-encoded values), e.g. a collector's API key: keep it in a Secret.",
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
