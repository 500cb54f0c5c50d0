package testenv

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestStartQueryStopRestart(t *testing.T) {
	ctx := context.Background()
	s, err := StartPostgres(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	url, err := s.CreateDatabase(ctx, "probe")
	if err != nil {
		t.Fatal(err)
	}
	query := func() error {
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		var n int
		return c.QueryRow(ctx, "SELECT 41 + 1").Scan(&n)
	}
	if err := query(); err != nil {
		t.Fatalf("query on a fresh cluster: %v", err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := query(); err == nil {
		t.Fatal("query succeeded with the cluster stopped")
	}
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := query(); err != nil {
		t.Fatalf("query after restart: %v", err)
	}
}

// TestPasswordCIDRs: a role made by CreateRoleDatabase logs in with its
// password; without it, from a password-only range, it is refused.
func TestPasswordCIDRs(t *testing.T) {
	ctx := context.Background()
	// 127.0.0.2 stands in for a bridge gateway; 127.0.0.0/8 for the pods.
	s, err := StartPostgresWith(ctx, PostgresOptions{ListenAddr: "127.0.0.2", PasswordCIDRs: []string{"127.0.0.0/8"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	url, pw, err := s.CreateRoleDatabase(ctx, "nova_auth")
	if err != nil {
		t.Fatal(err)
	}
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("with the password: %v", err)
	}
	c.Close(ctx)
	if _, err := pgx.Connect(ctx, strings.Replace(url, pw, "wrong", 1)); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	if !strings.Contains(s.Log(), "password authentication failed") {
		t.Fatalf("log lacks the refusal:\n%s", s.Log())
	}
}
