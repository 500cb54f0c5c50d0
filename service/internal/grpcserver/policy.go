package grpcserver

import (
	"context"
	"log/slog"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/nova-auth/nova-auth/service/internal/callerpolicy"
	"github.com/nova-auth/nova-auth/service/internal/tlsconfig"
)

// callerRefused is a call CALLER_POLICY does not allow; errors.go makes it
// PERMISSION_DENIED.
type callerRefused struct{ method, identity string }

func (e callerRefused) Error() string {
	if e.identity == "" {
		return "no verified client certificate: " + e.method + " is only for callers named in CALLER_POLICY"
	}
	return "caller " + e.identity + " may not call " + e.method + " (CALLER_POLICY)"
}

// PeerIdentity is the identity of the client's verified certificate
// (tlsconfig.Identity), or "" when the call came without one. The HTTP
// gateway puts its TLS state in the context the same way, so the policy
// sees both paths alike.
func PeerIdentity(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return ""
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return ""
	}
	return tlsconfig.Identity(ti.State.VerifiedChains[0][0])
}

// callerPolicy refuses AuthService calls that the policy does not allow the
// verified client to make. Health checks and reflection are not subject to
// it: mutual TLS already limits them to clients of the CA. The refusal is
// logged with the caller's identity; metrics count it by method only (the
// grpc_code label), never by identity, which can grow without bound.
func callerPolicy(p *callerpolicy.Policy, log *slog.Logger) grpc.UnaryServerInterceptor {
	prefix := "/" + ServiceName + "/"
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		method, ours := strings.CutPrefix(info.FullMethod, prefix)
		if p == nil || !ours {
			return h(ctx, req)
		}
		if id := PeerIdentity(ctx); !p.Allows(method, id) {
			log.LogAttrs(ctx, slog.LevelWarn, "call refused by CALLER_POLICY",
				slog.String("method", method), slog.String("caller", id))
			return nil, callerRefused{method: method, identity: id}
		}
		return h(ctx, req)
	}
}
