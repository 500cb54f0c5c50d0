// Package config reads the service's settings from the environment into one
// struct, with defaults, and validates them once at start.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nova-auth/nova-auth/internal/envconfig"
	"github.com/nova-auth/nova-auth/service/internal/callerpolicy"
	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

// Config is every setting the service reads. Each field has one environment
// variable; Vars lists them with defaults and meaning.
type Config struct {
	DatabaseURL string

	BindHost string
	GRPCPort int
	HTTPPort int
	// MetricsPort 0 serves /metrics on HTTPPort.
	MetricsPort int
	// HTTPAllowedHosts empty: the /v1 gateway answers any Host.
	HTTPAllowedHosts []string

	GRPCMaxConcurrentStreams uint32
	GRPCMaxRecvMsgBytes      int
	GRPCKeepaliveTime        time.Duration
	GRPCKeepaliveTimeout     time.Duration
	GRPCKeepaliveMinTime     time.Duration
	GRPCMaxConnectionAge     time.Duration
	GRPCReflection           bool
	ShutdownDelay            time.Duration
	ShutdownTimeout          time.Duration
	RequestTimeout           time.Duration

	JWTPublicKey      string
	JWTPublicKeyFile  string
	JWTPrivateKey     string
	JWTPrivateKeyFile string
	JWTAlgorithms     []string
	JWTIssuer         string
	JWTAudience       string
	JWTLeeway         time.Duration
	JWTTokenTTL       time.Duration
	JWTMaxTTL         time.Duration
	JWTVerifyCache    int

	LockoutThreshold int
	LockoutDuration  time.Duration

	DBMaxConns          int32
	DBMinConns          int32
	DBConnectTimeout    time.Duration
	DBHealthCheckPeriod time.Duration

	// CacheSize 0 turns the read cache off.
	CacheSize       int
	CacheMaxBytes   int
	CacheTTL        time.Duration
	CacheListenPing time.Duration

	LogLevel slog.Level

	PprofAddr        string
	PprofAllowRemote bool

	TLSCertFile       string
	TLSKeyFile        string
	TLSClientCAFile   string
	TLSReloadInterval time.Duration
	// CallerPolicy is nil when CALLER_POLICY is empty: every caller the
	// transport lets in may call every method.
	CallerPolicy *callerpolicy.Policy

	// Tracing is OpenTelemetry's OTEL_* (tracing.go).
	Tracing Tracing
}

// Var is one environment variable: its name, default, help and parser.
type Var = envconfig.Var[Config]

