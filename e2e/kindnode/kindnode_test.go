package kindnode

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nova-auth/nova-auth/e2e/dockerd"
	"github.com/nova-auth/nova-auth/e2e/localcluster"
)

// TestNodeBoots builds the node image (cached), runs one node the way kind
// does (providers/docker/provision.go) and checks that systemd reaches
// running with containerd active, that the preloaded images are in the
// node's containerd, and that no cgroup hierarchy the host lacks is mounted
// in the node; then that the host is as it was.
func TestNodeBoots(t *testing.T) {
	if err := dockerd.Check(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	dir := "/tmp/nova-auth-kindnode-test"
	before := dockerd.SnapshotHost(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	cache := localcluster.DefaultCacheDir()
	start := time.Now()
	if err := Prepare(ctx, Options{CacheDir: cache, Log: testLog{t}}); err != nil {
		t.Fatal(err)
	}
	t.Logf("node image files ready in %s", time.Since(start).Round(time.Second))
	e, err := dockerd.Start(ctx, dockerd.Options{Dir: dir, DataRoot: filepath.Join(cache, "kind-docker"), Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			e.Stop()
		}
	}()
	start = time.Now()
	img, err := Build(ctx, e, Options{CacheDir: cache, Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("node image %s (built: %v) in %s", img.Ref, img.Built, time.Since(start).Round(time.Second))
	if err := e.Network(ctx, "nova-auth-ntest", "nvntest0", "172.30.79.0/24", "172.30.79.1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Docker(ctx, "run", "--detach", "--tty", "--name", "node", "--hostname", "node", "--network", "nova-auth-ntest",
		"--restart=on-failure:1", "--init=false", "--cgroupns=private", "--privileged",
		"--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
		"--tmpfs", "/tmp", "--tmpfs", "/run", "--volume", "/var", "--volume", "/lib/modules:/lib/modules:ro",
		img.Ref); err != nil {
		t.Fatal(err)
	}
	boot := time.Now()
	state := ""
	for time.Since(boot) < 2*time.Minute {
		out, _ := e.Docker(ctx, "exec", "node", "systemctl", "is-system-running")
		if state = strings.TrimSpace(string(out)); state == "running" || state == "degraded" {
			break
		}
		time.Sleep(time.Second)
	}
	t.Logf("systemd %q after %s", state, time.Since(boot).Round(time.Second))
	if state != "running" {
		failed, _ := e.Docker(ctx, "exec", "node", "systemctl", "--failed", "--no-pager")
		logs, _ := e.Docker(ctx, "logs", "node")
		t.Errorf("systemd is %q, want running; failed units:\n%s\nnode log:\n%s", state, failed, logs)
	}
	if out, err := e.Docker(ctx, "exec", "node", "systemctl", "is-active", "containerd"); err != nil || strings.TrimSpace(string(out)) != "active" {
		t.Errorf("containerd: %q, %v", out, err)
	}
	out, err := e.Docker(ctx, "exec", "node", "ctr", "--namespace=k8s.io", "images", "list", "--quiet")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{PauseImage, CNIImage, "registry.k8s.io/kube-apiserver:" + localcluster.KubernetesVersion, "registry.k8s.io/etcd:" + EtcdTag} {
		if !strings.Contains(string(out), want+"\n") {
			t.Errorf("image %s not preloaded; the node has:\n%s", want, out)
		}
	}
	// kind's log collection (`kind export logs`, the suite's kind-logs) runs crictl.
	if out, err := e.Docker(ctx, "exec", "node", "crictl", "images", "--quiet"); err != nil || !strings.Contains(string(out), "sha256:") {
		t.Errorf("crictl images in the node: %v\n%s", err, out)
	}
	out, _ = e.Docker(ctx, "exec", "node", "findmnt", "--list", "--noheadings", "--output", "TARGET", "--types", "cgroup")
	for _, c := range []string{"net_cls", "net_prio", "perf_event", "hugetlb"} {
		if hostHas(c) {
			continue
		}
		if strings.Contains(string(out), c) {
			t.Errorf("the node mounted cgroup %s, which the host has not mounted (its cgroups would be host-wide):\n%s", c, out)
		}
	}

	stopped = true
	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}
	if diff := before.Diff(dockerd.SnapshotHost(dir)); len(diff) > 0 {
		t.Errorf("the host changed:\n%s", strings.Join(diff, "\n"))
	}
}

// hostHas reports whether the host mounts a cgroup v1 controller.
func hostHas(controller string) bool {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, " - cgroup ") && strings.Contains(line, controller) {
			return true
		}
	}
	return false
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
