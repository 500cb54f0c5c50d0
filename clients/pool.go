package clients

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/health" // registers client-side health checking
	"google.golang.org/grpc/keepalive"

	"github.com/nova-auth/nova-auth/internal/tlsclient"
	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

// healthServices are the grpc.health.v1 service names the client watches;
// a service not listed is watched under "" (the whole server).
var healthServices = map[string]string{
	"auth": authpb.AuthService_ServiceDesc.ServiceName,
}

// Pool holds one *grpc.ClientConn per target service. It is safe for
// concurrent use; share one per process and Close it on shutdown.
type Pool struct {
	conns    map[string]*grpc.ClientConn
	breakers map[string]*breaker
	auth     authpb.AuthServiceClient
}

// FromEnv builds a Pool from ConfigFromEnv(os.Getenv).
func FromEnv() (*Pool, error) {
	cfg, err := ConfigFromEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	return New(cfg)
}

// New validates cfg and creates the connections. Nothing is dialled yet: a
// connection is made on its first call (or by WaitReady), so naming services
// that are not deployed costs nothing.
func New(cfg Config) (*Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	reg := cfg.Registerer
	if reg == nil {
		reg = prometheus.DefaultRegisterer
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("clients: register metrics: %w", err)
	}
	creds, err := transportCredentials(cfg.TLS)
	if err != nil {
		return nil, err
	}
	p := &Pool{conns: make(map[string]*grpc.ClientConn, len(cfg.Targets)), breakers: map[string]*breaker{}}
	for name, target := range cfg.Targets {
		target, _ = normalizeTarget(target) // checked by Validate
		sc, err := serviceConfig(&cfg, healthServices[name])
		if err != nil {
			p.Close()
			return nil, err
		}
		opts := []grpc.DialOption{
			grpc.WithTransportCredentials(creds),
			grpc.WithDefaultServiceConfig(sc),
			// Our policy, not whatever a DNS TXT record says.
			grpc.WithDisableServiceConfig(),
			grpc.WithKeepaliveParams(keepalive.ClientParameters{
				Time: cfg.KeepaliveTime, Timeout: cfg.KeepaliveTimeout, PermitWithoutStream: true,
			}),
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff: backoff.Config{
					BaseDelay:  min(time.Second, cfg.ReconnectMaxBackoff),
					Multiplier: 1.6,
					Jitter:     0.2,
					MaxDelay:   cfg.ReconnectMaxBackoff,
				},
				MinConnectTimeout: 5 * time.Second,
			}),
		}
		// The call span outermost, so a breaker's refusal is on it too.
		tr := newTracer(&cfg)
		opts = append(opts, grpc.WithChainUnaryInterceptor(tr.unary), grpc.WithStatsHandler(tr))
		if cfg.BreakerFailures > 0 {
			b := newBreaker(name, &cfg, m, log)
			p.breakers[name] = b
			opts = append(opts, grpc.WithChainUnaryInterceptor(b.unary))
		}
		opts = append(opts, cfg.DialOptions...)
		cc, err := grpc.NewClient(target, opts...)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("clients: %s: %w", TargetVar(name), err)
		}
		p.conns[name] = cc
	}
	if cc, ok := p.conns["auth"]; ok {
		p.auth = authpb.NewAuthServiceClient(cc)
	}
	return p, nil
}

// Auth returns the auth service's client. It panics if the pool's Config
// has no "auth" target.
func (p *Pool) Auth() authpb.AuthServiceClient {
	if p.auth == nil {
		panic(`clients: no "auth" target in this pool's Config`)
	}
	return p.auth
}

// Conn returns the connection to a named service, for that service's
// generated client: feedpb.NewFeedServiceClient(pool.Conn("feed")). It
// panics on a name the pool's Config does not have, which is a programming
// error like a mistyped constant.
func (p *Pool) Conn(name string) *grpc.ClientConn {
	cc, ok := p.conns[name]
	if !ok {
		panic(fmt.Sprintf("clients: no target named %q in this pool's Config", name))
	}
	return cc
}

