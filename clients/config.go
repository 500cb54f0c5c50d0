package clients

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/nova-auth/nova-auth/internal/envconfig"
	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

// ServiceNames are the platform's services, each with a default target and a
// GRPC_CLIENT_<NAME>_TARGET override.
var ServiceNames = [...]string{
	"auth", "user", "messaging", "content", "feed", "search",
	"media", "notification", "streaming", "cdn", "events", "video",
}

// DefaultTarget is the in-cluster address of a service: DNS over the
// headless Service <name>-service in namespace nova-<name>, gRPC port 9080.
func DefaultTarget(name string) string {
	return fmt.Sprintf("dns:///%s-service.nova-%s.svc.cluster.local:9080", name, name)
}

// RecordFailedLogin is never retried automatically: each attempt that reaches
// the server counts one failure, so a retry could count one login twice.
const recordFailedLogin = authpb.AuthService_RecordFailedLogin_FullMethodName

// Config is everything a Pool needs. DefaultConfig gives the development
// defaults; ConfigFromEnv applies the environment on top. Each field names
// the environment variable that sets it, and Validate reports errors by
// that name.
type Config struct {
	// Targets maps a service name to its gRPC target (GRPC_CLIENT_<NAME>_TARGET).
	// "host:port" means "dns:///host:port". Names beyond the twelve are allowed.
	Targets map[string]string

	// Timeout is the deadline of a call whose context has none or a later
	// one (GRPC_CLIENT_TIMEOUT).
	Timeout time.Duration

	// MaxAttempts counts the first try; 1 turns retries off, gRPC caps it at 5
	// (GRPC_CLIENT_MAX_ATTEMPTS).
	MaxAttempts int
	// InitialBackoff, MaxBackoff and BackoffMultiplier shape the wait before
	// a retry: random in [0, min(InitialBackoff*BackoffMultiplier^(n-1),
	// MaxBackoff)) (GRPC_CLIENT_INITIAL_BACKOFF, GRPC_CLIENT_MAX_BACKOFF,
	// GRPC_CLIENT_BACKOFF_MULTIPLIER).
	InitialBackoff    time.Duration
	MaxBackoff        time.Duration
	BackoffMultiplier float64
	// RetryableCodes are the status codes that are retried (GRPC_CLIENT_RETRY_CODES).
	RetryableCodes []codes.Code
	// NoRetryMethods are full method names ("/pkg.Service/Method") that are
	// not idempotent and so never retried; RecordFailedLogin is always among
	// them (GRPC_CLIENT_NO_RETRY_METHODS adds to it).
	NoRetryMethods []string

	// BreakerFailures consecutive failures (Unavailable, DeadlineExceeded,
	// Internal) open a service's circuit breaker; 0 disables the breaker
	// (GRPC_CLIENT_BREAKER_FAILURES).
	BreakerFailures uint32
	// BreakerCooldown is how long the breaker stays open before it lets
	// trial calls through (GRPC_CLIENT_BREAKER_COOLDOWN).
	BreakerCooldown time.Duration
	// BreakerHalfOpenCalls trial calls are let through while half-open; that
	// many successes in a row close it (GRPC_CLIENT_BREAKER_HALF_OPEN_CALLS).
	BreakerHalfOpenCalls uint32

	// HealthCheck watches grpc.health.v1 on every backend and sends no
	// calls to one that is not SERVING (GRPC_CLIENT_HEALTH_CHECK).
	HealthCheck bool
	// KeepaliveTime and KeepaliveTimeout: ping an idle connection after
	// KeepaliveTime, drop it when the ping is not answered in
	// KeepaliveTimeout. The auth service disconnects clients pinging more
	// often than every 10s (GRPC_CLIENT_KEEPALIVE_TIME, GRPC_CLIENT_KEEPALIVE_TIMEOUT).
	KeepaliveTime    time.Duration
	KeepaliveTimeout time.Duration
	// ReconnectMaxBackoff caps the wait between attempts to reconnect to a
	// backend that went away (GRPC_CLIENT_RECONNECT_MAX_BACKOFF).
	ReconnectMaxBackoff time.Duration

	TLS TLSConfig

	// Logger receives circuit breaker state changes; nil means slog.Default().
	Logger *slog.Logger
	// Registerer receives the breaker metrics; nil means
	// prometheus.DefaultRegisterer.
	Registerer prometheus.Registerer
	// DialOptions are appended to the pool's own, so they win (a custom
	// resolver, credentials, stats handlers).
	DialOptions []grpc.DialOption

	// TracerProvider makes a span per call and a client span per attempt;
	// nil means the provider of the span in the call's context, so a
	// caller that traces gets the spans without configuring anything, and
	// one that does not pays for no-op spans only.
	TracerProvider trace.TracerProvider
	// Propagator writes the trace context into each attempt's metadata;
	// nil means W3C trace context and baggage.
	Propagator propagation.TextMapPropagator
}

