package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nova-auth/nova-auth/internal/tokens"
	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

const unknownID = "00000000-0000-4000-8000-000000000000"

func wantCode(t *testing.T, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("code = %v (%v), want %v", got, err, want)
	}
	if want == codes.Internal || want == codes.Unavailable {
		msg := strings.ToLower(status.Convert(err).Message())
		for _, leak := range []string{"select", "sql", "pgx", "postgres://", "password"} {
			if strings.Contains(msg, leak) {
				t.Fatalf("message %q leaks %q", msg, leak)
			}
		}
	}
}

func TestGetUser(t *testing.T) {
	e := newEnv(t, nil, nil)
	ctx := context.Background()
	id := e.user(t, "Ada@Example.com", "ada")
	gone := e.user(t, "gone@example.com", "gone")
	if err := e.st.SoftDeleteUser(ctx, uuid.MustParse(gone)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, id string
		code     codes.Code
	}{
		{"found", id, codes.OK},
		{"upper-case uuid", strings.ToUpper(id), codes.OK},
		{"unknown", unknownID, codes.NotFound},
		{"soft-deleted", gone, codes.NotFound},
		{"empty", "", codes.InvalidArgument},
		{"malformed", "not-a-uuid", codes.InvalidArgument},
		{"braced uuid", "{" + id + "}", codes.InvalidArgument},
		{"sql in id", "'; DROP TABLE users; --", codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := e.client.GetUser(ctx, &authpb.GetUserRequest{UserId: tc.id})
			wantCode(t, err, tc.code)
			if tc.code != codes.OK {
				return
			}
			u := r.GetUser()
			if u.GetId() != id || u.GetEmail() != "Ada@Example.com" || u.GetUsername() != "ada" || !u.GetIsActive() ||
				u.GetFailedLoginAttempts() != 0 || u.GetLockedUntil() != nil || u.GetCreatedAt().AsTime().IsZero() {
				t.Fatalf("user = %v", u)
			}
		})
	}
	_, err := e.client.GetUser(ctx, &authpb.GetUserRequest{UserId: unknownID})
	if !strings.Contains(status.Convert(err).Message(), unknownID) {
		t.Fatalf("NotFound message %q does not name the id", status.Convert(err).Message())
	}
}

