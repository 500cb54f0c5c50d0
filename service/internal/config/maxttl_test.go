package config

import (
	"strings"
	"testing"
	"time"
)

// TestJWTMaxTTL: JWT_MAX_TTL defaults to 24h, and the default lifetime of
// `tokens issue` may not exceed it (VerifyToken would refuse those tokens).
func TestJWTMaxTTL(t *testing.T) {
	for _, tc := range []struct {
		max, ttl string
		want     time.Duration
		err      string // "" accepted
	}{
		{"", "", 24 * time.Hour, ""},
		{"1h", "", time.Hour, ""},
		{"1h", "1h", time.Hour, ""},
		{"1h", "61m", 0, "JWT_ACCESS_TOKEN_TTL=1h1m0s: must not exceed JWT_MAX_TTL=1h0m0s"},
		{"", "25h", 0, "must not exceed JWT_MAX_TTL=24h0m0s"},
		{"0s", "", 0, `JWT_MAX_TTL="0s": must be a duration such as 500ms, 30s or 15m, at least 1s`},
		{"a day", "", 0, `JWT_MAX_TTL="a day"`},
	} {
		c, err := Load(env(map[string]string{"JWT_MAX_TTL": tc.max, "JWT_ACCESS_TOKEN_TTL": tc.ttl}))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("JWT_MAX_TTL=%q JWT_ACCESS_TOKEN_TTL=%q refused: %v", tc.max, tc.ttl, err)
		case tc.err == "" && c.JWTMaxTTL != tc.want:
			t.Errorf("JWT_MAX_TTL=%q read as %s, want %s", tc.max, c.JWTMaxTTL, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("JWT_MAX_TTL=%q JWT_ACCESS_TOKEN_TTL=%q: error %v; want one containing %q", tc.max, tc.ttl, err, tc.err)
		}
	}
}
