package chartstest

import (
	"bytes"
	"os/exec"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// notInConfigMap are the variables the service reads that the chart sets
// elsewhere or leaves at their default, each for a reason.
var notInConfigMap = map[string]string{
	"DATABASE_URL":                       "secret: in the Secret",
	"JWT_PRIVATE_KEY":                    "never given to the serving pods, which only verify: the key Secret keeps it for token issuers",
	"JWT_PUBLIC_KEY":                     "in the key Secret, as the spec keeps it",
	"JWT_PUBLIC_KEY_FILE":                "alternative to JWT_PUBLIC_KEY, which the chart sets",
	"JWT_PRIVATE_KEY_FILE":               "alternative to JWT_PRIVATE_KEY, which the serving pods never get",
	"BIND_HOST":                          "pods listen on all addresses: the default 0.0.0.0 is right",
	"PPROF_ADDR":                         "a debugging switch, off by default: set it for one rollout with extraEnv and port-forward to it",
	"PPROF_ALLOW_REMOTE":                 "goes with PPROF_ADDR, which the chart leaves off; port-forward to a loopback PPROF_ADDR instead",
	"HTTP_ALLOWED_HOSTS":                 "empty (any Host) by default; the probes and /metrics ignore it, so set it with extraEnv to the names an Ingress or Gateway exposes",
	"OTEL_EXPORTER_OTLP_HEADERS":         "secret: from tracing.headers.existingSecret into the pod's env, never the ConfigMap (tracing_test.go)",
	"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "tracing.endpoint sets OTEL_EXPORTER_OTLP_ENDPOINT, which the egress NetworkPolicy follows; the traces-specific one is for an operator's injection or extraEnv, where it wins",
	"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "tracing.protocol sets OTEL_EXPORTER_OTLP_PROTOCOL; the traces-specific one goes with OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (extraEnv)",
	"OTEL_EXPORTER_OTLP_TRACES_HEADERS":  "secret, and tracing.headers.existingSecret sets OTEL_EXPORTER_OTLP_HEADERS; an injected traces-specific one replaces those",
	"OTEL_SERVICE_NAME":                  "the default, auth-service, names the service in every trace store; override with extraEnv",
}

// setWhen are the variables the chart sets only when a value turns them on
// (tls_test.go checks they are set then), by that value.
var setWhen = map[string]string{
	"TLS_CERT_FILE":       "tls.enabled",
	"TLS_KEY_FILE":        "tls.enabled",
	"TLS_RELOAD_INTERVAL": "tls.enabled",
	"TLS_CLIENT_CA_FILE":  "tls.clientAuth",
	"CALLER_POLICY":       "callerPolicy",
	// tracing_test.go checks these.
	"OTEL_EXPORTER_OTLP_ENDPOINT": "tracing.endpoint",
	"OTEL_EXPORTER_OTLP_PROTOCOL": "tracing.endpoint",
	"OTEL_TRACES_SAMPLER":         "tracing.endpoint",
	"OTEL_TRACES_SAMPLER_ARG":     "tracing.endpoint",
	"OTEL_RESOURCE_ATTRIBUTES":    "tracing.endpoint",
}

// serviceEnvNames builds the service from the root module and asks it which
// environment variables it reads (`auth-service env --names`).
func serviceEnvNames(t *testing.T) []string {
	t.Helper()
	bin := authService(t)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "env", "--names")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("auth-service env --names: %v\n%s", err, stderr.String())
	}
	names := strings.Fields(stdout.String())
	if len(names) == 0 {
		t.Fatal("auth-service env --names printed nothing")
	}
	return names
}

// TestConfigMapKeysConsumed: every ConfigMap key is a variable the service
// reads, and every variable it reads is in the ConfigMap or the Secret, or
// deliberately left out (notInConfigMap). A variable added to the service
// fails here until the chart sets it or says why not.
func TestConfigMapKeysConsumed(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the service binary (make test runs it without -short)")
	}
	names := serviceEnvNames(t)
	reads := map[string]bool{}
	for _, n := range names {
		reads[n] = true
	}
	for _, s := range scenarios(t) {
		t.Run(s.name, func(t *testing.T) {
			r := mustRender(t, values(t, s.path), scenarioOpts(s))
			var cm corev1.ConfigMap
			into(t, r.one(t, "ConfigMap", releaseName), &cm)
			var keys []string
			for k := range cm.Data {
				keys = append(keys, k)
				if !reads[k] {
					t.Errorf("ConfigMap key %s is not read by the service (auth-service env --names)", k)
				}
			}
			sort.Strings(keys)
			for _, n := range names {
				_, inCM := cm.Data[n]
				_, why := notInConfigMap[n]
				_, cond := setWhen[n]
				switch {
				case cond:
				case inCM && why:
					t.Errorf("%s is in the ConfigMap and in notInConfigMap", n)
				case !inCM && !why:
					t.Errorf("the service reads %s but the chart does not set it: add it to the ConfigMap (and values) or to notInConfigMap with a reason", n)
				}
			}
			for n := range setWhen {
				if !reads[n] {
					t.Errorf("setWhen lists %s, which the service no longer reads", n)
				}
			}
			for n := range notInConfigMap {
				if !reads[n] {
					t.Errorf("notInConfigMap lists %s, which the service no longer reads", n)
				}
			}
		})
	}
}
