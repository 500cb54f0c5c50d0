// Package kindnode builds kind's node image on a machine with no registry:
// the root filesystem from Debian packages (mmdebstrap), kind's own base
// files (from the pinned sigs.k8s.io/kind module), kubeadm, kubelet and
// kubectl built from the pinned k8s.io/kubernetes, and every image the
// cluster starts with (control plane, etcd, kube-proxy, pause, the CNI)
// built here and preloaded into the node's containerd, as kind's own
// `build node-image` does. Every artifact is cached by a hash of its inputs;
// the image itself lives in the engine's data root, tagged with that hash.
package kindnode

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/nova-auth/nova-auth/e2e/dockerd"
	"github.com/nova-auth/nova-auth/e2e/localcluster"
)

// Options configure Build.
type Options struct {
	// CacheDir holds the built artifacts; default localcluster.DefaultCacheDir().
	CacheDir string
	// Log receives progress lines.
	Log io.Writer
}

// Image is a built node image.
type Image struct {
	// Ref is the image's tag in the engine (nova-auth/kind-node:<key>).
	Ref string
	// Built says whether this call built it (false: it was there).
	Built bool
}

// build is one Build run's state, filled by its steps.
type build struct {
	e      *dockerd.Engine
	o      Options
	src    string // this package's folder
	comps  string // localcluster components folder
	bins   string // kubeadm, kube-router, pause
	crictl string // crictl
	rootfs string // root filesystem tarball
	images string // component images tarball
	key    string // the node image's key
	base   string // image with the kind layer, no preloaded images
}

// step is one named part of Build. Steps without the engine build files
// only (Prepare runs those).
type step struct {
	name   string
	engine bool
	run    func(b *build, ctx context.Context) error
}

// steps are Build's parts in order; each caches its output.
var steps = []step{
	{"components", false, (*build).buildComponents},
	{"binaries", false, (*build).buildBinaries},
	{"crictl", false, (*build).buildCrictl},
	{"root filesystem", false, (*build).buildRootfsStep},
	{"cluster images", false, (*build).buildImages},
	{"key", false, (*build).computeKey},
	{"base image", true, (*build).buildBase},
	{"preload", true, (*build).preload},
}

// Prepare builds every file the node image is made of (the long part of a
// cold build: compiling, mmdebstrap) without a Docker engine, so that the
// engine runs only for the image's assembly. Build calls it too.
func Prepare(ctx context.Context, o Options) error {
	_, err := run(ctx, nil, o)
	return err
}

// Build returns the node image, building what is missing into the engine.
func Build(ctx context.Context, e *dockerd.Engine, o Options) (Image, error) {
	return run(ctx, e, o)
}

func run(ctx context.Context, e *dockerd.Engine, o Options) (Image, error) {
	if o.CacheDir == "" {
		o.CacheDir = localcluster.DefaultCacheDir()
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		return Image{}, fmt.Errorf("kindnode: cannot find its source folder (built with -trimpath?)")
	}
	b := &build{e: e, o: o, src: filepath.Dir(file)}
	start := time.Now()
	for _, s := range steps {
		if s.engine {
			if e == nil {
				return Image{}, nil
			}
			if _, err := e.Docker(ctx, "image", "inspect", b.ref()); err == nil {
				return Image{Ref: b.ref()}, nil
			}
		}
		t := time.Now()
		if err := s.run(b, ctx); err != nil {
			return Image{}, fmt.Errorf("kindnode: %s: %w", s.name, err)
		}
		fmt.Fprintf(o.Log, "kindnode: %s done in %s\n", s.name, time.Since(t).Round(100*time.Millisecond))
	}
	fmt.Fprintf(o.Log, "kindnode: node image %s built in %s\n", b.ref(), time.Since(start).Round(time.Second))
	return Image{Ref: b.ref(), Built: true}, nil
}

func (b *build) ref() string { return "nova-auth/kind-node:" + b.key }

func (b *build) buildComponents(ctx context.Context) error {
	dir, err := localcluster.BuildComponents(ctx, b.o.CacheDir, b.o.Log)
	b.comps = dir
	return err
}

func (b *build) buildRootfsStep(ctx context.Context) error {
	key := hashOf(rootfsKey()...)
	b.rootfs = filepath.Join(b.o.CacheDir, "kind-rootfs-"+key, "rootfs.tar")
	return localcluster.Cached(b.o.CacheDir, filepath.Dir(b.rootfs), func(tmp string) error {
		return buildRootfs(ctx, filepath.Join(tmp, "rootfs.tar"), b.o.Log)
	})
}

// computeKey hashes every input of the node image: the artifacts' own keys
// (their folder names), the kind module's base files and this package's
// sources.
func (b *build) computeKey(ctx context.Context) error {
	h := sha256.New()
	for _, p := range []string{b.comps, b.bins, b.crictl, b.rootfs, b.images} {
		fmt.Fprintln(h, filepath.Base(filepath.Dir(p)), filepath.Base(p))
	}
	for _, dir := range []string{b.bins, b.crictl, filepath.Dir(b.rootfs), filepath.Dir(b.images)} {
		pruneOld(dir)
	}
	kind, err := kindFilesDir(ctx, b.src)
	if err != nil {
		return err
	}
	for _, dir := range []string{kind, b.src} {
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.HasSuffix(p, "_test.go") {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			fmt.Fprintf(h, "%s %d\n", rel, len(data))
			h.Write(data)
			return nil
		})
		if err != nil {
			return err
		}
	}
	b.key = hex.EncodeToString(h.Sum(nil))[:16]
	return nil
}

// pruneOld removes the cache folders of other keys for the folder keep
// (kind-bin-<key>, kind-images-<key>, kind-rootfs-<key>): every change of an
// input would otherwise leave hundreds of megabytes behind.
func pruneOld(keep string) {
	prefix := strings.TrimRight(filepath.Base(keep), "0123456789abcdef")
	old, _ := filepath.Glob(filepath.Join(filepath.Dir(keep), prefix+"*"))
	for _, p := range old {
		if p != keep && !strings.HasSuffix(p, ".tmp") {
			os.RemoveAll(p)
		}
	}
}

func hashOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d %s\n", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// docker runs the engine's CLI, logging the command.
func (b *build) docker(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	out, err := b.e.DockerIn(ctx, stdin, args...)
	return string(bytes.TrimSpace(out)), err
}
