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

// cacheModes runs a benchmark against a service with the read cache on
// (the default; warmed up, as the load test warms it) and off.
func cacheModes(b *testing.B, f func(b *testing.B, e *env)) {
	for _, on := range []bool{true, false} {
		name, vars := "cache=on", map[string]string(nil)
		if !on {
			name, vars = "cache=off", map[string]string{"CACHE_SIZE": "0"}
		}
		b.Run(name, func(b *testing.B) {
			e := newEnv(b, nil, vars)
			if on {
				e.waitCache(b)
			}
			b.ReportAllocs()
			f(b, e)
		})
	}
}

func BenchmarkGetUser(b *testing.B) {
	cacheModes(b, func(b *testing.B, e *env) {
		ctx := context.Background()
		req := &authpb.GetUserRequest{UserId: e.user(b, "g@example.com", "g")}
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := e.client.GetUser(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// BenchmarkCheckPermission asks for a held and an unheld permission in
// turn, as the load test does.
func BenchmarkCheckPermission(b *testing.B) {
	cacheModes(b, func(b *testing.B, e *env) {
		ctx := context.Background()
		id := e.user(b, "c@example.com", "c", "users:read", "users:write", "admin")
		reqs := []*authpb.CheckPermissionRequest{{UserId: id, Permission: "users:read"}, {UserId: id, Permission: "billing"}}
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				if r, err := e.client.CheckPermission(ctx, reqs[i%2]); err != nil || r.GetHasPermission() != (i%2 == 0) {
					b.Fatal(r, err)
				}
			}
		})
	})
}

// BenchmarkListUsers20Keyset: a page of 20 deep in the list, by page_token
// (one index seek, whatever the depth), from the cache and without it.
func BenchmarkListUsers20Keyset(b *testing.B) {
	cacheModes(b, func(b *testing.B, e *env) {
		ctx := context.Background()
		seedUsers(b, e, 1000)
		r, err := e.client.ListUsers(ctx, &authpb.ListUsersRequest{Limit: 100, Offset: 500})
		if err != nil || r.GetNextPageToken() == "" {
			b.Fatal(r, err)
		}
		req := &authpb.ListUsersRequest{Limit: 20, PageToken: r.GetNextPageToken()}
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if r, err := e.client.ListUsers(ctx, req); err != nil || len(r.GetUsers()) != 20 || r.GetTotalCount() != 1000 {
					b.Fatal(err)
				}
			}
		})
	})
}

// seedUsers inserts n users in one statement. Lower-case ASCII addresses
// are their own canonical form (email.Canonical).
func seedUsers(b *testing.B, e *env, n int) {
	if _, err := e.st.Pool().Exec(context.Background(), `INSERT INTO users (email, email_canonical, username, password_hash)
		SELECT 'u' || i || '@example.com', 'u' || i || '@example.com', 'u' || i, 'x' FROM generate_series(1, $1) i`, n); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkListUsers20(b *testing.B) {
	e := newEnv(b, nil, nil)
	ctx := context.Background()
	seedUsers(b, e, 1000)
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