// TLSConfig selects transport security. Off means plaintext (inside a mesh
// or on loopback); with CertFile and KeyFile it is mutual TLS.
type TLSConfig struct {
	Enabled    bool   // GRPC_CLIENT_TLS
	CAFile     string // GRPC_CLIENT_TLS_CA_FILE: PEM roots; empty means the system's
	CertFile   string // GRPC_CLIENT_TLS_CERT_FILE: client certificate for mTLS
	KeyFile    string // GRPC_CLIENT_TLS_KEY_FILE
	ServerName string // GRPC_CLIENT_TLS_SERVER_NAME: overrides the name checked in the server's certificate
}

// DefaultConfig returns the development defaults: every field the defaults
// of Vars give it (the twelve in-cluster targets, a 5s deadline, 3 attempts,
// and so on), with RecordFailedLogin never retried.
func DefaultConfig() Config {
	c := Config{
		Targets:        make(map[string]string, len(ServiceNames)),
		NoRetryMethods: []string{recordFailedLogin},
	}
	noEnv := func(string) string { return "" }
	if errs := envconfig.Load(&c, Vars, noEnv); len(errs) > 0 {
		panic(fmt.Sprintf("clients: a default in Vars does not parse: %v", errs)) // a test loads them
	}
	return c
}

// Var is one environment variable: its name, default, help and parser.
type Var = envconfig.Var[Config]

// TargetVar is the variable that overrides a service's target.
func TargetVar(name string) string {
	return "GRPC_CLIENT_" + strings.ToUpper(name) + "_TARGET"
}

