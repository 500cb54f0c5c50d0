package clients

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

// BenchmarkUnaryInterceptor measures what the breaker adds to a call: the
// invoker does nothing, so the difference between the cases is the cost.
func BenchmarkUnaryInterceptor(b *testing.B) {
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	cfg := DefaultConfig()
	br := newBreaker("auth", &cfg, m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	invoker := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { return nil }
	ctx := context.Background()
	const method = authpb.AuthService_GetUser_FullMethodName

	b.Run("none", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			invoker(ctx, method, nil, nil, nil)
		}
	})
	b.Run("breaker", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			br.unary(ctx, method, nil, nil, nil, invoker)
		}
	})
	b.Run("breaker-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				br.unary(ctx, method, nil, nil, nil, invoker)
			}
		})
	})
}
