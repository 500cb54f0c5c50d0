// Package grpcserver implements nova.auth_service.AuthService: input
// validation, calls to the store or the token verifier, and the mapping of
// their errors to status codes (errors.go).
package grpcserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/nova-auth/nova-auth/internal/tokens"
	"github.com/nova-auth/nova-auth/service/internal/store"
	"github.com/nova-auth/nova-auth/service/internal/tracing"
	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

// Limits on request sizes, part of the API's documented behaviour. The
// lengths of stored fields are the schema's, in store (limits.go), shared
// with the operator commands.
const (
	MaxIDsPerBatch   = 100
	DefaultListLimit = 20
	MaxListLimit     = 100
	// MaxListOffset bounds ListUsers' offset: PostgreSQL reads and drops
	// every row an offset skips, so 2^31-1 would cost a scan of the table
	// per call. Deeper pages go by page_token, one index seek each.
	MaxListOffset = 10000
)

// Store is what the handlers need from the database.
type Store interface {
	GetUser(ctx context.Context, id uuid.UUID) (store.User, error)
	GetUsersByIDs(ctx context.Context, ids []uuid.UUID) ([]store.User, error)
	UserExists(ctx context.Context, id uuid.UUID) (bool, error)
	GetUserByEmail(ctx context.Context, email string) (store.User, error)
	ListUsers(ctx context.Context, limit, offset int32, after *store.UserKey) ([]store.User, int64, error)
	HasPermission(ctx context.Context, id uuid.UUID, permission string) (bool, error)
	Permissions(ctx context.Context, id uuid.UUID) ([]string, error)
	RecordFailedLogin(ctx context.Context, id uuid.UUID, threshold int, lockFor time.Duration) (store.LoginFailure, error)
}

// Verifier checks tokens.
type Verifier interface {
	Verify(token string) tokens.Result
}

// Lockout is the failed-login policy.
type Lockout struct {
	Threshold int
	Duration  time.Duration
}

// Server handles the nine RPCs.
type Server struct {
	authpb.UnimplementedAuthServiceServer
	store    Store
	verifier Verifier
	lockout  Lockout
	log      *slog.Logger
}

var _ authpb.AuthServiceServer = (*Server)(nil)

// New builds the handlers.
func New(s Store, v Verifier, lockout Lockout, log *slog.Logger) *Server {
	return &Server{store: s, verifier: v, lockout: lockout, log: log}
}

func parseID(field, s string) (uuid.UUID, error) {
	if s == "" {
		return uuid.Nil, invalid(field + " is required")
	}
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return uuid.Nil, invalid(fmt.Sprintf("%s %q is not a UUID (expected e.g. 123e4567-e89b-12d3-a456-426614174000)", field, truncate(s, 64)))
	}
	return id, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

func toPB(u store.User) *authpb.User {
	p := &authpb.User{
		Id:                  u.ID.String(),
		Email:               u.Email,
		Username:            u.Username,
		CreatedAt:           timestamppb.New(u.CreatedAt),
		IsActive:            u.IsActive,
		FailedLoginAttempts: u.FailedLoginAttempts,
	}
	if !u.LockedUntil.IsZero() {
		p.LockedUntil = timestamppb.New(u.LockedUntil)
	}
	return p
}

// GetUser returns one visible user.
func (s *Server) GetUser(ctx context.Context, r *authpb.GetUserRequest) (*authpb.GetUserResponse, error) {
	id, err := parseID("user_id", r.GetUserId())
	if err != nil {
		return nil, err
	}
	u, err := s.store.GetUser(ctx, id)
	if err != nil {
		return nil, userErr(err, id)
	}
	return &authpb.GetUserResponse{User: toPB(u)}, nil
}

// userErr names the missing user in a NotFound.
func userErr(err error, id uuid.UUID) error {
	if errors.Is(err, store.ErrNotFound) {
		return notFound{"user " + id.String()}
	}
	return err
}

