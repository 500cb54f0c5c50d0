package grpcserver

import (
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/nova-auth/nova-auth/service/internal/callerpolicy"
	"github.com/nova-auth/nova-auth/service/internal/metrics"
	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

// Options are the transport settings of the gRPC server.
type Options struct {
	MaxConcurrentStreams uint32
	MaxRecvMsgBytes      int
	KeepaliveTime        time.Duration
	KeepaliveTimeout     time.Duration
	KeepaliveMinTime     time.Duration
	MaxConnectionAge     time.Duration // 0: forever
	MaxConnectionGrace   time.Duration
	RequestTimeout       time.Duration
	Reflection           bool
	// Creds, when set, is the server's TLS; nil serves plaintext.
	Creds credentials.TransportCredentials
	// Policy, when set, limits AuthService methods to the callers it names.
	Policy *callerpolicy.Policy
	// Tracing, when set, is the outermost interceptor: the server span.
	Tracing grpc.UnaryServerInterceptor
}

// ServiceName is the name health checks ask about: the generated
// descriptor's, so that no copy of it can drift from the proto.
var ServiceName = authpb.AuthService_ServiceDesc.ServiceName

// NewGRPC builds the gRPC server with AuthService, grpc.health.v1 (NOT_SERVING
// until the caller flips it) and, when enabled, reflection.
func NewGRPC(h *Server, hs *health.Server, m *metrics.GRPC, o Options, log *slog.Logger) (*grpc.Server, *Invoker) {
	kp := keepalive.ServerParameters{Time: o.KeepaliveTime, Timeout: o.KeepaliveTimeout}
	if o.MaxConnectionAge > 0 {
		kp.MaxConnectionAge, kp.MaxConnectionAgeGrace = o.MaxConnectionAge, o.MaxConnectionGrace
	}
	// Metrics outermost, so a call that panicked is counted (as Internal).
	// The UTF-8 check next: it forgets what the codec remembered, so nothing
	// may return before it (utf8.go).
	codec := newUTF8Codec()
	ints := []grpc.UnaryServerInterceptor{m.Unary, codec.check(m.InvalidUTF8), recoverer(log), deadline(o.RequestTimeout), statusMapper(log), callerPolicy(o.Policy, log)}
	if o.Tracing != nil {
		// Outside the metrics, so their exemplar sees the span.
		ints = append([]grpc.UnaryServerInterceptor{o.Tracing}, ints...)
	}
	ic := chain(ints...)
	opts := []grpc.ServerOption{
		grpc.MaxConcurrentStreams(o.MaxConcurrentStreams),
		grpc.MaxRecvMsgSize(o.MaxRecvMsgBytes),
		grpc.KeepaliveParams(kp),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: o.KeepaliveMinTime, PermitWithoutStream: true}),
		grpc.UnaryInterceptor(ic),
		grpc.ForceServerCodecV2(codec),
	}
	if o.Creds != nil {
		opts = append(opts, grpc.Creds(o.Creds))
	}
	s := grpc.NewServer(opts...)
	authpb.RegisterAuthServiceServer(s, h)
	healthpb.RegisterHealthServer(s, hs)
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	hs.SetServingStatus(ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
	if o.Reflection {
		reflection.Register(s)
	}
	return s, &Invoker{srv: h, interceptor: ic}
}

// SetServing flips both the overall and the AuthService health status.
func SetServing(hs *health.Server, serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	hs.SetServingStatus("", st)
	hs.SetServingStatus(ServiceName, st)
}
