package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// built is the auth-service binary of this test process.
var built struct {
	sync.Mutex
	dir, bin string
	err      error
}

// Binary returns the path of the auth-service binary, built from this
// checkout on the first call of the test process and shared by every later
// one (the go build cache makes a warm build quick). It builds in the root
// module, so a nested module's tests run the same binary `make build` makes.
// TestMain calls RemoveBinary after m.Run.
func Binary() (string, error) {
	built.Lock()
	defer built.Unlock()
	if built.bin == "" && built.err == nil {
		built.dir, built.bin, built.err = build()
	}
	return built.bin, built.err
}

// RemoveBinary deletes what Binary built; a later Binary builds again.
func RemoveBinary() {
	built.Lock()
	defer built.Unlock()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	built.dir, built.bin, built.err = "", "", nil
}

func build() (dir, bin string, err error) {
	root, err := rootDir()
	if err != nil {
		return "", "", fmt.Errorf("build the auth-service binary: %w", err)
	}
	if dir, err = os.MkdirTemp("", "nova-auth-bin-"); err != nil {
		return "", "", err
	}
	bin = filepath.Join(dir, "auth-service")
	cmd := exec.Command("go", "build", "-o", bin, "./service/cmd/auth-service")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", "", fmt.Errorf("build the auth-service binary (go build ./service/cmd/auth-service in %s): %w\n%s", root, err, out)
	}
	return dir, bin, nil
}
