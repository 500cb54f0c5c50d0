package tokens

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// strictVerifier is a verifier with a fixed clock, a cache and a 1h maximum
// lifetime, and a signer for its key.
func strictVerifier(t testing.TB) (*Verifier, *Signer, time.Time) {
	now := time.Unix(1_800_000_000, 0)
	v, s := newVerifierWith(t, VerifierOptions{Algorithms: []string{"EdDSA"}, Issuer: "iss", Audience: "aud",
		Leeway: time.Second, MaxTTL: time.Hour, CacheSize: 100, Now: func() time.Time { return now }})
	s.now = func() time.Time { return now }
	return v, s, now
}

// signRaw signs header and payload exactly as written, so a test can put
// in them what no JSON encoder of ours would.
func signRaw(t testing.TB, s *Signer, header, payload string) string {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	signing := b64([]byte(header)) + "." + b64([]byte(payload))
	sig, err := s.method.Sign(signing, s.key)
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + b64(sig)
}

// TestStrictClaims: the header and claims are read as RFC 7515 and 7519
// write them. Each refused case here verified (or was refused for another
// reason) before strict decoding.
func TestStrictClaims(t *testing.T) {
	v, s, now := strictVerifier(t)
	header := `{"alg":"EdDSA","typ":"JWT","kid":"` + s.kid + `"}`
	n := now.Unix()
	// claims builds a payload from the good claims, each name in set
	// replaced by its raw JSON value, or left out when the value is "".
	claims := func(set map[string]string) string {
		c := []struct{ k, v string }{
			{"iss", `"iss"`}, {"aud", `"aud"`}, {"sub", `"` + userID + `"`}, {"email", `"u@example.com"`},
			{"iat", fmt.Sprint(n)}, {"nbf", fmt.Sprint(n)}, {"exp", fmt.Sprint(n + 600)},
		}
		var parts []string
		for _, kv := range c {
			val, ok := set[kv.k]
			if !ok {
				val = kv.v
			}
			if val != "" {
				parts = append(parts, fmt.Sprintf("%q:%s", kv.k, val))
			}
		}
		for k, val := range set {
			if !strings.Contains("iss aud sub email iat nbf exp", k) {
				parts = append(parts, fmt.Sprintf("%q:%s", k, val))
			}
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	num := func(d time.Duration) string { return fmt.Sprint(now.Add(d).Unix()) }

	for _, tc := range []struct {
		name, header string
		set          map[string]string
		reason       string // "" when the token is valid
	}{
		{"good", header, nil, ""},
		{"unknown claims are ignored", header, map[string]string{"roles": `["x"]`}, ""},
		// crit (RFC 7515 §4.1.11): no extension is understood, so any is refused.
		{"crit header", `{"alg":"EdDSA","typ":"JWT","crit":["exp"]}`, nil, "token has a crit header: no JWS extension is supported"},
		{"empty crit header", `{"alg":"EdDSA","typ":"JWT","crit":[]}`, nil, "token has a crit header: no JWS extension is supported"},
		{"header names are exact", `{"alg":"EdDSA","typ":"JWT","Crit":["x"]}`, nil, ""},
		// Claim names are case-sensitive.
		{"EXP instead of exp", header, map[string]string{"exp": "", "EXP": num(10 * time.Minute)}, "token has no expiry (exp)"},
		{"SUB instead of sub", header, map[string]string{"sub": "", "SUB": `"` + userID + `"`}, "token has no subject (sub)"},
		{"Iss instead of iss", header, map[string]string{"iss": "", "Iss": `"iss"`}, "token has no issuer (iss)"},
		{"Email is not email", header, map[string]string{"email": "", "Email": `"u@example.com"`}, ""},
		{"expired exp, unexpired EXP", header, map[string]string{"exp": num(-time.Minute), "EXP": num(10 * time.Minute)}, "token expired"},
		// Dates are JSON numbers.
		{"exp a string", header, map[string]string{"exp": `"` + num(10*time.Minute) + `"`}, "exp claim is not a number"},
		{"nbf a string", header, map[string]string{"nbf": `"` + num(0) + `"`}, "nbf claim is not a number"},
		{"iat a string", header, map[string]string{"iat": `"` + num(0) + `"`}, "iat claim is not a number"},
		{"exp null", header, map[string]string{"exp": "null"}, "exp claim is not a number"},
		{"exp true", header, map[string]string{"exp": "true"}, "exp claim is not a number"},
		{"exp fractional", header, map[string]string{"exp": num(10*time.Minute) + ".5"}, ""},
		{"exp in exponent form", header, map[string]string{"exp": fmt.Sprintf("%.9e", float64(now.Add(10*time.Minute).Unix()))}, ""},
		{"exp beyond any date", header, map[string]string{"exp": "1e300"}, "exp claim is not a date in seconds since 1970"},
		{"iat beyond any date", header, map[string]string{"iat": "-1e300"}, "iat claim is not a date in seconds since 1970"},
		{"sub a number", header, map[string]string{"sub": "7"}, "sub claim is not a string"},
		{"sub null", header, map[string]string{"sub": "null"}, "sub claim is not a string"},
		{"aud a number", header, map[string]string{"aud": "7"}, "aud claim is not a string or an array of strings"},
		{"aud an array", header, map[string]string{"aud": `["other","aud"]`}, ""},
		// The missing claim is named.
		{"no exp", header, map[string]string{"exp": ""}, "token has no expiry (exp)"},
		{"no aud", header, map[string]string{"aud": ""}, "token has no audience (aud)"},
		{"no iss", header, map[string]string{"iss": ""}, "token has no issuer (iss)"},
		{"no sub", header, map[string]string{"sub": ""}, "token has no subject (sub)"},
		{"empty sub", header, map[string]string{"sub": `""`}, "token has no subject (sub)"},
		// MaxTTL (1h, leeway 1s).
		{"lifetime exactly the maximum", header, map[string]string{"exp": num(time.Hour)}, ""},
		{"lifetime over the maximum", header, map[string]string{"exp": num(time.Hour + time.Second)}, "token lifetime (exp - iat) exceeds the 1h maximum"},
		{"issued long ago", header, map[string]string{"iat": num(-2 * time.Hour), "nbf": "", "exp": num(time.Minute)}, "token lifetime (exp - iat) exceeds the 1h maximum"},
		{"no iat, expires within the maximum and leeway", header, map[string]string{"iat": "", "exp": num(time.Hour + time.Second)}, ""},
		{"no iat, expires after the maximum", header, map[string]string{"iat": "", "exp": num(time.Hour + 2*time.Second)}, "token has no iat and expires more than 1h from now, the maximum lifetime"},
		{"no iat, expires in a year", header, map[string]string{"iat": "", "nbf": "", "exp": num(365 * 24 * time.Hour)}, "token has no iat and expires more than 1h from now, the maximum lifetime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := signRaw(t, s, tc.header, claims(tc.set))
			r := v.Verify(tok)
			if r.Valid != (tc.reason == "") || r.Reason != tc.reason {
				t.Fatalf("valid=%v reason=%q, want reason %q", r.Valid, r.Reason, tc.reason)
			}
			if r.Valid && r.UserID != userID {
				t.Fatalf("user %q", r.UserID)
			}
			if tc.name == "Email is not email" && r.Email != "" {
				t.Fatalf("email %q taken from Email", r.Email)
			}
		})
	}
}

// TestOneSpellingPerToken: every other base64 spelling of a token's
// segments (the same bytes, different unused low bits in the last
// character; CR or LF inside, which base64 decoding skips) is refused and
// takes no cache entry. Before strict decoding 16 spellings of an EdDSA
// signature alone verified, each cached on its own.
func TestOneSpellingPerToken(t *testing.T) {
	v, s, _ := strictVerifier(t)
	// Lengths chosen so that no segment is a multiple of 3 bytes: every
	// segment has unused bits in its last character.
	for _, email := range []string{"u@example.com", "uu@example.com", "uuu@example.com"} {
		tok, _, err := s.Issue(userID, email, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if r := v.Verify(tok); !r.Valid {
			t.Fatalf("canonical token: %+v", r)
		}
		clear(v.cache.m)
		v.Verify(tok)
		var others []string
		segs := strings.Split(tok, ".")
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		for i, seg := range segs {
			want, _ := base64.RawURLEncoding.DecodeString(seg)
			for _, c := range alphabet {
				alt := seg[:len(seg)-1] + string(c)
				if got, err := base64.RawURLEncoding.DecodeString(alt); alt == seg || err != nil || string(got) != string(want) {
					continue
				}
				parts := append([]string(nil), segs...)
				parts[i] = alt
				others = append(others, strings.Join(parts, "."))
			}
			for _, nl := range []string{"\n", "\r"} {
				parts := append([]string(nil), segs...)
				parts[i] = seg[:4] + nl + seg[4:]
				others = append(others, strings.Join(parts, "."))
			}
		}
		if len(others) < 15+3*2 {
			t.Fatalf("only %d other spellings made", len(others))
		}
		for _, o := range others {
			if r := v.Verify(o); r.Valid || r.Reason != "malformed token" {
				t.Errorf("%q: %+v, want malformed token", o, r)
			}
		}
		if n := len(v.cache.m); n != 1 {
			t.Fatalf("%d cache entries after %d spellings of one token, want 1", n, len(others)+1)
		}
	}
}

// TestClaimStrings: string claims decode as encoding/json decodes them,
// escapes and invalid UTF-8 included.
func TestClaimStrings(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`"u@example.com"`, "u@example.com"},
		{`"u\u0040example.com"`, "u@example.com"},
		{`"a\"b"`, `a"b`},
		{`"\u00e9l\u00F6"`, "élö"},
		{`"élö"`, "élö"},
		{"\"a\xffb\"", "a\uFFFDb"},
		{`""`, ""},
	} {
		var c strictClaims
		if err := c.UnmarshalJSON([]byte(`{"email":` + tc.in + `}`)); err != nil || c.Email != tc.want {
			t.Errorf("email %s: %q, %v; want %q", tc.in, c.Email, err, tc.want)
		}
	}
}

// BenchmarkClaimsDecode compares the strict claims decoding with the plain
// encoding/json decoding it replaced, on an issued token's payload: the
// difference is what strictness adds to every uncached VerifyToken.
func BenchmarkClaimsDecode(b *testing.B) {
	_, s, _ := strictVerifier(b)
	tok, _, _ := s.Issue(userID, "u@example.com", time.Minute)
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var c Claims
			if err := json.Unmarshal(payload, &c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("strict", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var c strictClaims
			if err := json.Unmarshal(payload, &c); err != nil {
				b.Fatal(err)
			}
		}
	})
}
