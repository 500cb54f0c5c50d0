// Command image builds the auth-service image tarball without Docker (make
// image): see package authimage.
//
//	go run ./cmd/image --root .. --out ../dist/auth-service.tar [--version v] [--bin path]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nova-auth/nova-auth/e2e/authimage"
)

func main() {
	var opts authimage.Options
	flag.StringVar(&opts.RepoRoot, "root", "..", "root of the nova-auth repository")
	flag.StringVar(&opts.Out, "out", "../dist/auth-service.tar", "image tarball to write")
	flag.StringVar(&opts.Binary, "bin", "", "static auth-service binary to use (default: compile one)")
	flag.StringVar(&opts.Tag, "tag", "", "image tag (default: the chart's appVersion)")
	flag.StringVar(&opts.Version, "version", "", "version the compiled binary reports (default: the tag)")
	flag.Parse()
	start := time.Now()
	ref, err := authimage.Build(context.Background(), opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
	out, _ := filepath.Abs(opts.Out)
	fmt.Printf("%s written to %s in %.1fs\n", ref, out, time.Since(start).Seconds())
	fmt.Printf("load it: kind load image-archive %s   (local cluster: Cluster.LoadImage)\n", out)
}
