package kindnode

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/nova-auth/nova-auth/e2e/localcluster"
	"github.com/nova-auth/nova-auth/e2e/ociimage"
)

// Image names kubeadm asks for (kubeadm config images list) where the node
// runs what kubeadm starts, and localhost/nova-auth/* for the rest. etcd and
// CoreDNS are the local cluster's pins, so the kind config tells kubeadm
// their tags (CIConfig).
const (
	EtcdTag    = "3.6.4-0"
	CoreDNSTag = "v1.13.1"
	PauseImage = "localhost/nova-auth/pause:1"
	CNIImage   = "localhost/nova-auth/kube-router:v2.1.0"
	// MetricsServerImage is metrics-server built here.
	MetricsServerImage = "localhost/nova-auth/metrics-server:v0.8.0"
	imagePath          = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	registryBase       = "registry.k8s.io/"
)

// clusterImage is one preloaded image: a binary at path, from scratch or on
// the node's root filesystem (for the programs that run iptables, ipset, ip).
type clusterImage struct {
	ref        string
	bin        string // file in the components or binaries folder
	path       string
	entrypoint []string
	onRootfs   bool
}

func (b *build) clusterImages() []clusterImage {
	v := localcluster.KubernetesVersion
	return []clusterImage{
		{ref: registryBase + "kube-apiserver:" + v, bin: filepath.Join(b.comps, "kube-apiserver"), path: "/usr/local/bin/kube-apiserver"},
		{ref: registryBase + "kube-controller-manager:" + v, bin: filepath.Join(b.comps, "kube-controller-manager"), path: "/usr/local/bin/kube-controller-manager"},
		{ref: registryBase + "kube-scheduler:" + v, bin: filepath.Join(b.comps, "kube-scheduler"), path: "/usr/local/bin/kube-scheduler"},
		{ref: registryBase + "etcd:" + EtcdTag, bin: filepath.Join(b.comps, "etcd"), path: "/usr/local/bin/etcd"},
		{ref: registryBase + "kube-proxy:" + v, bin: filepath.Join(b.comps, "kube-proxy"), path: "/usr/local/bin/kube-proxy", onRootfs: true},
		{ref: registryBase + "coredns/coredns:" + CoreDNSTag, bin: filepath.Join(b.bins, "coredns"), path: "/coredns", entrypoint: []string{"/coredns"}},
		{ref: PauseImage, bin: filepath.Join(b.bins, "pause"), path: "/pause", entrypoint: []string{"/pause"}},
		{ref: MetricsServerImage, bin: filepath.Join(b.bins, "metrics-server"), path: "/metrics-server", entrypoint: []string{"/metrics-server"}},
		{ref: CNIImage, bin: filepath.Join(b.bins, "kube-router"), path: "/usr/local/bin/kube-router", entrypoint: []string{"/usr/local/bin/kube-router"}, onRootfs: true},
	}
}

// buildImages writes every cluster image into one image tarball (the root
// filesystem layer stored once), cached by the binaries' and root
// filesystem's keys.
func (b *build) buildImages(ctx context.Context) error {
	imgs := b.clusterImages()
	parts := []string{filepath.Base(b.comps), filepath.Base(b.bins), filepath.Base(filepath.Dir(b.rootfs)), "images v1"}
	for _, ci := range imgs {
		parts = append(parts, fmt.Sprint(ci))
	}
	b.images = filepath.Join(b.o.CacheDir, "kind-images-"+hashOf(parts...), "images.tar")
	return localcluster.Cached(b.o.CacheDir, filepath.Dir(b.images), func(tmp string) error {
		rootfs, err := tarball.LayerFromFile(b.rootfs, tarball.WithCompressedCaching)
		if err != nil {
			return err
		}
		refs := map[name.Reference]v1.Image{}
		for _, ci := range imgs {
			data, err := os.ReadFile(ci.bin)
			if err != nil {
				return err
			}
			img, err := ociimage.Build(ociimage.Config{Entrypoint: ci.entrypoint, Env: []string{imagePath}},
				ociimage.File{Path: ci.path, Mode: 0o755, Data: data})
			if err != nil {
				return err
			}
			if ci.onRootfs {
				if img, err = onRootfs(img, rootfs); err != nil {
					return err
				}
			}
			tag, err := name.NewTag(ci.ref)
			if err != nil {
				return err
			}
			refs[tag] = img
		}
		return tarball.MultiRefWriteToFile(filepath.Join(tmp, "images.tar"), refs)
	})
}

// onRootfs puts img's layers on top of the root filesystem layer, keeping
// img's entrypoint and environment.
func onRootfs(img v1.Image, rootfs v1.Layer) (v1.Image, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	base, err := mutate.AppendLayers(empty.Image, append([]v1.Layer{rootfs}, layers...)...)
	if err != nil {
		return nil, err
	}
	bcf, err := base.ConfigFile()
	if err != nil {
		return nil, err
	}
	bcf = bcf.DeepCopy()
	bcf.OS, bcf.Architecture = "linux", runtime.GOARCH
	bcf.Created = cf.Created
	bcf.Config = cf.Config
	return mutate.ConfigFile(base, bcf)
}
