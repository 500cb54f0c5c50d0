package kindcluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nova-auth/nova-auth/e2e/dockerd"
	"github.com/nova-auth/nova-auth/e2e/kindnode"
)

// TestThreeNodes creates kind-config.yaml's cluster (one control plane, two
// workers) on the private engine with the node image built here, and checks
// that every node is Ready with the CNI (kube-router) running on each, CoreDNS
// ready, and the resource metrics API (metrics-server) reporting nodes and
// pods; then that deleting it leaves the host as it was.
func TestThreeNodes(t *testing.T) {
	if err := dockerd.Check(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	_, file, _, _ := runtime.Caller(0)
	repo := filepath.Join(filepath.Dir(file), "..", "..")
	dir := "/tmp/nova-auth-kind-test"
	before := dockerd.SnapshotHost(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	c, err := Up(ctx, Options{Name: "nova-auth-test", ConfigFile: filepath.Join(repo, "kind-config.yaml"), Dir: dir,
		Kubeconfig: filepath.Join(t.TempDir(), "kubeconfig"), Log: testLog{t}})
	if err != nil {
		if c != nil {
			t.Log(diagnose(ctx, c))
		}
		t.Fatal(err)
	}
	down := false
	defer func() {
		if !down {
			c.Down()
		}
	}()
	cl, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := cl.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != 3 {
		t.Errorf("%d nodes, want 3", len(nodes.Items))
	}
	// The nodes are Ready once the CNI config is written (kube-router's
	// init container); wait for kube-router itself and CoreDNS.
	for _, sel := range []string{"k8s-app=kube-router", "k8s-app=kube-dns"} {
		want := map[string]int{"k8s-app=kube-router": 3, "k8s-app=kube-dns": 2}[sel]
		var states []string
		deadline := time.Now().Add(3 * time.Minute)
		for ; time.Now().Before(deadline); time.Sleep(2 * time.Second) {
			pods, err := cl.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: sel})
			if err != nil {
				t.Fatal(err)
			}
			ready := 0
			states = nil
			for _, p := range pods.Items {
				r := false
				for _, c := range p.Status.Conditions {
					r = r || (c.Type == "Ready" && c.Status == "True")
				}
				if r {
					ready++
				}
				states = append(states, fmt.Sprintf("%s on %s: %s ready=%v", p.Name, p.Spec.NodeName, p.Status.Phase, r))
			}
			if ready == want {
				break
			}
		}
		t.Logf("%s:\n%s", sel, strings.Join(states, "\n"))
		if !time.Now().Before(deadline) {
			t.Errorf("%s: want %d ready pods\n%s", sel, want, diagnose(ctx, c))
		}
	}

	if n, err := c.nodeMetrics(ctx, cl); err != nil || n != 3 {
		t.Errorf("metrics.k8s.io reports %d nodes (%v), want 3", n, err)
	}
	pm, err := cl.CoreV1().RESTClient().Get().AbsPath("/apis/metrics.k8s.io/v1beta1/namespaces/kube-system/pods").DoRaw(ctx)
	if err != nil || !strings.Contains(string(pm), "kube-router") {
		t.Errorf("pod metrics of kube-system: %v\n%.500s", err, pm)
	}

	// Each node's pod bridge has the fixed MAC address kube-router's init
	// container gave it, set (addr_assign_type 3), so the kernel keeps it
	// when the pod whose port's MAC it would otherwise take ends. (Without
	// the init container's step two of three nodes had type 1: the bridge
	// follows its ports.)
	names, _ := c.Engine.Docker(ctx, "ps", "--format", "{{.Names}}")
	for _, n := range strings.Fields(string(names)) {
		out, err := c.Engine.Docker(ctx, "exec", n, "cat", "/sys/class/net/kube-bridge/address", "/sys/class/net/kube-bridge/addr_assign_type")
		if got := strings.Fields(string(out)); err != nil || len(got) != 2 || got[0] != kindnode.KubeBridgeMAC || got[1] != "3" {
			t.Errorf("node %s kube-bridge: address and addr_assign_type %q (%v), want %s and 3", n, out, err, kindnode.KubeBridgeMAC)
		}
	}

	down = true
	if err := c.Down(); err != nil {
		t.Fatal(err)
	}
	if diff := before.Diff(dockerd.SnapshotHost(dir)); len(diff) > 0 {
		t.Errorf("the host changed:\n%s", strings.Join(diff, "\n"))
	}
}

// diagnose collects what explains a failed create: the nodes' kubelet and
// containerd journals and the pods.
func diagnose(ctx context.Context, c *Cluster) string {
	var b strings.Builder
	out, _ := c.Engine.Docker(ctx, "ps", "--all")
	b.Write(out)
	names, _ := c.Engine.Docker(ctx, "ps", "--all", "--format", "{{.Names}}")
	for _, n := range strings.Fields(string(names)) {
		for _, unit := range []string{"kubelet", "containerd"} {
			out, _ := c.Engine.Docker(ctx, "exec", n, "journalctl", "--no-pager", "-u", unit, "-n", "40")
			b.WriteString("== " + n + " " + unit + "\n")
			b.Write(out)
		}
		out, _ := c.Engine.Docker(ctx, "exec", n, "ctr", "--namespace=k8s.io", "containers", "list")
		b.Write(out)
	}
	return b.String()
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
