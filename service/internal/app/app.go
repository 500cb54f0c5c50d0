// Package app wires the service together: store, token verifier, gRPC and
// HTTP servers, the readiness loop and graceful shutdown.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"

	"github.com/nova-auth/nova-auth/internal/tokens"
	"github.com/nova-auth/nova-auth/service/internal/cache"
	"github.com/nova-auth/nova-auth/service/internal/config"
	"github.com/nova-auth/nova-auth/service/internal/grpcserver"
	"github.com/nova-auth/nova-auth/service/internal/httpserver"
	"github.com/nova-auth/nova-auth/service/internal/metrics"
	"github.com/nova-auth/nova-auth/service/internal/store"
	"github.com/nova-auth/nova-auth/service/internal/tlsconfig"
	"github.com/nova-auth/nova-auth/service/internal/tracing"
)

// App is a configured service, not yet listening.
type App struct {
	cfg    *config.Config
	log    *slog.Logger
	store  *store.Store
	cache  *cache.Cache // nil when CACHE_SIZE is 0
	grpc   *grpc.Server
	health *health.Server
	http   *http.Server
	// metrics serves /metrics on METRICS_PORT; nil when /metrics is on the
	// HTTP port.
	metrics *http.Server

	ready  atomic.Bool
	reason atomic.Value // string
	// served is set once the database answered with a current schema:
	// from then on a database outage no longer makes the replica unready.
	served atomic.Bool
	dbUp   atomic.Bool
	// waitLog is when the readiness loop last said why a replica that has
	// not served yet is waiting, and what it said (the loop's own state).
	waitLog struct {
		at  time.Time
		why string
	}
	// tracing is nil when OTEL_EXPORTER_OTLP_ENDPOINT is not set.
	tracing *tracing.Tracing
}

// New checks keys and database settings and builds the servers. It does not
// wait for the database.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger) (*App, error) {
	if err := cfg.RequireDatabase(); err != nil {
		return nil, err
	}
	verifier, err := NewVerifier(cfg)
	if err != nil {
		return nil, err
	}
	tr, err := tracing.Setup(ctx, cfg.Tracing.Settings(""))
	if err != nil {
		return nil, err
	}
	stOpts := store.Options{
		MaxConns: cfg.DBMaxConns, MinConns: cfg.DBMinConns,
		ConnectTimeout: cfg.DBConnectTimeout, HealthCheckPeriod: cfg.DBHealthCheckPeriod,
	}
	var serverSpan grpc.UnaryServerInterceptor
	if tr != nil {
		stOpts.Tracer = tracing.PGX{}
		serverSpan = tr.UnaryServer()
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, stOpts)
	if err != nil {
		tr.Shutdown(time.Second) //nolint:errcheck // nothing was traced yet
		return nil, err
	}
	reg := metrics.NewRegistry()
	metrics.RegisterPool(reg, st.Pool())
	a := &App{cfg: cfg, log: log, store: st, health: health.NewServer(), tracing: tr}
	a.reason.Store("starting")
	metrics.RegisterHealth(reg, a.ready.Load, a.dbUp.Load)
	var reloader *tlsconfig.Reloader
	var grpcCreds credentials.TransportCredentials
	if cfg.TLSCertFile != "" {
		reloader, err = tlsconfig.New(tlsconfig.Files{
			CertFile: cfg.TLSCertFile, KeyFile: cfg.TLSKeyFile, ClientCAFile: cfg.TLSClientCAFile,
		}, cfg.TLSReloadInterval, log)
		if err != nil {
			st.Close()
			return nil, err
		}
		grpcCreds = credentials.NewTLS(reloader.Config(true, "h2"))
	}
	var reads grpcserver.Store = st
	if cfg.CacheSize > 0 {
		a.cache = cache.New(st, cache.Options{MaxEntries: cfg.CacheSize, MaxBytes: cfg.CacheMaxBytes, TTL: cfg.CacheTTL}, log)
		reg.MustRegister(a.cache)
		reads = a.cache
	}
	handlers := grpcserver.New(reads, verifier, grpcserver.Lockout{Threshold: cfg.LockoutThreshold, Duration: cfg.LockoutDuration}, log)
	var inv *grpcserver.Invoker
	grpcMetrics := metrics.NewGRPC(reg)
	if tr != nil {
		grpcMetrics.WithExemplars(tracing.Exemplar)
	}
	a.grpc, inv = grpcserver.NewGRPC(handlers, a.health, grpcMetrics, grpcserver.Options{
		MaxConcurrentStreams: cfg.GRPCMaxConcurrentStreams,
		MaxRecvMsgBytes:      cfg.GRPCMaxRecvMsgBytes,
		KeepaliveTime:        cfg.GRPCKeepaliveTime,
		KeepaliveTimeout:     cfg.GRPCKeepaliveTimeout,
		KeepaliveMinTime:     cfg.GRPCKeepaliveMinTime,
		MaxConnectionAge:     cfg.GRPCMaxConnectionAge,
		MaxConnectionGrace:   cfg.ShutdownTimeout,
		RequestTimeout:       cfg.RequestTimeout,
		Reflection:           cfg.GRPCReflection,
		Creds:                grpcCreds,
		Policy:               cfg.CallerPolicy,
		Tracing:              serverSpan,
	}, log)
	var httpMetrics prometheus.Gatherer = reg
	if cfg.MetricsAddr() != "" {
		httpMetrics = nil
		a.metrics = &http.Server{
			Handler:           httpserver.Metrics(reg),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
		}
	}
	a.http = &http.Server{
		Handler:           httpserver.New(a.Ready, httpMetrics, inv, httpserver.Options{AllowedHosts: cfg.HTTPAllowedHosts}),
		ReadHeaderTimeout: 5 * time.Second,
		// Bound slow bodies and slow readers too: 8080 may be reachable from
		// outside the cluster (a LoadBalancer, an Ingress, a Gateway).
		ReadTimeout:  10 * time.Second,
		WriteTimeout: cfg.RequestTimeout + 5*time.Second,
		IdleTimeout:  2 * time.Minute,
		// Refused handshakes (a client of another CA, an expired
		// certificate) land here: JSON like every other log line.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if tr != nil {
		a.http.Handler = tr.HTTP(a.http.Handler)
	}
	if reloader != nil {
		// The same certificate, client CA and reloading as gRPC: the
		// gateway runs the same methods, so it admits the same callers.
		a.http.TLSConfig = reloader.Config(cfg.TLSClientCAFile == "", "h2", "http/1.1")
		if cfg.TLSClientCAFile != "" {
			a.http.Handler = httpserver.RequireClientCert(a.http.Handler, "/health", "/readiness")
		}
	}
	return a, nil
}

