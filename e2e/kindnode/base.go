package kindnode

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/nova-auth/nova-auth/e2e/localcluster"
)

// kindFilesDir is images/base/files of the kind module the e2e module pins.
func kindFilesDir(ctx context.Context, src string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/kind")
	cmd.Dir = src
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go list -m sigs.k8s.io/kind: %w", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "images", "base", "files"), nil
}

// edits are the changes to kind's base files this machine needs, each an
// exact text that must be found (so that a kind upgrade that moves it fails
// the build instead of silently dropping the change).
var edits = []struct{ file, old, new, why string }{
	{
		file: "etc/containerd/config.toml",
		old: `[proxy_plugins]
# fuse-overlayfs is used for rootless
[proxy_plugins."fuse-overlayfs"]
  type = "snapshot"
  address = "/run/containerd-fuse-overlayfs.sock"
`,
		new: "",
		why: "no fuse-overlayfs in the node (rootless only)",
	},
	{
		file: "etc/containerd/config.toml",
		old:  `  sandbox_image = "registry.k8s.io/pause:3.10"`,
		new:  `  sandbox_image = "` + PauseImage + `"`,
		why:  "the pause image built here",
	},
	{
		file: "etc/containerd/config.toml",
		old:  "  tolerate_missing_hugepages_controller = true\n",
		new:  "",
		why:  "containerd 1.6 (Debian's) knows it as tolerate_missing_hugetlb_controller, true by default",
	},
	{
		file: "usr/local/bin/entrypoint",
		old: `  grep -v 'misc' /proc/cgroups >/kind/fake-cgroups
  mount --bind /kind/fake-cgroups /proc/cgroups`,
		// Controllers the host mounts nowhere (hierarchy 0: net_cls,
		// net_prio, perf_event, hugetlb here) would be mounted by the node's
		// systemd at their host-wide root: cgroups made there outlive the
		// node and are shared by all nodes. Hide them as kind hides misc.
		new: `  awk 'NR == 1 || ($1 != "misc" && $2 != 0)' /proc/cgroups >/kind/fake-cgroups
  mount --bind /kind/fake-cgroups /proc/cgroups`,
		why: "hide cgroup v1 controllers the host has not mounted",
	},
	{
		file: "usr/local/bin/entrypoint",
		old: `  local misc_controller='/sys/fs/cgroup/misc'
  if [[ ! -d $misc_controller ]]; then
    return 0
  fi
  log_info "removing misc controller"
  umount $misc_controller || log_warn "failed umount $misc_controller"
  rmdir $misc_controller || log_warn "failed rmdir $misc_controller"`,
		new: `  local misc_controller='/sys/fs/cgroup/misc'
  if [[ -d $misc_controller ]]; then
    log_info "removing misc controller"
    umount $misc_controller || log_warn "failed umount $misc_controller"
    rmdir $misc_controller || log_warn "failed rmdir $misc_controller"
  fi`,
		why: "hide the unmounted controllers even where there is no misc controller",
	},
}

// dockerfile is kind's base image Dockerfile's steps after the files are in
// place (images/base/Dockerfile), on the root filesystem built here.
const dockerfile = `FROM %s
COPY files/ /
RUN systemctl enable kubelet.service containerd.service undo-mount-hacks.service \
 && systemctl mask systemd-binfmt.service
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]
`

// buildBase imports the root filesystem and adds kind's files, the
// Kubernetes binaries and the manifests kind applies, as the image
// nova-auth/kind-base:<key>.
func (b *build) buildBase(ctx context.Context) error {
	rootfsRef := b.rootfsRef()
	if _, err := b.docker(ctx, nil, "image", "inspect", rootfsRef); err != nil {
		f, err := os.Open(b.rootfs)
		if err != nil {
			return err
		}
		_, err = b.docker(ctx, f, "import", "-", rootfsRef)
		f.Close()
		if err != nil {
			return err
		}
	}
	ctxDir, err := os.MkdirTemp("", "kindnode-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(ctxDir)
	files := filepath.Join(ctxDir, "files")
	if err := b.stageFiles(ctx, files); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(fmt.Sprintf(dockerfile, rootfsRef)), 0o644); err != nil {
		return err
	}
	b.base = "nova-auth/kind-base:" + b.key
	_, err = b.docker(ctx, nil, "build", "--network", "none", "--tag", b.base, ctxDir)
	return err
}

// stageFiles writes the files the base image adds, with the modes kind's
// Dockerfile gives them (0755 for programs, 0644 for the rest).
func (b *build) stageFiles(ctx context.Context, dst string) error {
	kind, err := kindFilesDir(ctx, b.src)
	if err != nil {
		return err
	}
	content := map[string][]byte{}
	err = filepath.WalkDir(kind, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(kind, p)
		content[rel], err = os.ReadFile(p)
		return err
	})
	if err != nil {
		return err
	}
	for _, e := range edits {
		s := string(content[e.file])
		if !strings.Contains(s, e.old) {
			return fmt.Errorf("kind's %s changed: cannot apply %q", e.file, e.why)
		}
		content[e.file] = []byte(strings.Replace(s, e.old, e.new, 1))
	}
	for name, bin := range map[string]string{"kubeadm": b.bins, "kubelet": b.comps, "kubectl": b.comps} {
		data, err := os.ReadFile(filepath.Join(bin, name))
		if err != nil {
			return err
		}
		content["usr/bin/"+name] = data
	}
	if content["usr/local/bin/crictl"], err = os.ReadFile(filepath.Join(b.crictl, "crictl")); err != nil {
		return err
	}
	content["kind/version"] = []byte(localcluster.KubernetesVersion + "\n")
	content["kind/manifests/default-cni.yaml"] = []byte(cniManifest)
	content["kind/manifests/default-storage.yaml"] = []byte(storageManifest)
	if content[MetricsServerManifest[1:]], err = b.metricsServerManifest(ctx); err != nil {
		return err
	}
	for rel, data := range content {
		mode := os.FileMode(0o644)
		if strings.HasPrefix(rel, "usr/") || strings.HasPrefix(rel, "kind/bin/") {
			mode = 0o755
		}
		p := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, mode); err != nil {
			return err
		}
	}
	return nil
}