// Vars lists every variable ConfigFromEnv reads, targets first.
var Vars = func() []Var {
	var vs []Var
	for _, n := range ServiceNames {
		vs = append(vs, Var{Name: TargetVar(n), Default: DefaultTarget(n),
			Help:  "Target of the " + n + " service.",
			Parse: func(c *Config, v string) error { c.Targets[n] = v; return nil }})
	}
	return append(vs, []Var{
		{Name: "GRPC_CLIENT_TIMEOUT", Default: "5s",
			Help:  "Deadline of a call whose context has none (or a later one).",
			Parse: func(c *Config, v string) error { return durVar(&c.Timeout, v) }},
		{Name: "GRPC_CLIENT_MAX_ATTEMPTS", Default: "3",
			Help:  "Attempts per call including the first, 1..5; 1 turns retries off.",
			Parse: func(c *Config, v string) error { return intVar(&c.MaxAttempts, v) }},
		{Name: "GRPC_CLIENT_INITIAL_BACKOFF", Default: "100ms",
			Help:  "Upper bound of the random wait before the first retry.",
			Parse: func(c *Config, v string) error { return durVar(&c.InitialBackoff, v) }},
		{Name: "GRPC_CLIENT_MAX_BACKOFF", Default: "2s",
			Help:  "Upper bound of the random wait before any retry.",
			Parse: func(c *Config, v string) error { return durVar(&c.MaxBackoff, v) }},
		{Name: "GRPC_CLIENT_BACKOFF_MULTIPLIER", Default: "2",
			Help: "Growth of the wait bound per retry (>= 1).",
			Parse: func(c *Config, v string) error {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return errors.New("must be a number such as 2 or 1.5")
				}
				c.BackoffMultiplier = f
				return nil
			}},
		{Name: "GRPC_CLIENT_RETRY_CODES", Default: "UNAVAILABLE,RESOURCE_EXHAUSTED",
			Help:  "Comma-separated status codes that are retried.",
			Parse: func(c *Config, v string) error { return codesVar(&c.RetryableCodes, v) }},
		{Name: "GRPC_CLIENT_NO_RETRY_METHODS",
			Help: "Comma-separated full method names (/pkg.Service/Method) never retried, in addition to " + recordFailedLogin + ".",
			Parse: func(c *Config, v string) error {
				for _, m := range envconfig.List(v) {
					if !slices.Contains(c.NoRetryMethods, m) {
						c.NoRetryMethods = append(c.NoRetryMethods, m)
					}
				}
				return nil
			}},
		{Name: "GRPC_CLIENT_BREAKER_FAILURES", Default: "5",
			Help:  "Consecutive failures (Unavailable, DeadlineExceeded, Internal) that open a service's breaker; 0 disables it.",
			Parse: func(c *Config, v string) error { return uint32Var(&c.BreakerFailures, v) }},
		{Name: "GRPC_CLIENT_BREAKER_COOLDOWN", Default: "10s",
			Help:  "How long an open breaker fails calls fast before it lets a trial call through.",
			Parse: func(c *Config, v string) error { return durVar(&c.BreakerCooldown, v) }},
		{Name: "GRPC_CLIENT_BREAKER_HALF_OPEN_CALLS", Default: "1",
			Help:  "Trial calls let through while half-open; that many successes close the breaker.",
			Parse: func(c *Config, v string) error { return uint32Var(&c.BreakerHalfOpenCalls, v) }},
		{Name: "GRPC_CLIENT_HEALTH_CHECK", Default: "true",
			Help:  "Watch grpc.health.v1 and route nothing to backends that are not SERVING.",
			Parse: func(c *Config, v string) error { return envconfig.Bool(&c.HealthCheck, v) }},
		{Name: "GRPC_CLIENT_KEEPALIVE_TIME", Default: "30s",
			Help:  "Ping an idle connection after this long; at least 10s (the server's enforcement minimum).",
			Parse: func(c *Config, v string) error { return durVar(&c.KeepaliveTime, v) }},
		{Name: "GRPC_CLIENT_KEEPALIVE_TIMEOUT", Default: "10s",
			Help:  "Drop a connection whose ping is not answered within this.",
			Parse: func(c *Config, v string) error { return durVar(&c.KeepaliveTimeout, v) }},
		{Name: "GRPC_CLIENT_RECONNECT_MAX_BACKOFF", Default: "10s",
			Help:  "Longest wait between reconnection attempts to a backend.",
			Parse: func(c *Config, v string) error { return durVar(&c.ReconnectMaxBackoff, v) }},
		{Name: "GRPC_CLIENT_TLS", Default: "false",
			Help:  "Use TLS to every service.",
			Parse: func(c *Config, v string) error { return envconfig.Bool(&c.TLS.Enabled, v) }},
		{Name: "GRPC_CLIENT_TLS_CA_FILE",
			Help:  "PEM file of CA certificates that sign the servers' certificates; empty means the system roots.",
			Parse: func(c *Config, v string) error { c.TLS.CAFile = v; return nil }},
		{Name: "GRPC_CLIENT_TLS_CERT_FILE",
			Help:  "PEM client certificate for mutual TLS (with GRPC_CLIENT_TLS_KEY_FILE).",
			Parse: func(c *Config, v string) error { c.TLS.CertFile = v; return nil }},
		{Name: "GRPC_CLIENT_TLS_KEY_FILE",
			Help:  "PEM private key of the client certificate.",
			Parse: func(c *Config, v string) error { c.TLS.KeyFile = v; return nil }},
		{Name: "GRPC_CLIENT_TLS_SERVER_NAME",
			Help:  "Name to check in the servers' certificates instead of the target's host.",
			Parse: func(c *Config, v string) error { c.TLS.ServerName = v; return nil }},
	}...)
}()

