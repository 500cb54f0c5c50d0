package grpcserver

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

// chain composes unary interceptors, outermost first.
func chain(ints ...grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		next := h
		for i := len(ints) - 1; i >= 0; i-- {
			ic, inner := ints[i], next
			next = func(ctx context.Context, req any) (any, error) { return ic(ctx, req, info, inner) }
		}
		return next(ctx, req)
	}
}

// Invoker calls an AuthService method in-process through the same
// interceptors as the gRPC server, for the REST gateway.
type Invoker struct {
	srv         *Server
	interceptor grpc.UnaryServerInterceptor
}

// Invoke runs method ("GetUser", …); dec fills the request message.
func (i *Invoker) Invoke(ctx context.Context, method string, dec func(any) error) (any, error) {
	for _, md := range authpb.AuthService_ServiceDesc.Methods {
		if md.MethodName == method {
			return md.Handler(i.srv, ctx, dec, i.interceptor)
		}
	}
	return nil, status.Errorf(codes.Unimplemented, "no method %q in %s", method, ServiceName)
}