// Names returns the pool's service names, sorted.
func (p *Pool) Names() []string {
	out := make([]string, 0, len(p.conns))
	for n := range p.conns {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// BreakerState returns "closed", "half-open" or "open" for a service's
// circuit breaker, or "disabled" when GRPC_CLIENT_BREAKER_FAILURES is 0.
func (p *Pool) BreakerState(name string) string {
	p.Conn(name) // panics on an unknown name
	b, ok := p.breakers[name]
	if !ok {
		return "disabled"
	}
	return b.cb.State().String()
}

// WaitReady connects to the named services (all when none are named) and
// waits until each has at least one healthy backend, or ctx ends.
func (p *Pool) WaitReady(ctx context.Context, names ...string) error {
	if len(names) == 0 {
		names = p.Names()
	}
	for _, n := range names {
		cc := p.Conn(n)
		cc.Connect()
		for {
			s := cc.GetState()
			if s == connectivity.Ready {
				break
			}
			if !cc.WaitForStateChange(ctx, s) {
				return fmt.Errorf("clients: %s service (%s) not ready, last state %s: %w", n, cc.Target(), s, ctx.Err())
			}
		}
	}
	return nil
}

// Close closes every connection; calls in flight fail with Canceled.
func (p *Pool) Close() error {
	var errs []error
	for _, cc := range p.conns {
		if err := cc.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// serviceConfig is the gRPC service config every connection gets:
// round_robin over the resolved addresses, health checking, a default
// deadline, and retries except for the methods that are not idempotent.
func serviceConfig(cfg *Config, healthService string) (string, error) {
	type name struct {
		Service string `json:"service,omitempty"`
		Method  string `json:"method,omitempty"`
	}
	type retryPolicy struct {
		MaxAttempts          int          `json:"maxAttempts"`
		InitialBackoff       string       `json:"initialBackoff"`
		MaxBackoff           string       `json:"maxBackoff"`
		BackoffMultiplier    float64      `json:"backoffMultiplier"`
		RetryableStatusCodes []codes.Code `json:"retryableStatusCodes"`
	}
	type methodConfig struct {
		Name        []name       `json:"name"`
		Timeout     string       `json:"timeout"`
		RetryPolicy *retryPolicy `json:"retryPolicy,omitempty"`
	}
	type config struct {
		LoadBalancingConfig []map[string]struct{} `json:"loadBalancingConfig"`
		HealthCheckConfig   *struct {
			ServiceName string `json:"serviceName"`
		} `json:"healthCheckConfig,omitempty"`
		MethodConfig    []methodConfig `json:"methodConfig"`
		RetryThrottling *struct {
			MaxTokens  float64 `json:"maxTokens"`
			TokenRatio float64 `json:"tokenRatio"`
		} `json:"retryThrottling,omitempty"`
	}
	c := config{LoadBalancingConfig: []map[string]struct{}{{"round_robin": {}}}}
	if cfg.HealthCheck {
		c.HealthCheckConfig = &struct {
			ServiceName string `json:"serviceName"`
		}{healthService}
	}
	timeout := seconds(cfg.Timeout)
	// The empty name is the default for every method; an exact method name
	// takes precedence over it.
	all := methodConfig{Name: []name{{}}, Timeout: timeout}
	if cfg.MaxAttempts > 1 {
		all.RetryPolicy = &retryPolicy{
			MaxAttempts:          cfg.MaxAttempts,
			InitialBackoff:       seconds(cfg.InitialBackoff),
			MaxBackoff:           seconds(cfg.MaxBackoff),
			BackoffMultiplier:    cfg.BackoffMultiplier,
			RetryableStatusCodes: cfg.RetryableCodes,
		}
		// A server that keeps failing stops being retried: retries stop
		// while more than half of the last ~10 calls failed, so they cannot
		// multiply the load on a struggling service.
		c.RetryThrottling = &struct {
			MaxTokens  float64 `json:"maxTokens"`
			TokenRatio float64 `json:"tokenRatio"`
		}{10, 0.1}
	}
	c.MethodConfig = append(c.MethodConfig, all)
	seen := map[string]bool{}
	for _, m := range cfg.NoRetryMethods {
		svc, method, _ := splitMethod(m)
		if seen[m] {
			continue
		}
		seen[m] = true
		c.MethodConfig = append(c.MethodConfig, methodConfig{Name: []name{{svc, method}}, Timeout: timeout})
	}
	b, err := json.Marshal(c)
	return string(b), err
}

// seconds formats d as a protobuf JSON Duration ("0.1s").
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

// transportCredentials builds plaintext, TLS or mutual TLS credentials
// (tlsclient: the client certificate is re-read at each handshake).
func transportCredentials(t TLSConfig) (credentials.TransportCredentials, error) {
	if !t.Enabled {
		return insecure.NewCredentials(), nil
	}
	return tlsclient.Credentials(tlsclient.Files{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, ServerName: t.ServerName,
		CAName: "clients: GRPC_CLIENT_TLS_CA_FILE", PairName: "clients: GRPC_CLIENT_TLS_CERT_FILE/GRPC_CLIENT_TLS_KEY_FILE"})
}
