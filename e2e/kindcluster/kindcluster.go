// Package kindcluster brings up the kind cluster of the e2e suite on this
// machine: the private Docker engine (e2e/dockerd), the node image built here
// (e2e/kindnode), a Docker network of its own, then kind (the pinned Go
// library) creates kind-config.yaml's nodes with this machine's patches
// (CIConfig) and every node is waited for to be Ready; then metrics-server
// (built here too) is started and waited for.
package kindcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cmd"

	"github.com/nova-auth/nova-auth/e2e/dockerd"
	"github.com/nova-auth/nova-auth/e2e/kindnode"
	"github.com/nova-auth/nova-auth/e2e/localcluster"
)

// The engine's network for the nodes. The host is the gateway: a database on
// the host listens there for the pods (the nodes' network counts as our own
// test host).
const (
	Network = "nova-auth-kind"
	Bridge  = "nvkind0"
	Subnet  = "172.30.77.0/24"
	Gateway = "172.30.77.1"
)

// kubeletSysctls are the host-wide settings a node's kubelet changes
// (pkg/kubelet/cm setupKernelTunables); Down puts them back.
var kubeletSysctls = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
}

// Options configure Up.
type Options struct {
	// Name is the kind cluster's name.
	Name string
	// ConfigFile is the user's kind config (kind-config.yaml).
	ConfigFile string
	// Dir is the engine's run folder; default /tmp/nova-auth-kind.
	Dir string
	// CacheDir keeps built artifacts and the engine's data root (images stay
	// loaded between runs); default localcluster.DefaultCacheDir().
	CacheDir string
	// Kubeconfig is where the cluster's kubeconfig is written.
	Kubeconfig string
	Log        io.Writer
}

// Cluster is a running kind cluster on the private engine.
type Cluster struct {
	Engine   *dockerd.Engine
	Provider *cluster.Provider
	Name     string
	// Kubeconfig is a cluster-admin kubeconfig (API server on 127.0.0.1).
	Kubeconfig string
	Image      kindnode.Image
	log        io.Writer
}

// Up starts the engine, builds the node image if needed and creates the
// cluster. On error everything it started is stopped.
func Up(ctx context.Context, o Options) (c *Cluster, err error) {
	if o.Dir == "" {
		o.Dir = "/tmp/nova-auth-kind"
	}
	if o.CacheDir == "" {
		o.CacheDir = localcluster.DefaultCacheDir()
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	// The long part of a cold build needs no engine: it runs before one is
	// started, so the engine's time on the host stays short.
	if err := kindnode.Prepare(ctx, kindnode.Options{CacheDir: o.CacheDir, Log: o.Log}); err != nil {
		return nil, err
	}
	e, err := dockerd.Start(ctx, dockerd.Options{Dir: o.Dir, DataRoot: filepath.Join(o.CacheDir, "kind-docker"),
		CgroupParent: "nova-auth-kind", Sysctls: kubeletSysctls, Log: o.Log})
	if err != nil {
		return nil, err
	}
	c = &Cluster{Engine: e, Name: o.Name, Kubeconfig: o.Kubeconfig, log: o.Log}
	defer func() {
		if err != nil {
			c.Down()
		}
	}()
	start := time.Now()
	if c.Image, err = kindnode.Build(ctx, e, kindnode.Options{CacheDir: o.CacheDir, Log: o.Log}); err != nil {
		return c, err
	}
	fmt.Fprintf(o.Log, "kindcluster: node image %s ready in %s\n", c.Image.Ref, time.Since(start).Round(time.Second))
	if err = e.Network(ctx, Network, Bridge, Subnet, Gateway); err != nil {
		return c, err
	}
	// kind runs `docker` from PATH with this process's environment.
	for _, kv := range append(e.Env(), "KIND_EXPERIMENTAL_DOCKER_NETWORK="+Network) {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}
	cfg, err := CIConfig(o.ConfigFile)
	if err != nil {
		return c, err
	}
	c.Provider = cluster.NewProvider(cluster.ProviderWithDocker(), cluster.ProviderWithLogger(cmd.NewLogger()))
	start = time.Now()
	if err = c.Provider.Create(o.Name,
		cluster.CreateWithRawConfig(cfg),
		cluster.CreateWithNodeImage(c.Image.Ref),
		cluster.CreateWithKubeconfigPath(o.Kubeconfig),
		cluster.CreateWithWaitForReady(5*time.Minute),
		cluster.CreateWithDisplayUsage(false),
		cluster.CreateWithDisplaySalutation(false),
	); err != nil {
		return c, fmt.Errorf("kind create cluster: %w", err)
	}
	if err = c.waitNodesReady(ctx, 5*time.Minute); err != nil {
		return c, err
	}
	if err = c.startMetricsServer(ctx, 4*time.Minute); err != nil {
		return c, err
	}
	fmt.Fprintf(o.Log, "kindcluster: cluster %s up in %s\n", o.Name, time.Since(start).Round(time.Second))
	return c, nil
}

// Client returns a cluster-admin clientset.
func (c *Cluster) Client() (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// clientAndNodes returns a clientset and how many node containers kind made.
func (c *Cluster) clientAndNodes() (kubernetes.Interface, int, error) {
	cl, err := c.Client()
	if err != nil {
		return nil, 0, err
	}
	nodes, err := c.Provider.ListNodes(c.Name)
	return cl, len(nodes), err
}

// waitNodesReady waits for every node to be Ready (kind waits only for the
// control plane).
func (c *Cluster) waitNodesReady(ctx context.Context, timeout time.Duration) error {
	cl, want, err := c.clientAndNodes()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		nodes, err := cl.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err == nil {
			ready := 0
			var states []string
			for _, n := range nodes.Items {
				r := "NotReady"
				for _, cond := range n.Status.Conditions {
					if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
						r = "Ready"
						ready++
					}
				}
				states = append(states, n.Name+"="+r)
			}
			last = strings.Join(states, " ")
			if ready == want && len(nodes.Items) == want {
				return nil
			}
		} else {
			last = err.Error()
		}
		time.Sleep(2 * time.Second)
	}
	return fmt.Errorf("nodes not Ready after %s: %s", timeout, last)
}

