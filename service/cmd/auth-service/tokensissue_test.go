package main

import (
	"strings"
	"testing"
)

// TestTokensIssueTTL: `tokens issue --ttl` cannot exceed JWT_MAX_TTL; the
// refusal is a usage error (exit 2) that names the limit.
func TestTokensIssueTTL(t *testing.T) {
	env := append(newDB(t), "JWT_MAX_TTL=2h", "JWT_ACCESS_TOKEN_TTL=15m")
	if _, stderr, code := cli(t, env, "", "migrate"); code != 0 {
		t.Fatal(stderr)
	}
	id, stderr, code := cli(t, env, "", "users", "create", "--email", "ttl@example.com", "--username", "ttl", "--password", "s3cret-pass")
	if code != 0 {
		t.Fatal(stderr)
	}
	id = strings.TrimSpace(id)
	for _, tc := range []struct {
		ttl  string // "" for the default
		code int
		msg  string
	}{
		{"", 0, ""},
		{"2h", 0, ""},
		{"90m", 0, ""},
		{"2h0m1s", 2, "--ttl 2h0m1s exceeds JWT_MAX_TTL=2h0m0s"},
		{"720h", 2, "--ttl 720h0m0s exceeds JWT_MAX_TTL=2h0m0s: VerifyToken would refuse the token"},
		{"-1m", 2, "--ttl must be positive"},
	} {
		args := []string{"tokens", "issue", "--user", id}
		if tc.ttl != "" {
			args = append(args, "--ttl", tc.ttl)
		}
		out, stderr, code := cli(t, env, "", args...)
		if code != tc.code || !strings.Contains(stderr, tc.msg) {
			t.Errorf("--ttl %q: exit %d stderr %q; want %d with %q", tc.ttl, code, stderr, tc.code, tc.msg)
		}
		if (code == 0) != (strings.Count(out, ".") == 2) {
			t.Errorf("--ttl %q: stdout %q", tc.ttl, out)
		}
	}
}
