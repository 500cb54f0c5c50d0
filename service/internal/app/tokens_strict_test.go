package app

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"

	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

// TestVerifyTokenStrict: through the real gRPC server, VerifyToken accepts
// one spelling of a token, reads header and claims as RFC 7515 and 7519
// write them, and refuses tokens that live longer than JWT_MAX_TTL.
func TestVerifyTokenStrict(t *testing.T) {
	e := newEnv(t, nil, map[string]string{"JWT_MAX_TTL": "1h", "JWT_LEEWAY": "5s"})
	ctx := context.Background()
	id := e.user(t, "s@example.com", "s")
	issue := func(ttl time.Duration) string {
		tok, _, err := e.signer.Issue(id, "s@example.com", ttl)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := issue(10 * time.Minute)

	// raw signs the header and payload exactly as written.
	b64 := base64.RawURLEncoding.EncodeToString
	raw := func(header, payload string) string {
		signing := b64([]byte(header)) + "." + b64([]byte(payload))
		sig, err := jwt.SigningMethodEdDSA.Sign(signing, e.priv)
		if err != nil {
			t.Fatal(err)
		}
		return signing + "." + b64(sig)
	}
	const header = `{"alg":"EdDSA","typ":"JWT"}`
	now := time.Now().Unix()
	payload := func(exp, extra string) string {
		return fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":%q,"email":"s@example.com","exp":%s%s}`,
			e.cfg.JWTIssuer, e.cfg.JWTAudience, id, exp, extra)
	}
	in := func(d time.Duration) string { return fmt.Sprint(time.Now().Add(d).Unix()) }

	type tcase struct {
		name, token, reason string // reason "" when valid
	}
	cases := []tcase{
		{"good", good, ""},
		{"line break inside", good[:20] + "\n" + good[20:], "malformed token"},
		{"lifetime the maximum", issue(time.Hour), ""},
		{"lifetime over the maximum", issue(time.Hour + time.Second), "token lifetime (exp - iat) exceeds the 1h maximum"},
		{"lifetime a year", issue(365 * 24 * time.Hour), "token lifetime (exp - iat) exceeds the 1h maximum"},
		{"no iat, expires within the maximum", raw(header, payload(in(50*time.Minute), "")), ""},
		{"no iat, expires after the maximum", raw(header, payload(in(2*time.Hour), "")), "token has no iat and expires more than 1h from now, the maximum lifetime"},
		{"crit header", raw(`{"alg":"EdDSA","typ":"JWT","crit":["b64"],"b64":false}`, payload(in(time.Minute), fmt.Sprintf(`,"iat":%d`, now))), "token has a crit header: no JWS extension is supported"},
		{"EXP instead of exp", raw(header, strings.Replace(payload(in(time.Minute), ""), `"exp"`, `"EXP"`, 1)), "token has no expiry (exp)"},
		{"SUB instead of sub", raw(header, strings.Replace(payload(in(time.Minute), ""), `"sub"`, `"SUB"`, 1)), "token has no subject (sub)"},
		{"exp a string", raw(header, payload(`"`+in(time.Minute)+`"`, "")), "exp claim is not a number"},
		{"no iss", raw(header, strings.Replace(payload(in(time.Minute), ""), `"iss"`, `"x"`, 1)), "token has no issuer (iss)"},
	}
	// Every other spelling of good's signature: the same bytes with other
	// unused low bits in the last character.
	segs := strings.Split(good, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(segs[2])
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
		alt := segs[2][:len(segs[2])-1] + string(c)
		if b, err := base64.RawURLEncoding.DecodeString(alt); alt != segs[2] && err == nil && string(b) == string(sig) {
			cases = append(cases, tcase{"signature spelled with " + string(c), segs[0] + "." + segs[1] + "." + alt, "malformed token"})
		}
	}
	if len(cases) < 12+15 {
		t.Fatalf("only %d other spellings of the signature", len(cases)-12)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := e.client.VerifyToken(ctx, &authpb.VerifyTokenRequest{Token: tc.token})
			wantCode(t, err, codes.OK)
			if r.GetValid() != (tc.reason == "") || r.GetError() != tc.reason {
				t.Fatalf("valid=%v error=%q, want error %q", r.GetValid(), r.GetError(), tc.reason)
			}
			if tc.reason == "" && r.GetUserId() != id {
				t.Fatalf("user_id %q, want %q", r.GetUserId(), id)
			}
			if tc.reason != "" && (r.GetUserId() != "" || r.GetEmail() != "") {
				t.Fatalf("an invalid token leaked claims: %v", r)
			}
		})
	}
}
