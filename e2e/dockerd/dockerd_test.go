package dockerd

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nova-auth/nova-auth/e2e/localcluster"
	"github.com/nova-auth/nova-auth/e2e/ociimage"
)

// TestEngine starts the private engine, runs two --privileged containers the
// way kind runs its nodes on a network of the engine, execs into one (a
// privileged exec asks for every capability), resolves the other by name
// through docker's embedded DNS, stops the engine and checks that the host
// is as it was.
func TestEngine(t *testing.T) {
	dir, before := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	e, err := Start(ctx, Options{Dir: dir, Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			e.Stop()
		}
	}()

	img := probeImage(t, ctx, "localhost/nova-auth/dockerd-probe:1")
	if _, err := e.Docker(ctx, "load", "--input", img); err != nil {
		t.Fatal(err)
	}
	if err := e.Network(ctx, "nova-auth-dtest", "nvdtest0", "172.30.78.0/24", "172.30.78.1"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"one", "two"} {
		// kind's node flags (providers/docker/provision.go), but for the
		// host bind of /lib/modules.
		if _, err := e.Docker(ctx, "run", "--detach", "--name", name, "--hostname", name, "--network", "nova-auth-dtest",
			"--privileged", "--cgroupns=private", "--init=false", "--security-opt", "seccomp=unconfined",
			"--security-opt", "apparmor=unconfined", "--tmpfs", "/tmp", "--tmpfs", "/run", "--volume", "/var",
			"localhost/nova-auth/dockerd-probe:1"); err != nil {
			t.Fatal(err)
		}
	}
	out, err := e.Docker(ctx, "exec", "--privileged", "one", "/probe", "caps")
	if err != nil {
		t.Fatal(err)
	}
	// docker 20.10 grants the capabilities it knows (up to CAP_AUDIT_READ),
	// the wrapper removes those the host lacks: SYS_ADMIN in, nothing outside
	// the host's bounding set.
	eff, err1 := strconv.ParseUint(strings.TrimSpace(string(out)), 16, 64)
	bnd, err2 := strconv.ParseUint(hostCapBnd(t), 16, 64)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	const sysAdmin, netAdmin = 1 << 21, 1 << 12
	if eff&sysAdmin == 0 || eff&netAdmin == 0 || eff&^bnd != 0 {
		t.Errorf("privileged exec: effective capabilities %x, want SYS_ADMIN and NET_ADMIN and none outside the host's bounding set %x", eff, bnd)
	}
	out, err = e.Docker(ctx, "exec", "one", "/probe", "lookup", "two")
	if err != nil {
		t.Fatalf("resolving a container by name (embedded DNS): %v", err)
	}
	ip, err := e.Docker(ctx, "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "two")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(string(out)), strings.TrimSpace(string(ip)); got != want || !strings.HasPrefix(got, "172.30.78.") {
		t.Errorf("lookup two = %q, want its address %q on 172.30.78.0/24", got, want)
	}

	stopped = true
	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}
	if diff := before.Diff(SnapshotHost(dir)); len(diff) > 0 {
		t.Errorf("the host changed:\n%s", strings.Join(diff, "\n"))
	}
}

// setup skips (fails in CI) where the engine cannot run, and returns the
// test's run folder and the host's state before the test.
func setup(t *testing.T) (string, localcluster.HostState) {
	if err := Check(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	dir := "/tmp/nova-auth-docker-test"
	return dir, SnapshotHost(dir)
}

func hostCapBnd(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("no CapBnd")
	return ""
}

// probeImage builds internal/probe into a one-layer image tarball.
func probeImage(t *testing.T, ctx context.Context, ref string) string {
	_, file, _, _ := runtime.Caller(0)
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "probe")
	if err := ociimage.GoBuild(ctx, filepath.Join(filepath.Dir(file), "internal", "probe"), ".", bin); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	img, err := ociimage.Build(ociimage.Config{Entrypoint: []string{"/probe"}}, ociimage.File{Path: "/probe", Mode: 0o755, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "probe.tar")
	if err := ociimage.WriteTarball(out, ref, img); err != nil {
		t.Fatal(err)
	}
	return out
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestCleanAfterKill kills the engine with a container running on its
// network, as a killed test run would leave it, and checks that Clean leaves
// the host as it was, and that the next Start on the same data root (kept,
// as in the cache) starts with neither the container nor the network.
func TestCleanAfterKill(t *testing.T) {
	dir, before := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	o := Options{Dir: dir, DataRoot: t.TempDir(), Log: testLog{t}}
	e, err := Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer Clean(o)
	img := probeImage(t, ctx, "localhost/nova-auth/dockerd-probe:1")
	if _, err := e.Docker(ctx, "load", "--input", img); err != nil {
		t.Fatal(err)
	}
	if err := e.Network(ctx, "nova-auth-dtest", "nvdtest0", "172.30.78.0/24", "172.30.78.1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Docker(ctx, "run", "--detach", "--name", "one", "--network", "nova-auth-dtest", "--privileged",
		"--publish", "127.0.0.1::8080", "localhost/nova-auth/dockerd-probe:1"); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(e.pid, syscall.SIGKILL)
	if err := Clean(o); err != nil {
		t.Fatal(err)
	}
	if diff := before.Diff(SnapshotHost(dir)); len(diff) > 0 {
		t.Errorf("after Clean, the host changed:\n%s", strings.Join(diff, "\n"))
	}

	e, err = Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, list := range [][]string{{"ps", "--all", "--quiet"}, {"network", "ls", "--quiet", "--filter", "type=custom"}} {
		if out, err := e.Docker(ctx, list...); err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("docker %s after a restart: %q, %v; want none of the killed run's", strings.Join(list, " "), out, err)
		}
	}
	if err := e.Network(ctx, "nova-auth-dtest", "nvdtest0", "172.30.78.0/24", "172.30.78.1"); err != nil {
		t.Error(err)
	}
	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}
	if diff := before.Diff(SnapshotHost(dir)); len(diff) > 0 {
		t.Errorf("after the second run, the host changed:\n%s", strings.Join(diff, "\n"))
	}
}