// Vars is the complete list of environment variables the service reads, in
// the order the README's table shows them.
var Vars = append([]Var{
	{Name: "DATABASE_URL",
		Help:   "PostgreSQL connection URL (postgres://user:pass@host:5432/db?sslmode=…). Required for serve, migrate, users, permissions.",
		Secret: true,
		Parse:  func(c *Config, v string) error { c.DatabaseURL = v; return nil }},
	{Name: "BIND_HOST", Default: "0.0.0.0",
		Help:  "Address both listeners bind to.",
		Parse: func(c *Config, v string) error { c.BindHost = v; return nil }},
	{Name: "GRPC_PORT", Default: "9080",
		Help:  "gRPC port (AuthService, grpc.health.v1, reflection).",
		Parse: func(c *Config, v string) error { return port(&c.GRPCPort, v) }},
	{Name: "HTTP_PORT", Default: "8080",
		Help:  "HTTP port (/health, /readiness, REST under /v1; /metrics too unless METRICS_PORT is set).",
		Parse: func(c *Config, v string) error { return port(&c.HTTPPort, v) }},
	{Name: "METRICS_PORT",
		Help: "When set, /metrics is served on this port only and no longer on HTTP_PORT, so the REST port can be exposed without the metrics. Empty: /metrics on HTTP_PORT.",
		Parse: func(c *Config, v string) error {
			if v == "" {
				return nil
			}
			return port(&c.MetricsPort, v)
		}},
	{Name: "HTTP_ALLOWED_HOSTS",
		Help: "Comma-separated host names (e.g. auth.example.com,auth) the REST gateway under /v1 answers; a request whose Host header names another gets 421 Misdirected Request (stops DNS rebinding). The port is ignored. /health, /readiness and /metrics answer any Host, so probes by pod IP keep working. Empty: any Host.",
		Parse: func(c *Config, v string) error {
			c.HTTPAllowedHosts = nil
			for _, h := range envconfig.List(v) {
				if strings.ContainsAny(h, "/@ ") {
					return fmt.Errorf("%q is not a host name: list names such as auth.example.com, without scheme or path", h)
				}
				c.HTTPAllowedHosts = append(c.HTTPAllowedHosts, h)
			}
			return nil
		}},
	{Name: "GRPC_MAX_CONCURRENT_STREAMS", Default: "1000",
		Help: "Concurrent streams allowed per client connection (1..1000000).",
		Parse: func(c *Config, v string) error {
			n, err := intIn(v, 1, 1_000_000)
			c.GRPCMaxConcurrentStreams = uint32(n)
			return err
		}},
	{Name: "GRPC_MAX_RECV_MSG_BYTES", Default: "1048576",
		Help:  "Largest request message accepted, in bytes (1024..67108864).",
		Parse: func(c *Config, v string) error { return intVar(&c.GRPCMaxRecvMsgBytes, v, 1024, 64<<20) }},
	{Name: "GRPC_KEEPALIVE_TIME", Default: "30s",
		Help:  "Server pings an idle connection after this long.",
		Parse: func(c *Config, v string) error { return dur(&c.GRPCKeepaliveTime, v, time.Second) }},
	{Name: "GRPC_KEEPALIVE_TIMEOUT", Default: "10s",
		Help:  "Connection closed when a keepalive ping gets no answer within this.",
		Parse: func(c *Config, v string) error { return dur(&c.GRPCKeepaliveTimeout, v, time.Second) }},
	{Name: "GRPC_KEEPALIVE_MIN_TIME", Default: "10s",
		Help:  "Clients pinging more often than this are disconnected (enforcement policy).",
		Parse: func(c *Config, v string) error { return dur(&c.GRPCKeepaliveMinTime, v, time.Second) }},
	{Name: "GRPC_MAX_CONNECTION_AGE", Default: "5m",
		Help:  "Connections are closed gracefully after this long (in-flight calls get SHUTDOWN_TIMEOUT), so clients re-resolve DNS and spread over new replicas after a scale-up; 0s keeps them forever.",
		Parse: func(c *Config, v string) error { return dur(&c.GRPCMaxConnectionAge, v, 0) }},
	{Name: "GRPC_REFLECTION", Default: "true",
		Help:  "Serve gRPC server reflection (grpcurl without .proto files).",
		Parse: func(c *Config, v string) error { return envconfig.Bool(&c.GRPCReflection, v) }},
	{Name: "SHUTDOWN_DELAY", Default: "5s",
		Help:  "On SIGTERM, how long the service reports unready before it stops accepting calls, so load balancers stop routing to it (0s to disable).",
		Parse: func(c *Config, v string) error { return dur(&c.ShutdownDelay, v, 0) }},
	{Name: "SHUTDOWN_TIMEOUT", Default: "20s",
		Help:  "On SIGTERM, how long in-flight calls may finish before they are cut.",
		Parse: func(c *Config, v string) error { return dur(&c.ShutdownTimeout, v, time.Second) }},
	{Name: "REQUEST_TIMEOUT", Default: "5s",
		Help:  "Deadline applied to a call whose client set none (or a longer one).",
		Parse: func(c *Config, v string) error { return dur(&c.RequestTimeout, v, time.Millisecond) }},
	{Name: "JWT_PUBLIC_KEY",
		Help:     "PEM public key(s) VerifyToken accepts; several PEM blocks allow key rotation. Required for serve unless JWT_PUBLIC_KEY_FILE is set.",
		Verbatim: true, // PEM: kept as given
		Parse:    func(c *Config, v string) error { c.JWTPublicKey = v; return nil }},
	{Name: "JWT_PUBLIC_KEY_FILE",
		Help:  "Path of a PEM file with the public key(s), instead of JWT_PUBLIC_KEY.",
		Parse: func(c *Config, v string) error { c.JWTPublicKeyFile = v; return nil }},
	{Name: "JWT_PRIVATE_KEY",
		Help:     "PEM private key that `tokens issue` signs with (RSA, ECDSA P-256 or Ed25519).",
		Secret:   true,
		Verbatim: true, // PEM: kept as given
		Parse:    func(c *Config, v string) error { c.JWTPrivateKey = v; return nil }},
	{Name: "JWT_PRIVATE_KEY_FILE",
		Help:  "Path of a PEM file with the private key, instead of JWT_PRIVATE_KEY.",
		Parse: func(c *Config, v string) error { c.JWTPrivateKeyFile = v; return nil }},
	{Name: "JWT_ALGORITHMS", Default: "RS256,ES256,EdDSA",
		Help:  "Comma-separated signing algorithms VerifyToken accepts (subset of RS256, ES256, EdDSA).",
		Parse: func(c *Config, v string) error { return algs(&c.JWTAlgorithms, v) }},
	{Name: "JWT_ISSUER",
		Help:  "When set, tokens must carry this `iss`; `tokens issue` sets it.",
		Parse: func(c *Config, v string) error { c.JWTIssuer = v; return nil }},
	{Name: "JWT_AUDIENCE",
		Help:  "When set, tokens must list this `aud`; `tokens issue` sets it.",
		Parse: func(c *Config, v string) error { c.JWTAudience = v; return nil }},
	{Name: "JWT_LEEWAY", Default: "30s",
		Help: "Clock skew allowed when checking exp/nbf/iat (0s..5m).",
		Parse: func(c *Config, v string) error {
			if err := dur(&c.JWTLeeway, v, 0); err != nil {
				return err
			}
			if c.JWTLeeway > 5*time.Minute {
				return errors.New("must be at most 5m")
			}
			return nil
		}},
	{Name: "JWT_ACCESS_TOKEN_TTL", Default: "15m",
		Help:  "Lifetime of tokens made by `tokens issue` when --ttl is not given.",
		Parse: func(c *Config, v string) error { return dur(&c.JWTTokenTTL, v, time.Second) }},
	{Name: "JWT_MAX_TTL", Default: "24h",
		Help:  "Longest token lifetime VerifyToken accepts: `exp - iat`, or for a token without `iat` `exp - now` (give or take JWT_LEEWAY); `tokens issue --ttl` cannot exceed it.",
		Parse: func(c *Config, v string) error { return dur(&c.JWTMaxTTL, v, time.Second) }},
	{Name: "JWT_VERIFY_CACHE_SIZE", Default: "10000",
		Help:  "Verified tokens remembered so a repeated VerifyToken skips the signature check (expiry is still checked each time); 0 disables.",
		Parse: func(c *Config, v string) error { return intVar(&c.JWTVerifyCache, v, 0, 1_000_000) }},
	{Name: "LOCKOUT_THRESHOLD", Default: "5",
		Help:  "Failed logins that lock an account (1..100).",
		Parse: func(c *Config, v string) error { return intVar(&c.LockoutThreshold, v, 1, 100) }},
	{Name: "LOCKOUT_DURATION", Default: "15m",
		Help:  "How long a locked account stays locked.",
		Parse: func(c *Config, v string) error { return dur(&c.LockoutDuration, v, time.Second) }},
	{Name: "DB_MAX_CONNS", Default: "20",
		Help:  "Most PostgreSQL connections per replica (1..1000).",
		Parse: func(c *Config, v string) error { return int32Var(&c.DBMaxConns, v, 1, 1000) }},
	{Name: "DB_MIN_CONNS", Default: "5",
		Help:  "Connections kept open when idle (0..DB_MAX_CONNS).",
		Parse: func(c *Config, v string) error { return int32Var(&c.DBMinConns, v, 0, 1000) }},
	{Name: "DB_CONNECT_TIMEOUT", Default: "5s",
		Help:  "Timeout for opening one PostgreSQL connection.",
		Parse: func(c *Config, v string) error { return dur(&c.DBConnectTimeout, v, 100*time.Millisecond) }},
	{Name: "DB_HEALTH_CHECK_PERIOD", Default: "5s",
		Help:  "How often readiness pings PostgreSQL and re-checks the schema version.",
		Parse: func(c *Config, v string) error { return dur(&c.DBHealthCheckPeriod, v, 100*time.Millisecond) }},
	{Name: "CACHE_SIZE", Default: "100000",
		Help:  "Entries (users, emails) the read cache of GetUser, GetUsersByIds, CheckUserExists, GetUserByEmail, CheckPermission, GetUserPermissions (and ListUsers pages, up to 1024) holds, kept consistent across replicas by PostgreSQL LISTEN/NOTIFY (see Read cache); 0 turns it off (0..10000000).",
		Parse: func(c *Config, v string) error { return intVar(&c.CacheSize, v, 0, 10_000_000) }},
	{Name: "CACHE_MAX_BYTES", Default: "67108864",
		Help:  "Estimated memory the read cache may hold; the least recently used entries go first (1048576..17179869184).",
		Parse: func(c *Config, v string) error { return intVar(&c.CacheMaxBytes, v, 1<<20, 16<<30) }},
	{Name: "CACHE_TTL", Default: "5m",
		Help:  "Longest an entry is served, a backstop for a change no trigger notified (triggers disabled by hand); a cached lock ends at its locked_until regardless (at least 1s).",
		Parse: func(c *Config, v string) error { return dur(&c.CacheTTL, v, time.Second) }},
	{Name: "CACHE_LISTEN_PING", Default: "5s",
		Help:  "How long the cache's LISTEN connection may stay silent before it is checked with a query; a connection lost without a word is noticed within twice this, and until then the cache may serve what changed (at least 100ms).",
		Parse: func(c *Config, v string) error { return dur(&c.CacheListenPing, v, 100*time.Millisecond) }},
	{Name: "PPROF_ADDR",
		Help: "When set (e.g. 127.0.0.1:6060), serve Go's /debug/pprof profiles on this address; off by default. Only a loopback address (127.0.0.1, ::1, localhost) is accepted unless PPROF_ALLOW_REMOTE=true: profiles are not for the network.",
		Parse: func(c *Config, v string) error {
			if v == "" {
				return nil
			}
			if _, _, err := net.SplitHostPort(v); err != nil {
				return errors.New("must be host:port, e.g. 127.0.0.1:6060")
			}
			c.PprofAddr = v
			return nil
		}},
	{Name: "PPROF_ALLOW_REMOTE", Default: "false",
		Help:  "Let PPROF_ADDR be a non-loopback address (reachable from the network, with no authentication).",
		Parse: func(c *Config, v string) error { return envconfig.Bool(&c.PprofAllowRemote, v) }},
	{Name: "TLS_CERT_FILE",
		Help:  "PEM certificate (chain) served on the gRPC and HTTP ports, with TLS_KEY_FILE; empty serves plaintext. Re-read when the file changes (TLS_RELOAD_INTERVAL), no restart needed.",
		Parse: func(c *Config, v string) error { c.TLSCertFile = v; return nil }},
	{Name: "TLS_KEY_FILE",
		Help:  "PEM private key of TLS_CERT_FILE.",
		Parse: func(c *Config, v string) error { c.TLSKeyFile = v; return nil }},
	{Name: "TLS_CLIENT_CA_FILE",
		Help:  "PEM CA bundle for mutual TLS: a client certificate it did not sign (or expired) is refused at the handshake, as is a gRPC client without one; an HTTP client without one gets /health and /readiness only (401 elsewhere). Needs TLS_CERT_FILE. Re-read like the certificate.",
		Parse: func(c *Config, v string) error { c.TLSClientCAFile = v; return nil }},
	{Name: "TLS_RELOAD_INTERVAL", Default: "10s",
		Help:  "How often, at most, a handshake re-reads the TLS files to pick up a rotated certificate or client CA (at least 100ms).",
		Parse: func(c *Config, v string) error { return dur(&c.TLSReloadInterval, v, 100*time.Millisecond) }},
	{Name: "CALLER_POLICY",
		Help: "Which verified clients may call which method (needs TLS_CLIENT_CA_FILE). Rules `Method=caller,…` separated by `;`; Method is an AuthService method or `*` for the others; a caller is a client certificate's identity (first URI SAN such as a SPIFFE ID, else first DNS SAN, else CN) or `*` for any verified client. Unlisted methods without a `*` rule are refused (PERMISSION_DENIED). Empty: every client the handshake admits may call every method.",
		Parse: func(c *Config, v string) error {
			if v == "" {
				return nil
			}
			var methods []string
			for _, m := range authpb.AuthService_ServiceDesc.Methods {
				methods = append(methods, m.MethodName)
			}
			p, err := callerpolicy.Parse(v, methods)
			c.CallerPolicy = p
			return err
		}},
	{Name: "LOG_LEVEL", Default: "info",
		Help:  "debug, info, warn or error. Logs are JSON on stderr.",
		Parse: func(c *Config, v string) error { return c.LogLevel.UnmarshalText([]byte(v)) }},
}, tracingVars...)