// NewVerifier builds the token verifier from the configured public keys,
// or from the private key's public half when no public key is given.
func NewVerifier(cfg *config.Config) (*tokens.Verifier, error) {
	var (
		pemBytes []byte
		err      error
	)
	switch {
	case cfg.JWTPublicKey == "" && cfg.JWTPublicKeyFile == "" && cfg.JWTPrivateKey == "" && cfg.JWTPrivateKeyFile == "":
		err = errors.New("JWT_PUBLIC_KEY (or JWT_PUBLIC_KEY_FILE, or JWT_PRIVATE_KEY to use its public half) is not set")
	case cfg.JWTPublicKey == "" && cfg.JWTPublicKeyFile == "":
		// No public key configured: verify with the private key's public half.
		pemBytes, err = cfg.PrivateKeyPEM()
	default:
		pemBytes, err = cfg.PublicKeyPEM()
	}
	if err != nil {
		return nil, fmt.Errorf("%w: VerifyToken needs the public key(s) tokens are signed with", err)
	}
	keys, err := tokens.ParsePublicKeys(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("JWT_PUBLIC_KEY: %w", err)
	}
	return tokens.NewVerifier(keys, tokens.VerifierOptions{
		Algorithms: cfg.JWTAlgorithms, Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, Leeway: cfg.JWTLeeway,
		MaxTTL: cfg.JWTMaxTTL, CacheSize: cfg.JWTVerifyCache,
	})
}

// Ready reports readiness and a note: why not when unready, or what is
// degraded (the database) while still ready.
func (a *App) Ready() (bool, string) {
	if a.ready.Load() {
		if a.served.Load() && !a.dbUp.Load() {
			return true, "database unreachable: calls that need it fail with UNAVAILABLE"
		}
		return true, ""
	}
	return false, a.reason.Load().(string)
}

func (a *App) setReady(ok bool, why string) {
	if !ok {
		a.reason.Store(why)
	}
	if a.ready.Swap(ok) != ok {
		grpcserver.SetServing(a.health, ok)
		if ok {
			a.log.Info("ready")
		} else {
			a.log.Warn("not ready", slog.String("reason", why))
		}
	}
}

func (a *App) setDatabaseUp(up bool, err error) {
	if a.dbUp.Swap(up) == up || !a.served.Load() {
		return
	}
	if up {
		a.log.Info("database reachable again")
	} else {
		a.log.Warn("database unreachable; staying ready: VerifyToken keeps working, calls that need the database fail with UNAVAILABLE",
			slog.String("error", err.Error()))
	}
}

// check is one readiness probe. Readiness means "this replica can serve":
//   - at start, and while the schema is older than this binary, it waits for
//     the database and the migration (newer is fine: migrations are
//     additive, so old replicas keep serving during a rolling upgrade);
//   - once it has served, a database outage does not make it unready. The
//     database is shared: unready on it would empty the Service of every
//     replica at once, and VerifyToken, which never reads the database,
//     would go down with it. Calls that need the database fail with
//     UNAVAILABLE instead, and nova_auth_database_up and the log show it.
func (a *App) check(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.DBHealthCheckPeriod)
	defer cancel()
	v, err := a.store.CurrentVersion(ctx)
	if errors.Is(ctx.Err(), context.Canceled) {
		return // shutting down: not an outage
	}
	a.setDatabaseUp(err == nil, err)
	switch {
	case err != nil && a.served.Load():
		a.log.Debug("readiness check: database unreachable, staying ready", slog.String("error", err.Error()))
	case err != nil:
		a.setReady(false, "database unreachable")
		a.logWaiting("database unreachable", err)
	case v < store.SchemaVersion():
		why := fmt.Sprintf("schema at version %d, need %d: run `auth-service migrate`", v, store.SchemaVersion())
		a.setReady(false, why)
		a.logWaiting(why, nil)
	default:
		a.served.Store(true)
		a.setReady(true, "")
	}
}