// GetUsersByIds returns the visible users among 1..100 ids.
func (s *Server) GetUsersByIds(ctx context.Context, r *authpb.GetUsersByIdsRequest) (*authpb.GetUsersByIdsResponse, error) {
	n := len(r.GetUserIds())
	if n == 0 {
		return nil, invalid("user_ids must hold at least one id")
	}
	if n > MaxIDsPerBatch {
		return nil, invalid(fmt.Sprintf("user_ids holds %d ids; at most %d are allowed per call", n, MaxIDsPerBatch))
	}
	ids := make([]uuid.UUID, n)
	for i, raw := range r.GetUserIds() {
		id, err := parseID(fmt.Sprintf("user_ids[%d]", i), raw)
		if err != nil {
			return nil, err
		}
		ids[i] = id
	}
	users, err := s.store.GetUsersByIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]*authpb.User, len(users))
	for i, u := range users {
		out[i] = toPB(u)
	}
	return &authpb.GetUsersByIdsResponse{Users: out}, nil
}

// VerifyToken checks a token; an invalid one is valid=false with a reason.
func (s *Server) VerifyToken(ctx context.Context, r *authpb.VerifyTokenRequest) (*authpb.VerifyTokenResponse, error) {
	t := bearer(r.GetToken())
	if t == "" {
		return nil, invalid("token is required")
	}
	_, span := tracing.Start(ctx, "tokens.Verify")
	res := s.verifier.Verify(t)
	span.Verified(res.Cached, res.Valid, res.Reason)
	if !res.Valid {
		return &authpb.VerifyTokenResponse{Valid: false, Error: res.Reason}, nil
	}
	return &authpb.VerifyTokenResponse{
		Valid:     true,
		UserId:    res.UserID,
		Email:     res.Email,
		ExpiresAt: timestamppb.New(res.ExpiresAt),
	}, nil
}

// bearer accepts a bare token or an Authorization header value.
func bearer(s string) string {
	f := strings.Fields(s)
	if len(f) > 0 && strings.EqualFold(f[0], "bearer") {
		f = f[1:]
	}
	if len(f) != 1 {
		return strings.Join(f, " ") // empty, or several words: a malformed token
	}
	return f[0]
}

// CheckUserExists tells whether a visible user has this id.
func (s *Server) CheckUserExists(ctx context.Context, r *authpb.CheckUserExistsRequest) (*authpb.CheckUserExistsResponse, error) {
	id, err := parseID("user_id", r.GetUserId())
	if err != nil {
		return nil, err
	}
	ok, err := s.store.UserExists(ctx, id)
	if err != nil {
		return nil, err
	}
	return &authpb.CheckUserExistsResponse{Exists: ok}, nil
}

// GetUserByEmail finds a visible user by email, ignoring case.
func (s *Server) GetUserByEmail(ctx context.Context, r *authpb.GetUserByEmailRequest) (*authpb.GetUserByEmailResponse, error) {
	e := strings.TrimSpace(r.GetEmail())
	if e == "" {
		return nil, invalid("email is required")
	}
	if len(e) > store.MaxEmailLen || !strings.Contains(e, "@") || !utf8.ValidString(e) || strings.ContainsRune(e, 0) {
		return nil, invalid(fmt.Sprintf("email %q is not an email address", truncate(e, 64)))
	}
	u, err := s.store.GetUserByEmail(ctx, e)
	if errors.Is(err, store.ErrNotFound) {
		return &authpb.GetUserByEmailResponse{Found: false}, nil
	}
	if err != nil {
		return nil, err
	}
	return &authpb.GetUserByEmailResponse{Found: true, User: toPB(u)}, nil
}