// Names returns the names of every variable the service reads.
func Names() []string { return envconfig.Names(Vars) }

// Markdown is the table of Vars that `auth-service env --markdown` prints and
// the README shows.
func Markdown() string { return envconfig.Markdown(Vars) }

// Load reads the environment through getenv (os.Getenv in production). Every
// invalid variable is reported in one error, by name, with what it accepts.
func Load(getenv func(string) string) (*Config, error) {
	c := &Config{}
	errs := envconfig.Load(c, Vars, getenv)
	if c.DBMinConns > c.DBMaxConns {
		errs = append(errs, fmt.Errorf("DB_MIN_CONNS=%d: must not exceed DB_MAX_CONNS=%d", c.DBMinConns, c.DBMaxConns))
	}
	if c.GRPCPort == c.HTTPPort {
		errs = append(errs, fmt.Errorf("GRPC_PORT and HTTP_PORT are both %d: they must differ", c.GRPCPort))
	}
	if c.MetricsPort != 0 && (c.MetricsPort == c.GRPCPort || c.MetricsPort == c.HTTPPort) {
		errs = append(errs, fmt.Errorf("METRICS_PORT=%d: must differ from GRPC_PORT and HTTP_PORT", c.MetricsPort))
	}
	if c.JWTPublicKey != "" && c.JWTPublicKeyFile != "" {
		errs = append(errs, errors.New("JWT_PUBLIC_KEY and JWT_PUBLIC_KEY_FILE are both set: set one"))
	}
	if c.JWTPrivateKey != "" && c.JWTPrivateKeyFile != "" {
		errs = append(errs, errors.New("JWT_PRIVATE_KEY and JWT_PRIVATE_KEY_FILE are both set: set one"))
	}
	if c.JWTMaxTTL != 0 && c.JWTTokenTTL > c.JWTMaxTTL {
		errs = append(errs, fmt.Errorf("JWT_ACCESS_TOKEN_TTL=%s: must not exceed JWT_MAX_TTL=%s, or VerifyToken would refuse the tokens `tokens issue` makes", c.JWTTokenTTL, c.JWTMaxTTL))
	}
	if c.PprofAddr != "" && !c.PprofAllowRemote && !loopback(c.PprofAddr) {
		errs = append(errs, fmt.Errorf("PPROF_ADDR=%s: profiles would be reachable from the network without authentication; use a loopback address such as 127.0.0.1:6060 and kubectl port-forward, or set PPROF_ALLOW_REMOTE=true", c.PprofAddr))
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("TLS_CERT_FILE and TLS_KEY_FILE go together: set both for TLS, or neither"))
	}
	if c.TLSClientCAFile != "" && c.TLSCertFile == "" {
		errs = append(errs, errors.New("TLS_CLIENT_CA_FILE is set without TLS_CERT_FILE: mutual TLS needs the server's certificate and key too"))
	}
	if c.CallerPolicy != nil && c.TLSClientCAFile == "" {
		errs = append(errs, errors.New("CALLER_POLICY is set without TLS_CLIENT_CA_FILE: callers are named by their client certificates, so mutual TLS must be on"))
	}
	if len(errs) > 0 {
		return nil, &Error{Errs: errs}
	}
	return c, nil
}

