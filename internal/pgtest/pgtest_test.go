package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestStartQueryStopRestart(t *testing.T) {
	ctx := context.Background()
	s, err := Start(ctx, "")
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
