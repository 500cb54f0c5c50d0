// Package clients is the platform's gRPC client library: one Pool, built
// from the environment, holds a connection to each Nova service.
//
//	pool, err := clients.FromEnv()
//	if err != nil { … }
//	defer pool.Close()
//	resp, err := pool.Auth().GetUser(ctx, &authpb.GetUserRequest{UserId: id})
//	feed := feedpb.NewFeedServiceClient(pool.Conn("feed")) // any other service
//
// Every connection gets the same policy:
//
//   - Load balancing: the target is resolved through DNS (a headless Service
//     returns one address per pod) and calls go round-robin over the
//     backends. Client-side health checking (grpc.health.v1) takes a backend
//     that is not SERVING out of the rotation until it is again. grpc-go
//     re-resolves DNS when a connection drops, not on a timer, so pods added
//     by a scale-up are found as connections recycle: servers should set a
//     maximum connection age (keepalive.ServerParameters.MaxConnectionAge).
//   - Deadlines: a call whose context has no deadline (or a later one) gets
//     GRPC_CLIENT_TIMEOUT.
//   - Retries, through gRPC's service config: up to GRPC_CLIENT_MAX_ATTEMPTS
//     attempts on the codes in GRPC_CLIENT_RETRY_CODES, waiting a random
//     time up to an exponentially growing bound (full jitter), and throttled
//     when most recent calls failed. Methods that are not idempotent are
//     never retried: AuthService/RecordFailedLogin always, others named in
//     GRPC_CLIENT_NO_RETRY_METHODS. gRPC retries only attempts the server
//     answered with a status, or never saw; a call in flight on a backend
//     that crashes fails, because the server may have run it.
//   - A circuit breaker per service (sony/gobreaker), as a unary interceptor
//     above the retries: GRPC_CLIENT_BREAKER_FAILURES consecutive calls that
//     end in Unavailable, DeadlineExceeded or Internal open it; while open,
//     calls fail at once with Unavailable (errors.Is(err, ErrCircuitOpen));
//     after GRPC_CLIENT_BREAKER_COOLDOWN it lets trial calls through and
//     closes when they succeed. NotFound, InvalidArgument and the like are
//     answers, not illness, and count as successes; Canceled counts as
//     nothing. Changes are logged and exported as
//     grpc_client_circuit_breaker_state{service},
//     grpc_client_circuit_breaker_transitions_total{service,from,to} and
//     grpc_client_circuit_breaker_rejected_total{service}.
//     The breaker guards unary calls (all of AuthService's); streams are not
//     counted.
//   - Keepalive pings every GRPC_CLIENT_KEEPALIVE_TIME, idle connections
//     included, which the auth service permits (its minimum is 10s); a
//     server with a stricter policy answers too_many_pings and grpc-go
//     backs off by itself. Optional TLS or mutual TLS.
//
// # Targets
//
// The twelve services (ServiceNames: auth, user, messaging, content, feed,
// search, media, notification, streaming, cdn, events, video) default to
//
//	dns:///<name>-service.nova-<name>.svc.cluster.local:9080
//
// and GRPC_CLIENT_<NAME>_TARGET overrides one (GRPC_CLIENT_AUTH_TARGET …).
// A value "host:port" means "dns:///host:port"; any gRPC target URI
// (dns:///, unix:, passthrough:///, a registered resolver's scheme) is
// taken as given.
//
// # Environment
//
// ConfigFromEnv (and FromEnv) read these variables on top of DefaultConfig;
// Vars holds each one's default and meaning, and the README's table is
// generated from it:
//
//	GRPC_CLIENT_<NAME>_TARGET            one per service, see above
//	GRPC_CLIENT_TIMEOUT
//	GRPC_CLIENT_MAX_ATTEMPTS
//	GRPC_CLIENT_INITIAL_BACKOFF
//	GRPC_CLIENT_MAX_BACKOFF
//	GRPC_CLIENT_BACKOFF_MULTIPLIER
//	GRPC_CLIENT_RETRY_CODES
//	GRPC_CLIENT_NO_RETRY_METHODS
//	GRPC_CLIENT_BREAKER_FAILURES
//	GRPC_CLIENT_BREAKER_COOLDOWN
//	GRPC_CLIENT_BREAKER_HALF_OPEN_CALLS
//	GRPC_CLIENT_HEALTH_CHECK
//	GRPC_CLIENT_KEEPALIVE_TIME
//	GRPC_CLIENT_KEEPALIVE_TIMEOUT
//	GRPC_CLIENT_RECONNECT_MAX_BACKOFF
//	GRPC_CLIENT_TLS
//	GRPC_CLIENT_TLS_CA_FILE
//	GRPC_CLIENT_TLS_CERT_FILE
//	GRPC_CLIENT_TLS_KEY_FILE
//	GRPC_CLIENT_TLS_SERVER_NAME
//
// Bad values make ConfigFromEnv (and FromEnv) fail with one error listing
// every offending variable by name and what it accepts.
package clients
