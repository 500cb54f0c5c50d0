package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/nova-auth/nova-auth/internal/testenv"
)

// TestExternal: the ghz CLI, built from this module's tool directive, drives
// a bare health server and then the service in separate processes, and the
// report has a row per process, with no errors at a rate the machine
// sustains.
func TestExternal(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the ghz CLI and starts PostgreSQL and the service (make test runs it without -short)")
	}
	bin, err := testenv.Binary()
	if err != nil {
		t.Fatal(err)
	}
	ghz := filepath.Join(t.TempDir(), "ghz")
	if out, err := exec.Command("go", "build", "-o", ghz, "github.com/bojand/ghz/cmd/ghz").CombinedOutput(); err != nil {
		t.Fatalf("build the ghz CLI: %v\n%s", err, out)
	}
	dir := enterableTempDir(t)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--local", "--bin", bin, "--seed", "300", "--external", ghz,
		"--external-rps", "200", "--duration", "3s", "--warmup", "20", "--concurrency", "8", "--progress", "0",
		"--out", filepath.Join(dir, "out")}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	t.Logf("%s", stdout.String())
	for _, row := range []string{`bare grpc-go health \| Check`, `auth-service +\| VerifyToken`, `auth-service +\| GetUser`} {
		re := regexp.MustCompile(`\| ` + row + ` +\| +[0-9]+ +\| [0-9.]+[µm]?s +\| [0-9.]+[µm]?s +\| [0-9.]+× +\| [0-9.]+× +\| 0 +\|`)
		if !re.MatchString(stdout.String()) {
			t.Errorf("no row %q with a rate, p50, p99, ratios and 0 errors in:\n%s", row, stdout.String())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "external.json")); err != nil {
		t.Error(err)
	}
}