func TestGetUsersByIds(t *testing.T) {
	e := newEnv(t, nil, nil)
	ctx := context.Background()
	a := e.user(t, "a@example.com", "a")
	b := e.user(t, "b@example.com", "b")
	c := e.user(t, "c@example.com", "c")
	if err := e.st.SoftDeleteUser(ctx, uuid.MustParse(c)); err != nil {
		t.Fatal(err)
	}
	many := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = a
		}
		return out
	}
	for _, tc := range []struct {
		name string
		ids  []string
		want []string
		code codes.Code
	}{
		{"request order kept", []string{b, a}, []string{b, a}, codes.OK},
		{"duplicates collapse", []string{a, b, a, b}, []string{a, b}, codes.OK},
		{"unknown and deleted left out", []string{unknownID, c, a}, []string{a}, codes.OK},
		{"100 ids allowed", many(100), []string{a}, codes.OK},
		{"empty list", nil, nil, codes.InvalidArgument},
		{"101 ids", many(101), nil, codes.InvalidArgument},
		{"one malformed", []string{a, "nope"}, nil, codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := e.client.GetUsersByIds(ctx, &authpb.GetUsersByIdsRequest{UserIds: tc.ids})
			wantCode(t, err, tc.code)
			var got []string
			for _, u := range r.GetUsers() {
				got = append(got, u.GetId())
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("ids = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCheckUserExistsAndGetUserByEmail(t *testing.T) {
	e := newEnv(t, nil, nil)
	ctx := context.Background()
	id := e.user(t, "Grace@Example.com", "grace")
	gone := e.user(t, "gone@example.com", "gone")
	if err := e.st.SoftDeleteUser(ctx, uuid.MustParse(gone)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id   string
		want bool
		code codes.Code
	}{{id, true, codes.OK}, {unknownID, false, codes.OK}, {gone, false, codes.OK}, {"x", false, codes.InvalidArgument}, {"", false, codes.InvalidArgument}} {
		r, err := e.client.CheckUserExists(ctx, &authpb.CheckUserExistsRequest{UserId: tc.id})
		wantCode(t, err, tc.code)
		if r.GetExists() != tc.want {
			t.Fatalf("exists(%q) = %v", tc.id, r.GetExists())
		}
	}
	for _, tc := range []struct {
		email  string
		found  bool
		code   codes.Code
		wantID string
	}{
		{"grace@example.com", true, codes.OK, id},
		{"GRACE@EXAMPLE.COM", true, codes.OK, id},
		{"  Grace@Example.com ", true, codes.OK, id},
		{"nobody@example.com", false, codes.OK, ""},
		{"gone@example.com", false, codes.OK, ""},
		{"", false, codes.InvalidArgument, ""},
		{"no-at-sign", false, codes.InvalidArgument, ""},
		{strings.Repeat("a", 300) + "@x.io", false, codes.InvalidArgument, ""},
		{"grace@exa\x00mple.com", false, codes.InvalidArgument, ""}, // valid UTF-8, refused by PostgreSQL
	} {
		r, err := e.client.GetUserByEmail(ctx, &authpb.GetUserByEmailRequest{Email: tc.email})
		wantCode(t, err, tc.code)
		if r.GetFound() != tc.found || r.GetUser().GetId() != tc.wantID {
			t.Fatalf("GetUserByEmail(%q) = %v", tc.email, r)
		}
	}
}

func TestListUsers(t *testing.T) {
	e := newEnv(t, nil, nil)
	ctx := context.Background()
	var ids []string
	for i := range 25 {
		ids = append(ids, e.user(t, fmt.Sprintf("u%02d@example.com", i), fmt.Sprintf("u%02d", i)))
	}
	// Same created_at for several users: the id must break the tie.
	if _, err := e.st.Pool().Exec(ctx, "UPDATE users SET created_at = '2026-01-01T00:00:00Z' WHERE email IN ('u00@example.com','u01@example.com','u02@example.com')"); err != nil {
		t.Fatal(err)
	}
	if err := e.st.SoftDeleteUser(ctx, uuid.MustParse(ids[24])); err != nil {
		t.Fatal(err)
	}
	r, err := e.client.ListUsers(ctx, &authpb.ListUsersRequest{})
	wantCode(t, err, codes.OK)
	if len(r.GetUsers()) != 20 || r.GetTotalCount() != 24 {
		t.Fatalf("default page: %d users, total %d; want 20, 24", len(r.GetUsers()), r.GetTotalCount())
	}
	// Walking pages of 7 visits every visible user once, newest first.
	seen := map[string]bool{}
	var prev *authpb.User
	for off := int32(0); off < 30; off += 7 {
		r, err := e.client.ListUsers(ctx, &authpb.ListUsersRequest{Limit: 7, Offset: off})
		wantCode(t, err, codes.OK)
		if r.GetTotalCount() != 24 {
			t.Fatalf("total = %d at offset %d", r.GetTotalCount(), off)
		}
		for _, u := range r.GetUsers() {
			if seen[u.GetId()] {
				t.Fatalf("user %s on two pages", u.GetId())
			}
			seen[u.GetId()] = true
			if prev != nil {
				pc, uc := prev.GetCreatedAt().AsTime(), u.GetCreatedAt().AsTime()
				if pc.Before(uc) || (pc.Equal(uc) && prev.GetId() < u.GetId()) {
					t.Fatalf("order broken: %v then %v", prev, u)
				}
			}
			prev = u
		}
	}
	if len(seen) != 24 || seen[ids[24]] {
		t.Fatalf("pages held %d users (deleted one seen: %v)", len(seen), seen[ids[24]])
	}
	r, err = e.client.ListUsers(ctx, &authpb.ListUsersRequest{Limit: 10, Offset: 1000})
	wantCode(t, err, codes.OK)
	if len(r.GetUsers()) != 0 || r.GetTotalCount() != 24 {
		t.Fatalf("past the end: %d users, total %d", len(r.GetUsers()), r.GetTotalCount())
	}
	for _, bad := range []*authpb.ListUsersRequest{{Limit: 101}, {Limit: -1}, {Offset: -1}, {Limit: 5, Offset: -5}} {
		_, err := e.client.ListUsers(ctx, bad)
		wantCode(t, err, codes.InvalidArgument)
	}
	r, err = e.client.ListUsers(ctx, &authpb.ListUsersRequest{Limit: 100})
	wantCode(t, err, codes.OK)
	if len(r.GetUsers()) != 24 {
		t.Fatalf("limit 100 gave %d users", len(r.GetUsers()))
	}
}

func TestPermissions(t *testing.T) {
	e := newEnv(t, nil, nil)
	ctx := context.Background()
	id := e.user(t, "p@example.com", "p", "users:write", "users:read")
	none := e.user(t, "n@example.com", "n")
	gone := e.user(t, "g@example.com", "g", "users:read")
	if err := e.st.SoftDeleteUser(ctx, uuid.MustParse(gone)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id, perm string
		want     bool
		code     codes.Code
	}{
		{id, "users:read", true, codes.OK},
		{id, "users:delete", false, codes.OK},
		{id, "USERS:READ", false, codes.OK}, // permissions are exact strings
		{none, "users:read", false, codes.OK},
		{gone, "users:read", false, codes.NotFound},
		{unknownID, "users:read", false, codes.NotFound},
		{"bad", "users:read", false, codes.InvalidArgument},
		{id, "", false, codes.InvalidArgument},
		{id, strings.Repeat("p", 129), false, codes.InvalidArgument},
		{id, "users:\x00read", false, codes.InvalidArgument},
	} {
		r, err := e.client.CheckPermission(ctx, &authpb.CheckPermissionRequest{UserId: tc.id, Permission: tc.perm})
		wantCode(t, err, tc.code)
		if r.GetHasPermission() != tc.want {
			t.Fatalf("CheckPermission(%s, %q) = %v", tc.id, tc.perm, r.GetHasPermission())
		}
	}
	for _, tc := range []struct {
		id   string
		want string
		code codes.Code
	}{
		{id, "[users:read users:write]", codes.OK},
		{none, "[]", codes.OK},
		{gone, "[]", codes.NotFound},
		{unknownID, "[]", codes.NotFound},
		{"", "[]", codes.InvalidArgument},
	} {
		r, err := e.client.GetUserPermissions(ctx, &authpb.GetUserPermissionsRequest{UserId: tc.id})
		wantCode(t, err, tc.code)
		if got := fmt.Sprint(r.GetPermissions()); got != tc.want {
			t.Fatalf("GetUserPermissions(%s) = %s, want %s", tc.id, got, tc.want)
		}
	}
}

func TestRecordFailedLogin(t *testing.T) {
	e := newEnv(t, nil, map[string]string{"LOCKOUT_THRESHOLD": "5", "LOCKOUT_DURATION": "15m"})
	ctx := context.Background()
	id := e.user(t, "l@example.com", "l")
	for i := int32(1); i <= 6; i++ {
		before := time.Now()
		r, err := e.client.RecordFailedLogin(ctx, &authpb.RecordFailedLoginRequest{UserId: id})
		wantCode(t, err, codes.OK)
		if r.GetFailedAttempts() != i || r.GetLocked() != (i >= 5) {
			t.Fatalf("failure %d: %v", i, r)
		}
		if i == 5 {
			until := r.GetLockedUntil().AsTime()
			if d := until.Sub(before); d < 14*time.Minute || d > 16*time.Minute {
				t.Fatalf("locked for %v, want ~15m", d)
			}
		}
	}
	u, err := e.client.GetUser(ctx, &authpb.GetUserRequest{UserId: id})
	wantCode(t, err, codes.OK)
	if u.GetUser().GetLockedUntil() == nil || u.GetUser().GetFailedLoginAttempts() != 6 {
		t.Fatalf("GetUser after lock: %v", u.GetUser())
	}
	// An expired lock starts a new count.
	if _, err := e.st.Pool().Exec(ctx, "UPDATE users SET locked_until = now() - interval '1 second' WHERE id = $1", id); err != nil {
		t.Fatal(err)
	}
	r, err := e.client.RecordFailedLogin(ctx, &authpb.RecordFailedLoginRequest{UserId: id})
	wantCode(t, err, codes.OK)
	if r.GetFailedAttempts() != 1 || r.GetLocked() || r.GetLockedUntil() != nil {
		t.Fatalf("after an expired lock: %v", r)
	}
	for _, bad := range []struct {
		id   string
		code codes.Code
	}{{unknownID, codes.NotFound}, {"", codes.InvalidArgument}, {"zz", codes.InvalidArgument}} {
		_, err := e.client.RecordFailedLogin(ctx, &authpb.RecordFailedLoginRequest{UserId: bad.id})
		wantCode(t, err, bad.code)
	}
}

// TestRecordFailedLoginRace: 50 concurrent failures for one user are all
// counted, and the account ends locked.
func TestRecordFailedLoginRace(t *testing.T) {
	e := newEnv(t, nil, map[string]string{"DB_MAX_CONNS": "50"})
	ctx := context.Background()
	id := e.user(t, "race@example.com", "race")
	const n = 50
	var wg sync.WaitGroup
	seen := make([]int32, n)
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := e.client.RecordFailedLogin(ctx, &authpb.RecordFailedLoginRequest{UserId: id})
			if err != nil {
				errs <- err
				return
			}
			seen[i] = r.GetFailedAttempts()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Each call saw a distinct count 1..50: none was lost or doubled.
	got := map[int32]bool{}
	for _, c := range seen {
		got[c] = true
	}
	if len(got) != n {
		t.Fatalf("distinct counts seen = %d, want %d", len(got), n)
	}
	u, err := e.client.GetUser(ctx, &authpb.GetUserRequest{UserId: id})
	wantCode(t, err, codes.OK)
	if u.GetUser().GetFailedLoginAttempts() != n || u.GetUser().GetLockedUntil() == nil {
		t.Fatalf("after the race: %v", u.GetUser())
	}
}

func TestVerifyToken(t *testing.T) {
	e := newEnv(t, nil, map[string]string{"JWT_LEEWAY": "5s"})
	ctx := context.Background()
	id := e.user(t, "t@example.com", "t")
	good, exp, err := e.signer.Issue(id, "t@example.com", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	otherPriv, _, _ := tokens.GenerateEd25519PEM()
	otherKey, _ := tokens.ParsePrivateKey(otherPriv)
	wrongKey, _ := tokens.NewSigner(otherKey, e.cfg.JWTIssuer, e.cfg.JWTAudience)
	wrongKeyTok, _, _ := wrongKey.Issue(id, "t@example.com", time.Minute)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	claims := func(mod func(*tokens.Claims)) *tokens.Claims {
		now := time.Now()
		c := &tokens.Claims{Email: "t@example.com", RegisteredClaims: jwt.RegisteredClaims{
			Subject: id, Issuer: e.cfg.JWTIssuer, Audience: jwt.ClaimStrings{e.cfg.JWTAudience},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)),
		}}
		if mod != nil {
			mod(c)
		}
		return c
	}
	signWith := func(m jwt.SigningMethod, key any, c *tokens.Claims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	none := func() string {
		s, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
		return s
	}()
	// HMAC signed with the server's public key bytes as the secret: the
	// classic algorithm-confusion attack.
	hmacConfusion := signWith(jwt.SigningMethodHS256, e.pubPEM, claims(nil))
	tampered := func() string {
		parts := strings.Split(good, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		payload = []byte(strings.Replace(string(payload), "t@example.com", "x@example.com", 1))
		parts[1] = base64.RawURLEncoding.EncodeToString(payload)
		return strings.Join(parts, ".")
	}()
	// ownSigner signs with the server's own key, claims changed by mod.
	ownSigner := func(mod func(*tokens.Claims)) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims(mod))
		s, err := tok.SignedString(e.priv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	for _, tc := range []struct {
		name, token string
		valid       bool
		reason      string
	}{
		{"good", good, true, ""},
		{"bearer prefix", "Bearer " + good, true, ""},
		{"expired", ownSigner(func(c *tokens.Claims) {
			c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Minute))
		}), false, "token expired"},
		{"expired within leeway", ownSigner(func(c *tokens.Claims) {
			c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-2 * time.Second))
		}), true, ""},
		{"no exp", ownSigner(func(c *tokens.Claims) { c.ExpiresAt = nil }), false, "token has no expiry (exp)"},
		{"not yet valid", ownSigner(func(c *tokens.Claims) {
			c.NotBefore = jwt.NewNumericDate(time.Now().Add(time.Hour))
		}), false, "token not valid yet"},
		{"wrong issuer", ownSigner(func(c *tokens.Claims) { c.Issuer = "https://evil.test" }), false, "wrong issuer"},
		{"wrong audience", ownSigner(func(c *tokens.Claims) { c.Audience = jwt.ClaimStrings{"other"} }), false, "wrong audience"},
		{"subject not a uuid", ownSigner(func(c *tokens.Claims) { c.Subject = "admin" }), false, "subject (sub) is not a user id"},
		{"subject in urn form", ownSigner(func(c *tokens.Claims) { c.Subject = "urn:uuid:" + id }), true, ""}, // reported canonical
		{"tampered payload", tampered, false, "invalid signature"},
		{"wrong key", wrongKeyTok, false, "invalid signature"},
		{"alg none", none, false, "signing algorithm not allowed"},
		{"hmac with the public key", hmacConfusion, false, "signing algorithm not allowed"},
		{"RS256 with unknown key", signWith(jwt.SigningMethodRS256, rsaKey, claims(nil)), false, "no configured key matches the token's algorithm"},
		{"ES256 with unknown key", signWith(jwt.SigningMethodES256, ecKey, claims(nil)), false, "no configured key matches the token's algorithm"},
		{"garbage", "not.a.jwt", false, "malformed token"},
		{"two parts", "abc.def", false, "malformed token"},
		{"huge", strings.Repeat("a", tokens.MaxTokenBytes+1), false, "token longer than 8192 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := e.client.VerifyToken(ctx, &authpb.VerifyTokenRequest{Token: tc.token})
			wantCode(t, err, codes.OK)
			if r.GetValid() != tc.valid || r.GetError() != tc.reason {
				t.Fatalf("valid=%v error=%q, want %v %q", r.GetValid(), r.GetError(), tc.valid, tc.reason)
			}
			if tc.valid && (r.GetUserId() != id || r.GetEmail() != "t@example.com" || r.GetExpiresAt() == nil) {
				t.Fatalf("claims: %v", r)
			}
			if !tc.valid && (r.GetUserId() != "" || r.GetEmail() != "") {
				t.Fatalf("an invalid token leaked claims: %v", r)
			}
		})
	}
	r, _ := e.client.VerifyToken(ctx, &authpb.VerifyTokenRequest{Token: good})
	if !r.GetExpiresAt().AsTime().Equal(exp) {
		t.Fatalf("expires_at = %v, want %v", r.GetExpiresAt().AsTime(), exp)
	}
	for _, empty := range []string{"", "   ", "Bearer "} {
		_, err := e.client.VerifyToken(ctx, &authpb.VerifyTokenRequest{Token: empty})
		wantCode(t, err, codes.InvalidArgument)
	}
}