// ListUsers pages through visible users, newest first: by offset up to
// MaxListOffset, or after a page_token.
func (s *Server) ListUsers(ctx context.Context, r *authpb.ListUsersRequest) (*authpb.ListUsersResponse, error) {
	limit, offset := r.GetLimit(), r.GetOffset()
	if limit == 0 {
		limit = DefaultListLimit
	}
	if limit < 1 || limit > MaxListLimit {
		return nil, invalid(fmt.Sprintf("limit %d is out of range: use 1..%d (0 means %d)", r.GetLimit(), MaxListLimit, DefaultListLimit))
	}
	if offset < 0 {
		return nil, invalid(fmt.Sprintf("offset %d is negative: use 0 or more", offset))
	}
	if offset > MaxListOffset {
		return nil, invalid(fmt.Sprintf("offset %d is beyond %d: page further with page_token, the next_page_token of the previous response", offset, MaxListOffset))
	}
	var after *store.UserKey
	if t := r.GetPageToken(); t != "" {
		if offset != 0 {
			return nil, invalid("page_token and offset are both set: send page_token alone, it says where the page starts")
		}
		k, err := decodePageToken(t)
		if err != nil {
			return nil, err
		}
		after = &k
	}
	// One row more than the page tells whether another page follows.
	users, total, err := s.store.ListUsers(ctx, limit+1, offset, after)
	if err != nil {
		return nil, err
	}
	next := ""
	if len(users) > int(limit) {
		users = users[:limit]
		next = encodePageToken(users[limit-1].Key())
	}
	out := make([]*authpb.User, len(users))
	for i, u := range users {
		out[i] = toPB(u)
	}
	return &authpb.ListUsersResponse{Users: out, TotalCount: total, NextPageToken: next}, nil
}

func validPermission(p string) error {
	if p == "" {
		return invalid("permission is required")
	}
	if len(p) > store.MaxPermissionLen || !utf8.ValidString(p) || strings.ContainsRune(p, 0) {
		return invalid(fmt.Sprintf("permission is longer than %d bytes, not UTF-8, or holds a NUL byte", store.MaxPermissionLen))
	}
	return nil
}

// CheckPermission tells whether a visible user holds a permission.
func (s *Server) CheckPermission(ctx context.Context, r *authpb.CheckPermissionRequest) (*authpb.CheckPermissionResponse, error) {
	id, err := parseID("user_id", r.GetUserId())
	if err != nil {
		return nil, err
	}
	if err := validPermission(r.GetPermission()); err != nil {
		return nil, err
	}
	ok, err := s.store.HasPermission(ctx, id, r.GetPermission())
	if err != nil {
		return nil, userErr(err, id)
	}
	return &authpb.CheckPermissionResponse{HasPermission: ok}, nil
}

// GetUserPermissions lists a visible user's permissions, sorted.
func (s *Server) GetUserPermissions(ctx context.Context, r *authpb.GetUserPermissionsRequest) (*authpb.GetUserPermissionsResponse, error) {
	id, err := parseID("user_id", r.GetUserId())
	if err != nil {
		return nil, err
	}
	perms, err := s.store.Permissions(ctx, id)
	if err != nil {
		return nil, userErr(err, id)
	}
	return &authpb.GetUserPermissionsResponse{Permissions: perms}, nil
}

// RecordFailedLogin counts a failed login and locks at the threshold.
func (s *Server) RecordFailedLogin(ctx context.Context, r *authpb.RecordFailedLoginRequest) (*authpb.RecordFailedLoginResponse, error) {
	id, err := parseID("user_id", r.GetUserId())
	if err != nil {
		return nil, err
	}
	f, err := s.store.RecordFailedLogin(ctx, id, s.lockout.Threshold, s.lockout.Duration)
	if err != nil {
		return nil, userErr(err, id)
	}
	resp := &authpb.RecordFailedLoginResponse{FailedAttempts: f.FailedAttempts}
	if !f.LockedUntil.IsZero() {
		resp.Locked = true
		resp.LockedUntil = timestamppb.New(f.LockedUntil)
	}
	if resp.Locked && int(f.FailedAttempts) == s.lockout.Threshold {
		s.log.LogAttrs(ctx, slog.LevelInfo, "account locked", slog.String("user_id", id.String()), slog.Int("failed_attempts", int(f.FailedAttempts)))
	}
	return resp, nil
}