// startMetricsServer applies the metrics-server manifests the node image
// holds and waits until the resource metrics API reports every node (the
// HPA and kubectl top read it).
func (c *Cluster) startMetricsServer(ctx context.Context, timeout time.Duration) error {
	start := time.Now()
	node := c.Name + "-control-plane"
	if _, err := c.Engine.Docker(ctx, "exec", node, "kubectl", "--kubeconfig=/etc/kubernetes/admin.conf",
		"apply", "-f", kindnode.MetricsServerManifest); err != nil {
		return fmt.Errorf("metrics-server: %w", err)
	}
	cl, want, err := c.clientAndNodes()
	if err != nil {
		return err
	}
	var last string
	for time.Since(start) < timeout {
		n, err := c.nodeMetrics(ctx, cl)
		if err == nil && n == want {
			fmt.Fprintf(c.log, "kindcluster: metrics-server reports %d nodes after %s\n", n, time.Since(start).Round(time.Second))
			return nil
		}
		last = fmt.Sprintf("%d nodes, %v", n, err)
		time.Sleep(3 * time.Second)
	}
	return fmt.Errorf("metrics-server: no metrics for every node after %s: %s", timeout, last)
}

// nodeMetrics returns how many nodes the resource metrics API reports.
func (c *Cluster) nodeMetrics(ctx context.Context, cl kubernetes.Interface) (int, error) {
	raw, err := cl.CoreV1().RESTClient().Get().AbsPath("/apis/metrics.k8s.io/v1beta1/nodes").DoRaw(ctx)
	if err != nil {
		return 0, err
	}
	var list struct {
		Items []struct {
			Metadata struct{ Name string } `json:"metadata"`
		} `json:"items"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return 0, err
	}
	return len(list.Items), nil
}

// Down deletes the cluster and stops the engine, leaving the host clean.
func (c *Cluster) Down() error {
	if c.Provider != nil {
		if err := c.Provider.Delete(c.Name, c.Kubeconfig); err != nil {
			fmt.Fprintf(c.log, "kindcluster: kind delete: %v\n", err)
		}
	}
	return c.Engine.Stop()
}