// ConfigFromEnv returns DefaultConfig with the variables in Vars applied,
// read through getenv (os.Getenv when nil). Every invalid variable is
// reported in one error, by name, with what it accepts.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := DefaultConfig()
	// A variable that is invalid leaves its field at the default, so
	// Validate below reports only what is wrong with the values that were
	// taken.
	errs := envconfig.Load(&c, Vars, getenv)
	var ce *ConfigError
	if err := c.Validate(); errors.As(err, &ce) {
		errs = append(errs, ce.Errs...)
	}
	if len(errs) > 0 {
		return c, &ConfigError{Source: "clients", Errs: errs}
	}
	return c, nil
}

// ConfigError lists every invalid setting, each naming its variable. Its
// Error text begins "clients: invalid configuration:".
type ConfigError = envconfig.Error

// Validate checks every field and reports all problems together, each by
// the name of the environment variable that sets the field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{name}, args...)...))
	}
	names := make([]string, 0, len(c.Targets))
	for n := range c.Targets {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if _, err := normalizeTarget(c.Targets[n]); err != nil {
			bad(TargetVar(n), "%q: %v", c.Targets[n], err)
		}
	}
	if c.Timeout < time.Millisecond {
		bad("GRPC_CLIENT_TIMEOUT", "must be at least 1ms, got %v", c.Timeout)
	}
	if c.MaxAttempts < 1 || c.MaxAttempts > 5 {
		bad("GRPC_CLIENT_MAX_ATTEMPTS", "must be from 1 to 5 (gRPC's limit), got %d", c.MaxAttempts)
	}
	if c.MaxAttempts > 1 {
		if c.InitialBackoff < time.Millisecond {
			bad("GRPC_CLIENT_INITIAL_BACKOFF", "must be at least 1ms, got %v", c.InitialBackoff)
		}
		if c.MaxBackoff < c.InitialBackoff {
			bad("GRPC_CLIENT_MAX_BACKOFF", "must be at least GRPC_CLIENT_INITIAL_BACKOFF (%v), got %v", c.InitialBackoff, c.MaxBackoff)
		}
		if c.BackoffMultiplier < 1 {
			bad("GRPC_CLIENT_BACKOFF_MULTIPLIER", "must be at least 1, got %v", c.BackoffMultiplier)
		}
		if len(c.RetryableCodes) == 0 {
			bad("GRPC_CLIENT_RETRY_CODES", "must list at least one code when GRPC_CLIENT_MAX_ATTEMPTS > 1")
		}
		for _, code := range c.RetryableCodes {
			if code == codes.OK || code > codes.Unauthenticated {
				bad("GRPC_CLIENT_RETRY_CODES", "%v is not a retryable status code", code)
			}
		}
	}
	if !slices.Contains(c.NoRetryMethods, recordFailedLogin) {
		bad("GRPC_CLIENT_NO_RETRY_METHODS", "must keep %s: retrying it could count one failed login twice", recordFailedLogin)
	}
	for _, m := range c.NoRetryMethods {
		if _, _, ok := splitMethod(m); !ok {
			bad("GRPC_CLIENT_NO_RETRY_METHODS", "%q is not a full method name like /pkg.Service/Method", m)
		}
	}
	if c.BreakerFailures > 0 {
		if c.BreakerCooldown < time.Millisecond {
			bad("GRPC_CLIENT_BREAKER_COOLDOWN", "must be at least 1ms, got %v", c.BreakerCooldown)
		}
		if c.BreakerHalfOpenCalls < 1 {
			bad("GRPC_CLIENT_BREAKER_HALF_OPEN_CALLS", "must be at least 1, got %d", c.BreakerHalfOpenCalls)
		}
	}
	// grpc-go raises a shorter time to 10s anyway; the auth service's
	// enforcement policy (GRPC_KEEPALIVE_MIN_TIME) would drop the connection.
	if c.KeepaliveTime < 10*time.Second {
		bad("GRPC_CLIENT_KEEPALIVE_TIME", "must be at least 10s (servers disconnect clients that ping more often), got %v", c.KeepaliveTime)
	}
	if c.KeepaliveTimeout < time.Second {
		bad("GRPC_CLIENT_KEEPALIVE_TIMEOUT", "must be at least 1s, got %v", c.KeepaliveTimeout)
	}
	if c.ReconnectMaxBackoff < 10*time.Millisecond {
		bad("GRPC_CLIENT_RECONNECT_MAX_BACKOFF", "must be at least 10ms, got %v", c.ReconnectMaxBackoff)
	}
	t := c.TLS
	if !t.Enabled && (t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "") {
		bad("GRPC_CLIENT_TLS", "must be true when GRPC_CLIENT_TLS_* files or server name are set")
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		bad("GRPC_CLIENT_TLS_CERT_FILE", "and GRPC_CLIENT_TLS_KEY_FILE must be set together for mutual TLS")
	}
	for _, f := range []struct{ name, path string }{
		{"GRPC_CLIENT_TLS_CA_FILE", t.CAFile}, {"GRPC_CLIENT_TLS_CERT_FILE", t.CertFile}, {"GRPC_CLIENT_TLS_KEY_FILE", t.KeyFile},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			bad(f.name, "%v", err)
		}
	}
	if len(errs) > 0 {
		return &ConfigError{Source: "clients", Errs: errs}
	}
	return nil
}

