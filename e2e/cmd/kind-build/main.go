// Command kind-build builds the files the kind node image is made of
// (kubeadm, kube-router, CoreDNS, the root filesystem, the cluster images)
// into the cache, without a Docker engine, so that CI can warm the cache
// before the suite runs; `make kind-build` runs it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/nova-auth/nova-auth/e2e/kindnode"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	if err := kindnode.Prepare(ctx, kindnode.Options{Log: os.Stderr}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "kind-build: node image files ready in %s\n", time.Since(start).Round(time.Second))
}
