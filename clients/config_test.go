package clients_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/nova-auth/nova-auth/clients"
	"github.com/nova-auth/nova-auth/internal/envconfig"
)

var update = flag.Bool("update", false, "rewrite the environment table in README.md instead of comparing")

func TestConfigFromEnv(t *testing.T) {
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		check   func(t *testing.T, c clients.Config)
		wantErr []string // each must appear in the error
	}{
		{name: "defaults", env: nil, check: func(t *testing.T, c clients.Config) {
			if len(c.Targets) != 12 {
				t.Errorf("%d targets, want the 12 services", len(c.Targets))
			}
			if got := c.Targets["feed"]; got != "dns:///feed-service.nova-feed.svc.cluster.local:9080" {
				t.Errorf("feed target %q", got)
			}
			if c.Timeout != 5*time.Second || c.MaxAttempts != 3 || c.BreakerFailures != 5 || !c.HealthCheck {
				t.Errorf("unexpected defaults %+v", c)
			}
		}},
		{name: "overrides", env: map[string]string{
			"GRPC_CLIENT_AUTH_TARGET":      "127.0.0.1:19080",
			"GRPC_CLIENT_VIDEO_TARGET":     "dns:///video.example:443",
			"GRPC_CLIENT_TIMEOUT":          "750ms",
			"GRPC_CLIENT_MAX_ATTEMPTS":     "5",
			"GRPC_CLIENT_RETRY_CODES":      "unavailable, ABORTED",
			"GRPC_CLIENT_NO_RETRY_METHODS": "/nova.feed.FeedService/Post",
			"GRPC_CLIENT_BREAKER_FAILURES": "0",
			"GRPC_CLIENT_HEALTH_CHECK":     "false",
			"GRPC_CLIENT_KEEPALIVE_TIME":   "1m",
		}, check: func(t *testing.T, c clients.Config) {
			if c.Targets["auth"] != "127.0.0.1:19080" || c.Targets["video"] != "dns:///video.example:443" {
				t.Errorf("targets %v", c.Targets)
			}
			if c.Targets["user"] != clients.DefaultTarget("user") {
				t.Errorf("user target %q, want the default", c.Targets["user"])
			}
			if c.Timeout != 750*time.Millisecond || c.MaxAttempts != 5 || c.BreakerFailures != 0 || c.HealthCheck || c.KeepaliveTime != time.Minute {
				t.Errorf("overrides not applied: %+v", c)
			}
			if len(c.RetryableCodes) != 2 || c.RetryableCodes[0] != codes.Unavailable || c.RetryableCodes[1] != codes.Aborted {
				t.Errorf("retry codes %v", c.RetryableCodes)
			}
			if len(c.NoRetryMethods) != 2 {
				t.Errorf("no-retry methods %v, want RecordFailedLogin and the added one", c.NoRetryMethods)
			}
		}},
		{name: "TLS with files", env: map[string]string{"GRPC_CLIENT_TLS": "true", "GRPC_CLIENT_TLS_CA_FILE": file}},
		{name: "bad duration", env: map[string]string{"GRPC_CLIENT_TIMEOUT": "5"},
			wantErr: []string{`GRPC_CLIENT_TIMEOUT="5"`, "duration"}},
		{name: "bad number", env: map[string]string{"GRPC_CLIENT_MAX_ATTEMPTS": "three"},
			wantErr: []string{"GRPC_CLIENT_MAX_ATTEMPTS", "whole number"}},
		{name: "attempts over gRPC's cap", env: map[string]string{"GRPC_CLIENT_MAX_ATTEMPTS": "6"},
			wantErr: []string{"GRPC_CLIENT_MAX_ATTEMPTS", "1 to 5"}},
		{name: "bad bool", env: map[string]string{"GRPC_CLIENT_HEALTH_CHECK": "yes please"},
			wantErr: []string{"GRPC_CLIENT_HEALTH_CHECK", "true or false"}},
		{name: "bad code", env: map[string]string{"GRPC_CLIENT_RETRY_CODES": "UNAVAILABLE,SOMETIMES"},
			wantErr: []string{"GRPC_CLIENT_RETRY_CODES", "SOMETIMES"}},
		{name: "OK is not retryable", env: map[string]string{"GRPC_CLIENT_RETRY_CODES": "OK"},
			wantErr: []string{"GRPC_CLIENT_RETRY_CODES", "not a retryable"}},
		{name: "target without port", env: map[string]string{"GRPC_CLIENT_FEED_TARGET": "feed-service"},
			wantErr: []string{"GRPC_CLIENT_FEED_TARGET", "host:port"}},
		{name: "target with bad port", env: map[string]string{"GRPC_CLIENT_CDN_TARGET": "cdn:99999"},
			wantErr: []string{"GRPC_CLIENT_CDN_TARGET", "port"}},
		{name: "keepalive too eager for the server", env: map[string]string{"GRPC_CLIENT_KEEPALIVE_TIME": "5s"},
			wantErr: []string{"GRPC_CLIENT_KEEPALIVE_TIME", "10s"}},
		{name: "backoff bounds inverted", env: map[string]string{"GRPC_CLIENT_INITIAL_BACKOFF": "3s", "GRPC_CLIENT_MAX_BACKOFF": "1s"},
			wantErr: []string{"GRPC_CLIENT_MAX_BACKOFF", "GRPC_CLIENT_INITIAL_BACKOFF"}},
		{name: "multiplier below 1", env: map[string]string{"GRPC_CLIENT_BACKOFF_MULTIPLIER": "0.5"},
			wantErr: []string{"GRPC_CLIENT_BACKOFF_MULTIPLIER", "at least 1"}},
		{name: "bad method name", env: map[string]string{"GRPC_CLIENT_NO_RETRY_METHODS": "Post"},
			wantErr: []string{"GRPC_CLIENT_NO_RETRY_METHODS", `"Post"`}},
		{name: "breaker failures negative", env: map[string]string{"GRPC_CLIENT_BREAKER_FAILURES": "-1"},
			wantErr: []string{"GRPC_CLIENT_BREAKER_FAILURES"}},
		{name: "cert without key", env: map[string]string{"GRPC_CLIENT_TLS": "true", "GRPC_CLIENT_TLS_CERT_FILE": file},
			wantErr: []string{"GRPC_CLIENT_TLS_CERT_FILE", "GRPC_CLIENT_TLS_KEY_FILE"}},
		{name: "TLS files without TLS", env: map[string]string{"GRPC_CLIENT_TLS_CA_FILE": file},
			wantErr: []string{"GRPC_CLIENT_TLS", "must be true"}},
		{name: "missing CA file", env: map[string]string{"GRPC_CLIENT_TLS": "1", "GRPC_CLIENT_TLS_CA_FILE": "/nonexistent/ca.pem"},
			wantErr: []string{"GRPC_CLIENT_TLS_CA_FILE", "/nonexistent/ca.pem"}},
		{name: "every bad variable reported together", env: map[string]string{
			"GRPC_CLIENT_TIMEOUT": "soon", "GRPC_CLIENT_AUTH_TARGET": "auth", "GRPC_CLIENT_MAX_ATTEMPTS": "0",
		}, wantErr: []string{"GRPC_CLIENT_TIMEOUT", "GRPC_CLIENT_AUTH_TARGET", "GRPC_CLIENT_MAX_ATTEMPTS"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := clients.ConfigFromEnv(func(k string) string { return tc.env[k] })
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if tc.check != nil {
					tc.check(t, c)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want one naming %v", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// New validates a Config built in code the same way.
func TestNewRejectsBadConfig(t *testing.T) {
	c := clients.DefaultConfig()
	c.Targets["auth"] = ""
	c.NoRetryMethods = nil
	_, err := clients.New(c)
	for _, w := range []string{"GRPC_CLIENT_AUTH_TARGET", "RecordFailedLogin"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("New error %v does not mention %s", err, w)
		}
	}
}

// Every variable is documented in doc.go and README.md.
func TestVarsDocumented(t *testing.T) {
	for _, f := range []string{"doc.go", "README.md"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range clients.Vars {
			name := v.Name
			if strings.HasSuffix(name, "_TARGET") {
				name = "GRPC_CLIENT_<NAME>_TARGET"
			}
			if !strings.Contains(string(b), name) {
				t.Errorf("%s does not document %s", f, name)
			}
		}
	}
}

// TestREADMEEnvTable: the README's environment table is the Markdown of
// Vars; `go test ./clients -run TestREADMEEnvTable -update` rewrites it.
func TestREADMEEnvTable(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme, table := string(b), envconfig.Markdown(clients.Vars)
	if strings.Contains(readme, table) {
		return
	}
	if !*update {
		t.Fatal("README.md's environment table is stale: run `go test ./clients -run TestREADMEEnvTable -update`")
	}
	// The table is the block of lines that starts with its header row.
	header, _, _ := strings.Cut(table, "\n")
	start := strings.Index(readme, header+"\n")
	if start < 0 {
		t.Fatalf("README.md has no line %q to put the table at", header)
	}
	end := start
	for end < len(readme) && readme[end] == '|' {
		n := strings.IndexByte(readme[end:], '\n')
		if n < 0 {
			end = len(readme)
			break
		}
		end += n + 1
	}
	if err := os.WriteFile("README.md", []byte(readme[:start]+table+readme[end:]), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPoolConnPanicsOnUnknownName(t *testing.T) {
	p, _ := newPool(t, []string{"127.0.0.1:1"}, nil)
	if got := p.Names(); len(got) != 1 || got[0] != "auth" {
		t.Errorf("Names() = %v", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("Conn(\"fed\") did not panic")
		}
	}()
	p.Conn("fed")
}
