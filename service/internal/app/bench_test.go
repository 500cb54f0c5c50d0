package app

import (
	"context"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

// The benchmarks call through a real gRPC connection on loopback. Compare
// each to BenchmarkBaselineHealthCheck from the same run (the cost of the
// transport alone): ratios, not absolute times, are what we track.

func BenchmarkBaselineHealthCheck(b *testing.B) {
	e := newEnv(b, nil, nil)
	ctx := context.Background()
	req := &healthpb.HealthCheckRequest{Service: authpb.AuthService_ServiceDesc.ServiceName}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.health.Check(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkVerifyToken(b *testing.B) {
	e := newEnv(b, nil, nil)
	ctx := context.Background()
	id := e.user(b, "b@example.com", "b")
	tok, _, _ := e.signer.Issue(id, "b@example.com", time.Hour)
	req := &authpb.VerifyTokenRequest{Token: tok}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r, err := e.client.VerifyToken(ctx, req); err != nil || !r.GetValid() {
				b.Fatal(err, r.GetError())
			}
		}
	})
}

func BenchmarkGetUser(b *testing.B) {
	e := newEnv(b, nil, nil)
	ctx := context.Background()
	id := e.user(b, "g@example.com", "g")
	req := &authpb.GetUserRequest{UserId: id}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.client.GetUser(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkListUsers20(b *testing.B) {
	e := newEnv(b, nil, nil)
	ctx := context.Background()
	// Lower-case ASCII addresses are their own canonical form (email.Canonical).
	if _, err := e.st.Pool().Exec(ctx, `INSERT INTO users (email, email_canonical, username, password_hash)
		SELECT 'u' || i || '@example.com', 'u' || i || '@example.com', 'u' || i, 'x' FROM generate_series(1, 1000) i`); err != nil {
		b.Fatal(err)
	}
	req := &authpb.ListUsersRequest{Limit: 20, Offset: 40}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r, err := e.client.ListUsers(ctx, req); err != nil || len(r.GetUsers()) != 20 {
				b.Fatal(err)
			}
		}
	})
}
