package localcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nova-auth/nova-auth/e2e/ociimage"
)

// RESTConfig is a cluster-admin client configuration for the cluster.
func (c *Cluster) RESTConfig() (*rest.Config, error) {
	return clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
}

// Clientset is a cluster-admin clientset for the cluster.
func (c *Cluster) Clientset() (*kubernetes.Clientset, error) {
	cfg, err := c.RESTConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// Kubectl runs the built kubectl against the cluster and returns its
// combined output.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, c.bin("kubectl"), append([]string{"--kubeconfig=" + c.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return out, nil
}

// LoadImage imports an image tarball (docker-archive or OCI layout tar, as
// `kind load image-archive` takes) into the node's containerd, in the k8s.io
// namespace the kubelet uses. Pods then run it with imagePullPolicy
// IfNotPresent or Never; nothing is ever pulled.
func (c *Cluster) LoadImage(ctx context.Context, tarballPath string) error {
	abs, err := filepath.Abs(tarballPath)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "ctr", "--address", c.containerdSocket(), "--namespace", "k8s.io",
		"images", "import", "--no-unpack=false", abs)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ctr images import %s: %w: %s", tarballPath, err, out)
	}
	return nil
}

// loadPause is the start of the step that packs the pause program into the
// sandbox image and loads it into containerd, before kubelet needs it.
func (c *Cluster) loadPause(pauseBin string) func(context.Context) error {
	return func(ctx context.Context) error {
		data, err := os.ReadFile(pauseBin)
		if err != nil {
			return err
		}
		img, err := ociimage.Build(ociimage.Config{Entrypoint: []string{"/pause"}, User: "65535:65535"},
			ociimage.File{Path: "/pause", Mode: 0o755, Data: data})
		if err != nil {
			return err
		}
		file := c.path("pause.tar")
		if err := ociimage.WriteTarball(file, pauseImage, img); err != nil {
			return err
		}
		return c.LoadImage(ctx, file)
	}
}

// containerdReady waits until containerd answers on its socket.
func (c *Cluster) containerdReady(ctx context.Context) error {
	return c.poll(ctx, 200*time.Millisecond, func(ctx context.Context) error {
		// Without the socket ctr would wait for it to appear.
		if _, err := os.Stat(c.containerdSocket()); err != nil {
			return err
		}
		if out, err := exec.CommandContext(ctx, "ctr", "--address", c.containerdSocket(), "version").CombinedOutput(); err != nil {
			return fmt.Errorf("ctr version: %w: %s", err, out)
		}
		return nil
	})
}

// waitNodeReady waits for the node to be Ready and the default namespace's
// ServiceAccount to exist (pods are refused until it does).
func (c *Cluster) waitNodeReady(ctx context.Context) error {
	cs, err := c.Clientset()
	if err != nil {
		return err
	}
	return c.poll(ctx, 250*time.Millisecond, func(ctx context.Context) error {
		n, err := cs.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("node %s not registered", NodeName)
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type != corev1.NodeReady {
				continue
			}
			if cond.Status != corev1.ConditionTrue {
				return fmt.Errorf("node %s Ready=%s: %s", NodeName, cond.Status, cond.Message)
			}
			if _, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err != nil {
				return errors.New("no default ServiceAccount yet")
			}
			return nil
		}
		return fmt.Errorf("node %s not Ready", NodeName)
	})
}

// removeAllPods stops and removes every pod sandbox through the CRI, so that
// containerd runs the CNI DEL of each (veth, addresses, portmap rules).
func removeAllPods(ctx context.Context, socket string) error {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	resp, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range resp.Items {
		if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: s.Id}); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: s.Id}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
