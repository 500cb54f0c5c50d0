package chartstest

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// TestTracing: off by default (no OTEL_* setting, no egress to a
// collector); with tracing.endpoint the service gets the OTEL_* settings,
// the headers from the named Secret only (never the ConfigMap), and the
// egress policy admits the collector's port to the peers given.
func TestTracing(t *testing.T) {
	egressTo := func(t *testing.T, r *rendered, port int32) []networkingv1.NetworkPolicyEgressRule {
		var np networkingv1.NetworkPolicy
		into(t, r.one(t, "NetworkPolicy", releaseName+"-egress"), &np)
		var rules []networkingv1.NetworkPolicyEgressRule
		for _, e := range np.Spec.Egress {
			for _, p := range e.Ports {
				if p.Port != nil && p.Port.IntVal == port {
					rules = append(rules, e)
				}
			}
		}
		return rules
	}

	t.Run("off by default", func(t *testing.T) {
		r := mustRender(t, values(t, "", dbURL), renderOpts{})
		var cm corev1.ConfigMap
		into(t, r.one(t, "ConfigMap", releaseName), &cm)
		for k := range cm.Data {
			if strings.HasPrefix(k, "OTEL_") {
				t.Errorf("%s set with tracing off", k)
			}
		}
		if rules := egressTo(t, r, 4317); len(rules) != 0 {
			t.Errorf("egress to 4317 with tracing off: %v", rules)
		}
	})

	t.Run("on, headers from a Secret, egress to the collector", func(t *testing.T) {
		r := mustRender(t, values(t, "", dbURL,
			"tracing.endpoint=http://otel-collector.observability:4317",
			"tracing.samplerArg=0.05",
			"tracing.resourceAttributes=deployment.environment.name=prod",
			"tracing.headers.existingSecret=otel-auth",
			"tracing.networkPolicy.to[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=observability",
		), renderOpts{})
		var cm corev1.ConfigMap
		into(t, r.one(t, "ConfigMap", releaseName), &cm)
		want := map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.observability:4317",
			"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
			"OTEL_TRACES_SAMPLER":         "parentbased_traceidratio",
			"OTEL_TRACES_SAMPLER_ARG":     "0.05",
			"OTEL_RESOURCE_ATTRIBUTES":    "k8s.namespace.name=" + releaseNamespace + ",deployment.environment.name=prod",
		}
		for k, v := range want {
			if cm.Data[k] != v {
				t.Errorf("ConfigMap %s = %q, want %q", k, cm.Data[k], v)
			}
		}
		if _, ok := cm.Data["OTEL_EXPORTER_OTLP_HEADERS"]; ok {
			t.Error("OTEL_EXPORTER_OTLP_HEADERS in the ConfigMap: it carries credentials")
		}
		var d appsv1.Deployment
		into(t, r.one(t, "Deployment", releaseName), &d)
		var fromSecret bool
		for _, e := range d.Spec.Template.Spec.Containers[0].Env {
			if e.Name == "OTEL_EXPORTER_OTLP_HEADERS" {
				ref := e.ValueFrom.SecretKeyRef
				fromSecret = ref != nil && ref.Name == "otel-auth" && ref.Key == "headers"
			}
		}
		if !fromSecret {
			t.Errorf("no OTEL_EXPORTER_OTLP_HEADERS from Secret otel-auth key headers: %v", d.Spec.Template.Spec.Containers[0].Env)
		}
		rules := egressTo(t, r, 4317)
		if len(rules) != 1 || len(rules[0].To) != 1 || rules[0].To[0].NamespaceSelector == nil ||
			rules[0].To[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "observability" {
			t.Errorf("want one egress rule to port 4317 of namespace observability, got %+v", rules)
		}
	})

	t.Run("http/protobuf on its port, no headers Secret", func(t *testing.T) {
		r := mustRender(t, values(t, "", dbURL, "tracing.endpoint=https://collector.example.com:4318/", "tracing.protocol=http/protobuf"), renderOpts{})
		if rules := egressTo(t, r, 4318); len(rules) != 1 || len(rules[0].To) != 0 {
			t.Errorf("want one egress rule to port 4318, any destination; got %+v", rules)
		}
		var d appsv1.Deployment
		into(t, r.one(t, "Deployment", releaseName), &d)
		for _, e := range d.Spec.Template.Spec.Containers[0].Env {
			if e.Name == "OTEL_EXPORTER_OTLP_HEADERS" {
				t.Error("OTEL_EXPORTER_OTLP_HEADERS without tracing.headers.existingSecret")
			}
		}
	})

	checkRejected(t, []rejectCase{
		{"endpoint without port", []string{dbURL, "tracing.endpoint=http://otel-collector"}, []string{"/tracing/endpoint", "does not match pattern"}},
		{"endpoint without scheme", []string{dbURL, "tracing.endpoint=otel-collector:4317"}, []string{"/tracing/endpoint", "does not match pattern"}},
		{"sampler typo", []string{dbURL, "tracing.sampler=parentbased_ratio"}, []string{"/tracing/sampler", "'parentbased_traceidratio'"}},
		{"ratio above one", []string{dbURL, "tracing.samplerArg=10"}, []string{"/tracing/samplerArg", "maximum"}},
		{"ratio not a number", []string{dbURL, "tracing.samplerArg=half"}, []string{"/tracing/samplerArg", "does not match pattern"}},
		{"protocol", []string{dbURL, "tracing.protocol=http/json"}, []string{"/tracing/protocol", "'grpc', 'http/protobuf'"}},
	})
}
