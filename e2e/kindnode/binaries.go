package kindnode

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/nova-auth/nova-auth/e2e/localcluster"
	"github.com/nova-auth/nova-auth/e2e/ociimage"
)

// kubeRouter is the CNI and NetworkPolicy engine: bridge CNI with routes
// between the nodes over iBGP, and policy with iptables and ipsets. It is the
// engine this kernel supports: kindnet's and kube-network-policies' nftables
// queue expression needs CONFIG_NFT_QUEUE, which it lacks. Built with
// `go install …@version`, i.e. with its own go.mod's dependency graph.
const kubeRouter = "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@v2.1.0"

// metricsServer serves the resource metrics API (kubectl top, the HPA);
// its module has no replace lines, so `go install …@version` builds it with
// upstream's own dependency graph. Its manifests come from the same module.
const (
	metricsServerModule = "sigs.k8s.io/metrics-server@v0.8.0"
	metricsServer       = "sigs.k8s.io/metrics-server/cmd/metrics-server@v0.8.0"
)

// buildBinaries builds kubeadm (from the kubeadm module, pinned like the
// local cluster's components), kube-router, metrics-server, CoreDNS with
// kubeadm's plugins and the pause program.
func (b *build) buildBinaries(ctx context.Context) error {
	modDir := filepath.Join(b.src, "kubeadm")
	ldflags := localcluster.VersionLDFlags()
	key, err := localcluster.CacheKey(b.src, []string{"kubeadm/go.mod", "kubeadm/go.sum", "coredns/go.mod", "coredns/go.sum", "coredns/main.go",
		"../localcluster/internal/pause/main.go"},
		ldflags, kubeRouter, metricsServer)
	if err != nil {
		return err
	}
	b.bins = filepath.Join(b.o.CacheDir, "kind-bin-"+key)
	return localcluster.Cached(b.o.CacheDir, b.bins, func(tmp string) error {
		fmt.Fprintf(b.o.Log, "kindnode: building kubeadm, kube-router and pause into %s\n", b.bins)
		env := append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=readonly -buildvcs=false")
		if err := runIn(ctx, modDir, env, "go", "build", "-trimpath", "-ldflags", ldflags, "-o", filepath.Join(tmp, "kubeadm"), "k8s.io/kubernetes/cmd/kubeadm"); err != nil {
			return err
		}
		for _, pkg := range []string{kubeRouter, metricsServer} {
			if err := runIn(ctx, tmp, append(env, "GOBIN="+tmp), "go", "install", "-trimpath", "-ldflags=-s -w", pkg); err != nil {
				return err
			}
		}
		if err := runIn(ctx, filepath.Join(b.src, "coredns"), env, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(tmp, "coredns"), "."); err != nil {
			return err
		}
		return ociimage.GoBuild(ctx, filepath.Join(b.src, "..", "localcluster", "internal", "pause"), ".", filepath.Join(tmp, "pause"))
	})
}

// crictl is what kind's log collection runs in every node (images, containers);
// kind's own base image ships it. Its module has no replace lines.
const crictl = "sigs.k8s.io/cri-tools/cmd/crictl@v1.37.0"

// buildCrictl builds crictl into a cache folder of its own, so that adding it
// did not change the key of the other binaries (minutes to rebuild).
func (b *build) buildCrictl(ctx context.Context) error {
	key, err := localcluster.CacheKey(b.src, nil, crictl)
	if err != nil {
		return err
	}
	b.crictl = filepath.Join(b.o.CacheDir, "kind-crictl-"+key)
	return localcluster.Cached(b.o.CacheDir, b.crictl, func(tmp string) error {
		fmt.Fprintf(b.o.Log, "kindnode: building crictl into %s\n", b.crictl)
		env := append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOBIN="+tmp, "GOFLAGS=-mod=readonly -buildvcs=false")
		return runIn(ctx, tmp, env, "go", "install", "-trimpath", "-ldflags=-s -w", crictl)
	})
}

func runIn(ctx context.Context, dir string, env []string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}