// TestListUsersTotalStaysExact: total_count (kept by a trigger) equals a
// real count after concurrent creates, soft deletes, an undelete and a
// hard delete.
func TestListUsersTotalStaysExact(t *testing.T) {
	e := newEnv(t, nil, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	ids := make([]string, 40)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i] = e.user(t, fmt.Sprintf("c%02d@example.com", i), fmt.Sprintf("c%02d", i))
		}()
	}
	wg.Wait()
	for _, id := range ids[:10] {
		wg.Add(1)
		go func() { defer wg.Done(); e.st.SoftDeleteUser(ctx, uuid.MustParse(id)) }() //nolint:errcheck // checked by the count
	}
	wg.Wait()
	exec := func(sql string, args ...any) {
		if _, err := e.st.Pool().Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec("UPDATE users SET deleted_at = NULL WHERE id = $1", ids[0])     // undelete
	exec("DELETE FROM users WHERE id = $1", ids[20])                     // hard delete of a live user
	exec("DELETE FROM users WHERE id = $1", ids[5])                      // hard delete of a deleted user
	exec("UPDATE users SET username = 'renamed' WHERE id = $1", ids[30]) // no change in liveness
	exec("UPDATE users SET deleted_at = now() WHERE id = $1", ids[1])    // already deleted: no change
	var want int64
	if err := e.st.Pool().QueryRow(ctx, "SELECT count(*) FROM users WHERE deleted_at IS NULL").Scan(&want); err != nil {
		t.Fatal(err)
	}
	r, err := e.client.ListUsers(ctx, &authpb.ListUsersRequest{Limit: 1})
	wantCode(t, err, codes.OK)
	if r.GetTotalCount() != want || want != 30 {
		t.Fatalf("total_count = %d, real count %d, want 30", r.GetTotalCount(), want)
	}
}