// normalizeTarget turns "host:port" into "dns:///host:port" and checks the
// rest looks like a gRPC target ("scheme:///…", "unix:…").
func normalizeTarget(t string) (string, error) {
	switch {
	case t == "":
		return "", errors.New("must not be empty")
	case strings.ContainsAny(t, " \t\r\n"):
		return "", errors.New("must not contain spaces")
	case strings.Contains(t, "://"), strings.HasPrefix(t, "unix:"):
		if i := strings.Index(t, "://"); i == 0 {
			return "", errors.New("has no scheme before ://")
		}
		return t, nil
	}
	host, port, err := net.SplitHostPort(t)
	if err != nil || host == "" {
		return "", errors.New("want host:port or a URI such as dns:///name:9080")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return "", errors.New("port must be a number from 1 to 65535")
	}
	return "dns:///" + t, nil
}

// splitMethod parses "/pkg.Service/Method".
func splitMethod(m string) (service, method string, ok bool) {
	rest, found := strings.CutPrefix(m, "/")
	if !found {
		return "", "", false
	}
	service, method, ok = strings.Cut(rest, "/")
	if !ok || service == "" || method == "" || strings.Contains(method, "/") {
		return "", "", false
	}
	return service, method, true
}

func durVar(dst *time.Duration, v string) error {
	d, err := time.ParseDuration(v)
	if err != nil {
		return errors.New("must be a duration such as 500ms, 5s or 1m")
	}
	*dst = d
	return nil
}

func intVar(dst *int, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil {
		return errors.New("must be a whole number")
	}
	*dst = n
	return nil
}

func uint32Var(dst *uint32, v string) error {
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return errors.New("must be a whole number, 0 or more")
	}
	*dst = uint32(n)
	return nil
}

func codesVar(dst *[]codes.Code, v string) error {
	var out []codes.Code
	for _, s := range envconfig.List(v) {
		var c codes.Code
		if err := c.UnmarshalJSON([]byte(strconv.Quote(strings.ToUpper(s)))); err != nil {
			return fmt.Errorf("%q is not a status code name such as UNAVAILABLE", s)
		}
		out = append(out, c)
	}
	*dst = out
	return nil
}