// Error lists every invalid variable found by Load.
type Error = envconfig.Error

// RequireDatabase reports a missing DATABASE_URL in a way a person can act on.
func (c *Config) RequireDatabase() error {
	if c.DatabaseURL == "" {
		return errors.New("DATABASE_URL is not set: give a PostgreSQL URL such as postgres://user:pass@localhost:5432/nova_auth?sslmode=disable")
	}
	return nil
}

// PublicKeyPEM returns the configured public key(s), reading the file if one
// was named.
func (c *Config) PublicKeyPEM() ([]byte, error) {
	return keyPEM(c.JWTPublicKey, c.JWTPublicKeyFile, "JWT_PUBLIC_KEY")
}

// PrivateKeyPEM returns the configured private key, reading the file if one
// was named.
func (c *Config) PrivateKeyPEM() ([]byte, error) {
	return keyPEM(c.JWTPrivateKey, c.JWTPrivateKeyFile, "JWT_PRIVATE_KEY")
}

func keyPEM(inline, file, name string) ([]byte, error) {
	if inline != "" {
		return []byte(inline), nil
	}
	if file == "" {
		return nil, fmt.Errorf("%s (or %s_FILE) is not set", name, name)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s_FILE: %w", name, err)
	}
	return b, nil
}

// GRPCAddr is the gRPC listen address.
func (c *Config) GRPCAddr() string { return joinHostPort(c.BindHost, c.GRPCPort) }

