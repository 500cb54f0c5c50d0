package config

import (
	"strings"
	"testing"

	"github.com/nova-auth/nova-auth/service/internal/tracing"
)

// TestTracingSettings: the OTEL_* variables, good beside bad; a mistake
// names the variable and what it accepts, and never shows the headers,
// which hold a collector's credentials.
func TestTracingSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want Tracing
		// settings, when set, is what tracing.Setup gets.
		settings tracing.Settings
		wantErr  string
	}{
		{name: "off by default", want: Tracing{Protocol: "grpc", Sampler: "parentbased_always_on", SamplerArg: 1, ServiceName: "auth-service"}},
		{name: "on, 1 % of new traces", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector:4317",
			"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01", "OTEL_SERVICE_NAME": "auth-eu",
			"OTEL_EXPORTER_OTLP_HEADERS": "api-key=s3cret", "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=prod"},
			want: Tracing{Endpoint: "http://otel-collector:4317", Protocol: "grpc", Sampler: "parentbased_traceidratio", SamplerArg: 0.01, ServiceName: "auth-eu"}},
		{name: "http/protobuf over TLS", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector.example.com:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
			want: Tracing{Endpoint: "https://collector.example.com:4318", Protocol: "http/protobuf", Sampler: "parentbased_always_on", SamplerArg: 1, ServiceName: "auth-service"}},
		{name: "only the traces endpoint and protocol, over the generic protocol", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://otel-collector:4318/v1/traces",
			"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "api-key=s3cret"},
			want:     Tracing{TracesEndpoint: "http://otel-collector:4318/v1/traces", Protocol: "grpc", TracesProtocol: "http/protobuf", Sampler: "parentbased_always_on", SamplerArg: 1, ServiceName: "auth-service"},
			settings: tracing.Settings{Endpoint: "http://otel-collector:4318/v1/traces", EndpointIsSignal: true, Protocol: "http/protobuf", Sampler: "parentbased_always_on", Ratio: 1, ServiceName: "auth-service"}},
		{name: "the traces endpoint over the generic one", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4317", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:4317"},
			want:     Tracing{Endpoint: "http://a:4317", TracesEndpoint: "http://b:4317", Protocol: "grpc", Sampler: "parentbased_always_on", SamplerArg: 1, ServiceName: "auth-service"},
			settings: tracing.Settings{Endpoint: "http://b:4317", EndpointIsSignal: true, Protocol: "grpc", Sampler: "parentbased_always_on", Ratio: 1, ServiceName: "auth-service"}},
		{name: "endpoint without scheme", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "otel-collector:4317"},
			wantErr: `OTEL_EXPORTER_OTLP_ENDPOINT="otel-collector:4317": must be an http:// or https:// URL with a host`},
		{name: "traces endpoint without scheme", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "otel-collector:4318/v1/traces"},
			wantErr: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="otel-collector:4318/v1/traces": must be an http:// or https:// URL with a host`},
		{name: "unknown traces protocol", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"},
			wantErr: `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="http/json": must be grpc or http/protobuf`},
		{name: "traces headers not key=value", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "s3cret"},
			wantErr: `OTEL_EXPORTER_OTLP_TRACES_HEADERS="(hidden)": must be key=value pairs`},
		{name: "unknown protocol", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
			wantErr: `OTEL_EXPORTER_OTLP_PROTOCOL="http/json": must be grpc or http/protobuf`},
		{name: "unknown sampler", env: map[string]string{"OTEL_TRACES_SAMPLER": "ratio"},
			wantErr: `OTEL_TRACES_SAMPLER="ratio": must be one of always_on, always_off, traceidratio, parentbased_always_on`},
		{name: "ratio above one", env: map[string]string{"OTEL_TRACES_SAMPLER_ARG": "10"},
			wantErr: `OTEL_TRACES_SAMPLER_ARG="10": must be a number from 0 to 1`},
		{name: "headers not key=value", env: map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "s3cret"},
			wantErr: `OTEL_EXPORTER_OTLP_HEADERS="(hidden)": must be key=value pairs`},
		{name: "resource attributes not key=value", env: map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "prod"},
			wantErr: `OTEL_RESOURCE_ATTRIBUTES="prod": must be key=value pairs`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(env(tc.env))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Tracing != tc.want {
					t.Fatalf("Tracing = %+v, want %+v", c.Tracing, tc.want)
				}
				if got := c.Tracing.Settings(""); tc.settings != (tracing.Settings{}) && got != tc.settings {
					t.Fatalf("Settings = %+v, want %+v", got, tc.settings)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("the error shows the headers: %v", err)
			}
		})
	}
}
