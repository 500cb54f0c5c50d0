package config

import (
	"os"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.GRPCPort != 9080 || c.HTTPPort != 8080 || c.LockoutThreshold != 5 || c.LockoutDuration != 15*time.Minute ||
		c.DBMaxConns != 20 || c.DBMinConns != 5 || strings.Join(c.JWTAlgorithms, ",") != "RS256,ES256,EdDSA" || !c.GRPCReflection {
		t.Fatalf("defaults: %+v", c)
	}
	if c.RequireDatabase() == nil {
		t.Fatal("no DATABASE_URL accepted")
	}
}

// TestEveryBadVariableReportedAtOnce: a person fixing the config sees every
// mistake in one go, each by name with what it accepts, and never a secret.
func TestEveryBadVariableReportedAtOnce(t *testing.T) {
	_, err := Load(env(map[string]string{
		"GRPC_PORT":         "http",
		"HTTP_PORT":         "70000",
		"LOCKOUT_THRESHOLD": "0",
		"LOCKOUT_DURATION":  "forever",
		"JWT_ALGORITHMS":    "HS256",
		"LOG_LEVEL":         "chatty",
		"DB_MIN_CONNS":      "50",
		"DB_MAX_CONNS":      "10",
		"JWT_LEEWAY":        "1h",
		"GRPC_REFLECTION":   "maybe",
	}))
	if err == nil {
		t.Fatal("bad configuration accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		`GRPC_PORT="http": must be a whole number from 1 to 65535`,
		`HTTP_PORT="70000"`,
		`LOCKOUT_THRESHOLD="0": must be a whole number from 1 to 100`,
		`LOCKOUT_DURATION="forever": must be a duration`,
		`JWT_ALGORITHMS="HS256": "HS256" is not supported`,
		`LOG_LEVEL="chatty"`,
		`DB_MIN_CONNS=50: must not exceed DB_MAX_CONNS=10`,
		`JWT_LEEWAY="1h": must be at most 5m`,
		`GRPC_REFLECTION="maybe": must be true or false`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not contain %q:\n%s", want, msg)
		}
	}
}

func TestSecretsNeverEchoed(t *testing.T) {
	// DATABASE_URL cannot be invalid at this layer, but a secret variable's
	// value must never be quoted back: check the mechanism with the private key
	// given twice.
	_, err := Load(env(map[string]string{"JWT_PRIVATE_KEY": "SECRET-PEM", "JWT_PRIVATE_KEY_FILE": "/x"}))
	if err == nil || strings.Contains(err.Error(), "SECRET-PEM") {
		t.Fatalf("err = %v", err)
	}
}

func TestNamesAreUniqueAndDocumented(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range Vars {
		if seen[v.Name] {
			t.Errorf("%s listed twice", v.Name)
		}
		seen[v.Name] = true
		if v.Help == "" {
			t.Errorf("%s has no help text", v.Name)
		}
	}
}

// TestREADMETable: the README's configuration table is Markdown(), which is
// what `auth-service env --markdown` prints.
func TestREADMETable(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), Markdown()) {
		t.Fatal("README.md's configuration table is stale: replace it with `go run ./service/cmd/auth-service env --markdown`")
	}
}

// TestPEMKeptAsGiven: the inline keys are read as given (a PEM's trailing
// newline is part of it); other values are trimmed.
func TestPEMKeptAsGiven(t *testing.T) {
	const pem = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
	c, err := Load(env(map[string]string{"JWT_PUBLIC_KEY": pem, "JWT_PRIVATE_KEY": pem, "JWT_ISSUER": " iss\n"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.JWTPublicKey != pem || c.JWTPrivateKey != pem || c.JWTIssuer != "iss" {
		t.Fatalf("public %q, private %q, issuer %q", c.JWTPublicKey, c.JWTPrivateKey, c.JWTIssuer)
	}
}

// TestMetricsPort: unset keeps /metrics on HTTP_PORT; set, it must be a port
// of its own.
func TestMetricsPort(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil || c.MetricsPort != 0 || c.MetricsAddr() != "" {
		t.Fatalf("default: port %d addr %q err %v; want /metrics on HTTP_PORT", c.MetricsPort, c.MetricsAddr(), err)
	}
	c, err = Load(env(map[string]string{"METRICS_PORT": "9090", "BIND_HOST": "::"}))
	if err != nil || c.MetricsAddr() != "[::]:9090" {
		t.Fatalf("METRICS_PORT=9090: addr %q err %v", c.MetricsAddr(), err)
	}
	for v, want := range map[string]string{
		"8080":    `METRICS_PORT=8080: must differ from GRPC_PORT and HTTP_PORT`,
		"9080":    `METRICS_PORT=9080: must differ from GRPC_PORT and HTTP_PORT`,
		"0":       `METRICS_PORT="0": must be a whole number from 1 to 65535`,
		"metrics": `METRICS_PORT="metrics": must be a whole number from 1 to 65535`,
	} {
		if _, err := Load(env(map[string]string{"METRICS_PORT": v})); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("METRICS_PORT=%s: err %v, want %q", v, err, want)
		}
	}
}
