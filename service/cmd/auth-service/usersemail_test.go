package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/nova-auth/nova-auth/service/internal/store"
)

// TestUsersCreateEmailCanonical: `users create` stores the address without
// its surrounding white space and decides uniqueness on the canonical form,
// so the user it made is the one GetUserByEmail finds.
func TestUsersCreateEmailCanonical(t *testing.T) {
	env := newDB(t)
	if out, stderr, code := cli(t, env, "", "migrate"); code != 0 {
		t.Fatalf("migrate: %s %s", out, stderr)
	}
	out, stderr, code := cli(t, env, "", "users", "create", "--email", "  Spaced@Example.com \t", "--username", "spaced", "--password", "s3cret-pass")
	if code != 0 {
		t.Fatalf("users create: code %d stderr %q", code, stderr)
	}
	id := strings.TrimSpace(out)

	ctx := context.Background()
	st, err := store.Open(ctx, strings.TrimPrefix(env[0], "DATABASE_URL="), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, lookup := range []string{"spaced@example.com", "Spaced@Example.com", " SPACED@example.com "} {
		u, err := st.GetUserByEmail(ctx, lookup)
		if err != nil || u.ID.String() != id || u.Email != "Spaced@Example.com" {
			t.Errorf("GetUserByEmail(%q) = %q %q, %v; want %s \"Spaced@Example.com\"", lookup, u.ID, u.Email, err, id)
		}
	}

	for i, tc := range []struct {
		email string
		code  int
		msg   string
	}{
		{"spaced@example.com", 1, "already exists"},
		{"\u212Aate@example.com", 0, ""},
		{"kate@example.com", 1, "already exists"}, // the Kelvin-sign spelling above
		{"Élodie@example.com", 0, ""},
		{"e\u0301lodie@example.com", 1, "already exists"}, // NFD é, folded
		{"   ", 2, "missing --email"},
		{"  nope  ", 2, "not an email address"},
	} {
		_, stderr, code := cli(t, env, "", "users", "create", "--email", tc.email, "--username", fmt.Sprintf("u%d", i), "--password", "s3cret-pass")
		if code != tc.code || !strings.Contains(stderr, tc.msg) {
			t.Errorf("users create --email %q: code %d stderr %q; want %d %q", tc.email, code, stderr, tc.code, tc.msg)
		}
	}
}
