package localcluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// KubernetesVersion is the release the components are built from; it must
// match the k8s.io/kubernetes line of components/go.mod.
const KubernetesVersion = "v1.34.4"

// componentCommands are the packages built into the components folder, each
// named after its last path element.
var componentCommands = []string{
	"./etcd",
	"k8s.io/kubernetes/cmd/kube-apiserver",
	"k8s.io/kubernetes/cmd/kube-controller-manager",
	"k8s.io/kubernetes/cmd/kube-scheduler",
	"k8s.io/kubernetes/cmd/kubelet",
	"k8s.io/kubernetes/cmd/kube-proxy",
	"k8s.io/kubernetes/cmd/kubectl",
}

// sourceDir is this package's folder in the source tree: the components
// module and the pause program are built from it.
func sourceDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		return "", fmt.Errorf("localcluster: cannot find its source folder (built with -trimpath?)")
	}
	return filepath.Dir(file), nil
}

// DefaultCacheDir is where built binaries are kept between runs:
// $NOVA_AUTH_CACHE_DIR, else the user cache folder (~/.cache/nova-auth).
func DefaultCacheDir() string {
	if d := os.Getenv("NOVA_AUTH_CACHE_DIR"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "nova-auth")
	}
	return filepath.Join(os.TempDir(), "nova-auth-cache")
}

// BuildComponents builds etcd, the Kubernetes control-plane and node
// binaries, kubectl and CoreDNS from the pinned components module into a folder of
// cacheDir keyed by the module's go.mod/go.sum, the Go version and the build
// flags, and returns that folder. A warm cache returns at once.
func BuildComponents(ctx context.Context, cacheDir string, log io.Writer) (string, error) {
	src, err := sourceDir()
	if err != nil {
		return "", err
	}
	modDir := filepath.Join(src, "components")
	ldflags := versionLDFlags()
	key, err := cacheKey(modDir, []string{"go.mod", "go.sum", "etcd/main.go", "coredns/go.mod", "coredns/go.sum", "coredns/main.go"},
		ldflags, strings.Join(componentCommands, " "))
	if err != nil {
		return "", err
	}
	out := filepath.Join(cacheDir, "components-"+key)
	defer pruneOld(cacheDir, "components-", out)
	return out, cached(cacheDir, out, func(tmp string) error {
		fmt.Fprintf(log, "localcluster: building etcd and Kubernetes %s components into %s (cold: several minutes)\n", KubernetesVersion, out)
		start := time.Now()
		args := append([]string{"build", "-trimpath", "-ldflags", ldflags, "-o", tmp + "/"}, componentCommands...)
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = modDir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=readonly -buildvcs=false")
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building components: %w", err)
		}
		// CoreDNS is a module of its own (see coredns/go.mod).
		cmd = exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(tmp, "coredns"), ".")
		cmd.Dir = filepath.Join(modDir, "coredns")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=readonly -buildvcs=false")
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building coredns: %w", err)
		}
		fmt.Fprintf(log, "localcluster: components built in %s\n", time.Since(start).Round(time.Second))
		return nil
	})
}

// buildPause builds the pause program as a static binary, cached like the
// components.
func buildPause(ctx context.Context, cacheDir string) (string, error) {
	src, err := sourceDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(src, "internal", "pause")
	key, err := cacheKey(dir, []string{"main.go"})
	if err != nil {
		return "", err
	}
	out := filepath.Join(cacheDir, "pause-"+key)
	return filepath.Join(out, "pause"), cached(cacheDir, out, func(tmp string) error {
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(tmp, "pause"), ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building pause: %w\n%s", err, b)
		}
		return nil
	})
}

func versionLDFlags() string {
	v := KubernetesVersion
	minor := strings.Split(strings.TrimPrefix(v, "v"), ".")[1]
	var b strings.Builder
	b.WriteString("-s -w")
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		fmt.Fprintf(&b, " -X %s.gitVersion=%s -X %s.gitMajor=1 -X %s.gitMinor=%s -X %s.gitTreeState=clean", pkg, v, pkg, pkg, minor, pkg)
	}
	return b.String()
}

// cacheKey hashes the named files of dir, the Go version and extra strings.
func cacheKey(dir string, files []string, extra ...string) (string, error) {
	h := sha256.New()
	fmt.Fprintln(h, runtime.GOOS, runtime.GOARCH)
	gov, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOVERSION: %w (is Go on PATH?)", err)
	}
	h.Write(gov)
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		h.Write(b)
	}
	for _, e := range extra {
		fmt.Fprintln(h, e)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// cached runs build into a temporary folder and renames it to out, unless out
// already exists; a file lock in cacheDir keeps concurrent runs from building
// the same thing twice.
func cached(cacheDir, out string, build func(tmp string) error) error {
	if _, err := os.Stat(out); err == nil {
		return nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(cacheDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(out); err == nil {
		return nil
	}
	tmp := out + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	if err := build(tmp); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	return os.Rename(tmp, out)
}

// pruneOld removes the other builds named prefix* in cacheDir (older pins),
// which are several hundred megabytes each.
func pruneOld(cacheDir, prefix, keep string) {
	old, _ := filepath.Glob(filepath.Join(cacheDir, prefix+"*"))
	for _, d := range old {
		if d != keep && !strings.HasSuffix(d, ".tmp") {
			os.RemoveAll(d)
		}
	}
}