// preload starts the base image's containerd in a build container, imports
// every cluster image into it (namespace k8s.io, as kind's builder does) and
// commits the container as the node image.
func (b *build) preload(ctx context.Context) error {
	name := "nova-kind-build-" + b.key
	b.docker(ctx, nil, "rm", "--force", "--volumes", name) //nolint:errcheck // a killed build's
	if _, err := b.docker(ctx, nil, "run", "--detach", "--name", name, "--network", "none", "--privileged",
		"--entrypoint", "sleep", b.base, "infinity"); err != nil {
		return err
	}
	defer b.docker(context.Background(), nil, "rm", "--force", "--volumes", name) //nolint:errcheck
	if _, err := b.docker(ctx, nil, "exec", "--detach", name, "containerd"); err != nil {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := b.docker(ctx, nil, "exec", name, "ctr", "version")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("containerd in the build container: %w", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	f, err := os.Open(b.images)
	if err != nil {
		return err
	}
	defer f.Close()
	// ctr 1.6's import has no --label (kind pins its images with one); image
	// GC never runs at kind's 100 % threshold, so nothing needs pinning.
	if _, err := b.docker(ctx, f, "exec", "--interactive", name, "ctr", "--namespace=k8s.io", "images", "import",
		"--all-platforms", "--no-unpack", "--digests", "-"); err != nil {
		return err
	}
	if _, err := b.docker(ctx, nil, "exec", name, "sh", "-c", "pkill containerd; while pgrep containerd >/dev/null; do sleep 0.2; done"); err != nil {
		return err
	}
	if _, err := b.docker(ctx, nil, "commit",
		"--change", `ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]`, "--change", `CMD []`,
		"--change", `ENV HTTP_PROXY="" HTTPS_PROXY="" NO_PROXY=""`, name, b.ref()); err != nil {
		return err
	}
	// The base tag is only a step of this build.
	if _, err := b.docker(ctx, nil, "rm", "--force", "--volumes", name); err != nil {
		return err
	}
	if _, err := b.docker(ctx, nil, "rmi", b.base); err != nil {
		return err
	}
	return b.pruneOld(ctx)
}

// pruneOld removes the node images and root filesystems of other keys, so
// that the engine's data root in the cache does not grow with every change.
func (b *build) pruneOld(ctx context.Context) error {
	keep := map[string]bool{b.ref(): true, b.rootfsRef(): true}
	for _, repo := range []string{"nova-auth/kind-node", "nova-auth/kind-rootfs"} {
		out, err := b.docker(ctx, nil, "images", "--format", "{{.Repository}}:{{.Tag}}", repo)
		if err != nil {
			return err
		}
		for _, ref := range strings.Fields(out) {
			if !keep[ref] {
				if _, err := b.docker(ctx, nil, "rmi", ref); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (b *build) rootfsRef() string {
	return "nova-auth/kind-rootfs:" + strings.TrimPrefix(filepath.Base(filepath.Dir(b.rootfs)), "kind-rootfs-")
}

// MetricsServerManifest is where the node image holds metrics-server's
// manifests (kindcluster applies them after the cluster is created).
const MetricsServerManifest = "/kind/manifests/metrics-server.yaml"

// metricsServerEdits adapt upstream's manifests (manifests/base of the
// module) to kind here: the image built here, and the kubelets' self-signed
// serving certificates accepted, at their InternalIP (the node's address on
// the Docker network), as upstream's own kind tests do.
var metricsServerEdits = []struct{ old, new string }{
	{"image: gcr.io/k8s-staging-metrics-server/metrics-server:master", "image: " + MetricsServerImage},
	{"- --kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname", "- --kubelet-preferred-address-types=InternalIP\n        - --kubelet-insecure-tls"},
}

// metricsServerManifest renders upstream's kustomization with the kubectl
// built here, then applies metricsServerEdits.
func (b *build) metricsServerManifest(ctx context.Context) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", metricsServerModule)
	cmd.Dir = b.src
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go mod download %s: %w", metricsServerModule, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil {
		return nil, err
	}
	cmd = exec.CommandContext(ctx, filepath.Join(b.comps, "kubectl"), "kustomize", filepath.Join(mod.Dir, "manifests", "base"))
	out, err = cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("kubectl kustomize metrics-server: %w", err)
	}
	s := string(out)
	for _, e := range metricsServerEdits {
		if !strings.Contains(s, e.old) {
			return nil, fmt.Errorf("metrics-server's manifests changed: %q not found", e.old)
		}
		s = strings.Replace(s, e.old, e.new, 1)
	}
	return []byte(s), nil
}
