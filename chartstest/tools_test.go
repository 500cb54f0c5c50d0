package chartstest

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/nova-auth/nova-auth/internal/testenv"
)

var (
	toolDir  string
	toolMu   sync.Mutex
	toolBins = map[string]string{}
)

func TestMain(m *testing.M) {
	var err error
	toolDir, err = os.MkdirTemp("", "chartstest-bin-")
	if err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(toolDir)
	testenv.RemoveBinary()
	os.Exit(code)
}

// authService returns the service's own binary, which testenv builds once
// for every test of the run that needs it.
func authService(t *testing.T) string {
	t.Helper()
	bin, err := testenv.Binary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// tool builds a pinned tool (pkg, from the module in dir, relative to
// chartstest) once per test run and returns the binary's path. The go build
// cache makes warm runs take well under a second.
func tool(t *testing.T, dir, pkg string, env ...string) string {
	t.Helper()
	toolMu.Lock()
	defer toolMu.Unlock()
	if bin, ok := toolBins[pkg]; ok {
		return bin
	}
	bin := filepath.Join(toolDir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append([]string{"GOWORK=off", "CGO_ENABLED=0"}, env...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s (in %s): %v\n%s", pkg, dir, err, out)
	}
	toolBins[pkg] = bin
	return bin
}