// HTTPAddr is the HTTP listen address.
func (c *Config) HTTPAddr() string { return joinHostPort(c.BindHost, c.HTTPPort) }

// MetricsAddr is the metrics listen address, or "" when /metrics is served
// on the HTTP port.
func (c *Config) MetricsAddr() string {
	if c.MetricsPort == 0 {
		return ""
	}
	return joinHostPort(c.BindHost, c.MetricsPort)
}

func joinHostPort(h string, p int) string {
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	return h + ":" + strconv.Itoa(p)
}

// loopback reports whether addr (host:port) listens on loopback only. An
// empty host or 0.0.0.0 listens on every interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func port(dst *int, v string) error { return intVar(dst, v, 1, 65535) }

func intIn(v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("must be a whole number from %d to %d", lo, hi)
	}
	return n, nil
}

func intVar(dst *int, v string, lo, hi int) error {
	n, err := intIn(v, lo, hi)
	*dst = n
	return err
}

func int32Var(dst *int32, v string, lo, hi int) error {
	n, err := intIn(v, lo, hi)
	*dst = int32(n)
	return err
}

func dur(dst *time.Duration, v string, min time.Duration) error {
	d, err := time.ParseDuration(v)
	if err != nil || d < min {
		return fmt.Errorf("must be a duration such as 500ms, 30s or 15m, at least %s", min)
	}
	*dst = d
	return nil
}

// SupportedAlgorithms are the JWT algorithms the service can verify.
var SupportedAlgorithms = []string{"RS256", "ES256", "EdDSA"}

func algs(dst *[]string, v string) error {
	var out []string
	for _, a := range envconfig.List(v) {
		ok := false
		for _, s := range SupportedAlgorithms {
			if a == s {
				ok = true
			}
		}
		if !ok {
			return fmt.Errorf("%q is not supported: use a comma-separated subset of %s", a, strings.Join(SupportedAlgorithms, ","))
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return fmt.Errorf("must name at least one of %s", strings.Join(SupportedAlgorithms, ","))
	}
	*dst = out
	return nil
}
