package testenv

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	code := m.Run()
	RemoveBinary()
	os.Exit(code)
}

// TestServeReadyStop: the built binary serves on free ports, turns ready
// once its database is migrated and exits 0 on SIGTERM; a service that
// cannot start ends WaitReady with its exit, not at the deadline.
func TestServeReadyStop(t *testing.T) {
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	if again, err := Binary(); again != bin || err != nil {
		t.Fatalf("second Binary() = %q, %v; want %q again", again, err, bin)
	}
	ctx := context.Background()
	pg, err := StartPostgres(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	url, err := pg.CreateDatabase(ctx, "serve")
	if err != nil {
		t.Fatal(err)
	}
	keys := t.TempDir()
	env := []string{"DATABASE_URL=" + url, "JWT_PUBLIC_KEY_FILE=" + filepath.Join(keys, "public.pem"), "SHUTDOWN_DELAY=0s"}
	for _, args := range [][]string{{"keys", "generate", "--out-dir", keys}, {"migrate"}} {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("auth-service %s: %v\n%s", args[0], err, out)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	p, err := Serve(bin, ServeOptions{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitReady(wctx); err != nil {
		p.Stop()
		t.Fatal(err)
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop after the exit: %v", err)
	}

	bad, err := Serve(bin, ServeOptions{Env: []string{"DATABASE_URL=" + url}}) // no public key
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Stop()
	start := time.Now()
	err = bad.WaitReady(wctx)
	if err == nil || !strings.Contains(err.Error(), "exited (exit status 1)") || time.Since(start) > 10*time.Second {
		t.Fatalf("WaitReady on a service that cannot start = %v after %v; want its exit at once", err, time.Since(start))
	}
}