// waitLogEvery is how often a replica that has not served yet repeats why
// it waits, when the reason stays the same.
const waitLogEvery = time.Minute

// logWaiting says, at warning level, why a replica that has not served yet
// is not ready, with the error: at once, whenever the reason changes, and
// then once a minute. A pod stuck unready at start (a NetworkPolicy or
// firewall in the way, a wrong address, a migration not run) shows why in
// its log, not only in the readiness body the kubelet reads.
func (a *App) logWaiting(why string, err error) {
	if a.served.Load() {
		return // setReady said it, once: a replica that served is known to work
	}
	now := time.Now()
	if why == a.waitLog.why && now.Sub(a.waitLog.at) < waitLogEvery {
		return
	}
	a.waitLog.at, a.waitLog.why = now, why
	attrs := []any{slog.String("reason", why)}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	a.log.Warn("not ready yet", attrs...)
}

// Serve runs until ctx ends (SIGTERM), then drains: unready at once, keep
// serving for ShutdownDelay so load balancers notice, then GracefulStop
// bounded by ShutdownTimeout.
func (a *App) Serve(ctx context.Context, grpcLis, httpLis net.Listener) error {
	defer a.store.Close()
	if a.cfg.PprofAddr != "" {
		stopPprof, err := servePprof(a.cfg.PprofAddr, a.log)
		if err != nil {
			return fmt.Errorf("PPROF_ADDR: %w", err)
		}
		defer stopPprof()
	}
	errc := make(chan error, 3)
	if a.metrics != nil {
		// Bound before serving, like the other two ports: a port taken is a
		// start-up error, not a pod that runs without metrics.
		ml, err := net.Listen("tcp", a.cfg.MetricsAddr())
		if err != nil {
			grpcLis.Close()
			httpLis.Close()
			return fmt.Errorf("METRICS_PORT: %w", err)
		}
		go func() {
			if err := a.metrics.Serve(ml); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
		// Scraped until the very end, so the drain shows in the metrics too.
		defer a.metrics.Close()
		a.log.Info("metrics listening", slog.String("addr", ml.Addr().String()))
	}
	go func() { errc <- a.grpc.Serve(grpcLis) }()
	go func() {
		serve := a.http.Serve
		if a.http.TLSConfig != nil {
			serve = func(l net.Listener) error { return a.http.ServeTLS(l, "", "") }
		}
		if err := serve(httpLis); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	a.log.Info("listening", slog.String("grpc", grpcLis.Addr().String()), slog.String("http", httpLis.Addr().String()))

	var wg sync.WaitGroup
	loopCtx, stopLoop := context.WithCancel(ctx)
	if a.cache != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.store.Listen(loopCtx, store.CacheChannel, a.cache, store.ListenOptions{
				Ping: a.cfg.CacheListenPing, PingTimeout: a.cfg.CacheListenPing, Retry: 500 * time.Millisecond})
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(a.cfg.DBHealthCheckPeriod)
		defer t.Stop()
		for {
			a.check(loopCtx)
			select {
			case <-loopCtx.Done():
				return
			case <-t.C:
			}
		}
	}()

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	stopLoop()
	wg.Wait()
	a.ready.Store(false)
	a.reason.Store("shutting down")
	grpcserver.SetServing(a.health, false)
	a.log.Info("shutting down", slog.Duration("delay", a.cfg.ShutdownDelay), slog.Duration("timeout", a.cfg.ShutdownTimeout))
	if serveErr == nil && a.cfg.ShutdownDelay > 0 {
		time.Sleep(a.cfg.ShutdownDelay)
	}
	done := make(chan struct{})
	go func() { a.grpc.GracefulStop(); close(done) }()
	timer := time.NewTimer(a.cfg.ShutdownTimeout)
	select {
	case <-done:
		timer.Stop()
	case <-timer.C:
		a.log.Warn("drain timed out; cutting remaining calls")
		a.grpc.Stop()
	}
	hctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	a.http.Shutdown(hctx) //nolint:errcheck // best effort after gRPC drained
	if err := a.tracing.Shutdown(2 * time.Second); err != nil {
		a.log.Warn("spans not flushed to the collector", slog.String("error", err.Error()))
	}
	a.log.Info("stopped")
	return serveErr
}

// Store exposes the store for the CLI commands that share the process.
func (a *App) Store() *store.Store { return a.store }
