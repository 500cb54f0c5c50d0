package grpcserver

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nova-auth/nova-auth/service/internal/store"
)

// invalidArgument is a validation failure whose message is meant for the
// caller as it is.
type invalidArgument struct{ msg string }

func (e invalidArgument) Error() string { return e.msg }

func invalid(msg string) error { return invalidArgument{msg} }

// notFound names what was missing, for the caller.
type notFound struct{ what string }

func (e notFound) Error() string { return e.what + " not found" }

// toStatus is the one place errors become gRPC status codes. Messages name
// what the caller can act on and never carry SQL, stack or secrets; the full
// error goes to the log for Internal and Unavailable only.
func toStatus(ctx context.Context, log *slog.Logger, method string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var ia invalidArgument
	var nf notFound
	var cr callerRefused
	switch {
	case errors.As(err, &ia):
		return status.Error(codes.InvalidArgument, ia.msg)
	case errors.As(err, &cr):
		return status.Error(codes.PermissionDenied, cr.Error())
	case errors.As(err, &nf):
		return status.Error(codes.NotFound, nf.Error())
	case errors.Is(err, store.ErrNotFound):
		return status.Error(codes.NotFound, "not found")
	case errors.Is(err, store.ErrAlreadyExists):
		return status.Error(codes.AlreadyExists, "already exists")
	case errors.Is(err, store.ErrInvalid):
		return status.Error(codes.InvalidArgument, "a value is out of range or badly formed")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded before the call finished")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "call canceled by the client")
	case errors.Is(err, store.ErrUnavailable):
		log.LogAttrs(ctx, slog.LevelWarn, "database unavailable", slog.String("method", method), slog.String("error", err.Error()))
		return status.Error(codes.Unavailable, "database unavailable, retry later")
	}
	log.LogAttrs(ctx, slog.LevelError, "internal error", slog.String("method", method), slog.String("error", err.Error()))
	return status.Error(codes.Internal, "internal error")
}
