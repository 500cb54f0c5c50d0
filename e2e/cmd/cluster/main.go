// Command cluster starts and stops the local single-node Kubernetes of
// e2e/localcluster for people (make cluster-up / make cluster-down):
//
//	cluster up      build or reuse the binaries, start the cluster, print how to use it
//	cluster down    stop it and leave the host clean (also cleans a killed run)
//	cluster status  say whether one is running
//	cluster build   only build the binaries into the cache
//	cluster host    print what a run may change on the host (to diff by hand)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/nova-auth/nova-auth/e2e/localcluster"
)

func main() {
	fs := flag.NewFlagSet("cluster", flag.ExitOnError)
	dir := fs.String("dir", "", "run folder (default $NOVA_AUTH_CLUSTER_DIR or /tmp/nova-auth-cluster)")
	cache := fs.String("cache", "", "binary cache folder (default $NOVA_AUTH_CACHE_DIR or ~/.cache/nova-auth)")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: cluster up|down|status|build|host [flags]")
		fs.PrintDefaults()
	}
	if len(os.Args) < 2 {
		fs.Usage()
		os.Exit(2)
	}
	cmd := os.Args[1]
	fs.Parse(os.Args[2:])
	opts := localcluster.Options{Dir: *dir, CacheDir: *cache, Log: os.Stderr}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cmd, opts); err != nil {
		fmt.Fprintln(os.Stderr, "cluster "+cmd+":", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cmd string, opts localcluster.Options) error {
	switch cmd {
	case "up":
		if c, err := localcluster.Attach(opts); err == nil {
			fmt.Println("A local cluster is already running.")
			usage(c)
			return nil
		}
		start := time.Now()
		c, err := localcluster.UpDetached(ctx, opts)
		if err != nil {
			return err
		}
		fmt.Printf("Local cluster up in %s.\n", time.Since(start).Round(100*time.Millisecond))
		usage(c)
		return nil
	case "down":
		c, err := localcluster.Attach(opts)
		if errors.Is(err, localcluster.ErrNotRunning) {
			// Nothing live: still clean what a killed run may have left.
			return localcluster.Clean(opts)
		}
		if err != nil {
			return err
		}
		if err := c.Down(context.Background()); err != nil {
			return err
		}
		fmt.Println("Local cluster stopped; host cleaned.")
		return nil
	case "status":
		c, err := localcluster.Attach(opts)
		if err != nil {
			return err
		}
		usage(c)
		return nil
	case "build":
		if opts.CacheDir == "" {
			opts.CacheDir = localcluster.DefaultCacheDir()
		}
		bin, err := localcluster.BuildComponents(ctx, opts.CacheDir, os.Stderr)
		if err != nil {
			return err
		}
		fmt.Println(bin)
		return nil
	case "host":
		st := localcluster.SnapshotHost(opts.Dir)
		for _, k := range slices.Sorted(maps.Keys(st)) {
			for _, v := range st[k] {
				fmt.Printf("%s: %s\n", k, v)
			}
		}
		return nil
	}
	return fmt.Errorf("unknown command %q (want up, down, status, build or host)", cmd)
}

func usage(c *localcluster.Cluster) {
	fmt.Printf(`
  API server:  %s
  Kubeconfig:  %s
  Pod bridge:  %s is this host's address for pods (e.g. a host PostgreSQL listens there)

Use it:
  export KUBECONFIG=%s
  export PATH=%s:$PATH    # kubectl %s, built with the cluster
  kubectl get nodes

Load an image (never pulled; use imagePullPolicy IfNotPresent and a tag other than latest):
  ctr --address %s/containerd/containerd.sock -n k8s.io images import IMAGE.tar

Stop it and clean the host:  make cluster-down
`, c.Server, c.Kubeconfig, c.GatewayIP, c.Kubeconfig, c.BinDir, localcluster.KubernetesVersion, c.Dir)
}
