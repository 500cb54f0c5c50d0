package kindnode

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// packages are the Debian packages of the node's root filesystem: what kind's
// base image installs (images/base/Dockerfile) less fuse-overlayfs, NFS, iSCSI
// and curl, plus Debian's containerd, runc and CNI plugins (kind builds its
// own) and ipset (the CNI's NetworkPolicy engine, kube-router, runs from the
// same root filesystem).
var packages = []string{
	"systemd", "systemd-sysv", "dbus", "containerd", "runc", "containernetworking-plugins",
	"conntrack", "iptables", "nftables", "ipset", "iproute2", "ethtool", "util-linux", "mount", "kmod",
	"libseccomp2", "pigz", "bash", "ca-certificates", "jq", "procps",
}

// suites are the apt sources: the release the host runs, with its updates.
var suites = []string{
	"deb http://deb.debian.org/debian bookworm main",
	"deb http://deb.debian.org/debian bookworm-updates main",
	"deb http://deb.debian.org/debian-security bookworm-security main",
}

// customize is what kind's Dockerfile runs after installing the packages,
// as a mmdebstrap hook ("$1" is the root): only the units kind enables start,
// journald does not read the kernel log, /sbin/init is systemd. It also
// generates containerd's base OCI spec the way kind does (with the product
// files hook, without rlimits), with Debian's ctr, and links containerd where
// kind's unit runs it.
const customize = `set -eu
r="$1"
find "$r/lib/systemd/system/sysinit.target.wants/" -name systemd-tmpfiles-setup.service -delete
rm -f "$r"/lib/systemd/system/multi-user.target.wants/* "$r"/etc/systemd/system/*.wants/* \
  "$r"/lib/systemd/system/local-fs.target.wants/* "$r"/lib/systemd/system/sockets.target.wants/*udev* \
  "$r"/lib/systemd/system/sockets.target.wants/*initctl* "$r"/lib/systemd/system/basic.target.wants/*
echo ReadKMsg=no >>"$r/etc/systemd/journald.conf"
[ -e "$r/sbin/init" ] || ln -s /lib/systemd/systemd "$r/sbin/init"
ln -sf /usr/bin/containerd "$r/usr/local/bin/containerd"
mkdir -p "$r/opt/cni" "$r/etc/kubernetes/manifests"
ln -sfn /usr/lib/cni "$r/opt/cni/bin"
chroot "$r" sh -c 'ctr oci spec | jq ".hooks.createContainer |= (. // []) + [{\"path\": \"/kind/bin/mount-product-files.sh\"}]" | jq "del(.process.rlimits)" >/etc/containerd/cri-base.json'
rm -f "$r/etc/machine-id" "$r/var/lib/dbus/machine-id"
: >"$r/etc/machine-id"
`

// rootfsKey is what the root filesystem is built from.
func rootfsKey() []string {
	v, _ := exec.Command("dpkg-query", "-W", "-f=${Version}", "mmdebstrap").Output()
	return append(append(append([]string{"mmdebstrap " + string(v), customize}, packages...), suites...), "rootfs v1")
}

// buildRootfs writes the node's root filesystem as a tarball with
// mmdebstrap, in a mount namespace of its own: the /proc, /sys and /dev it
// mounts in the chroot never reach the host's mount table, even if killed.
func buildRootfs(ctx context.Context, out string, log io.Writer) error {
	start := time.Now()
	tmp := out + ".tmp"
	args := []string{"--mount", "--propagation", "private", "--",
		"mmdebstrap", "--mode=root", "--variant=minbase", "--format=tar",
		"--include=" + strings.Join(packages, ","),
		"--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-include=/usr/share/doc/*/copyright",
		"--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/locale/*",
		"--dpkgopt=path-exclude=/usr/share/info/*",
		"--customize-hook=" + customize,
		"bookworm", tmp}
	args = append(args, suites...)
	cmd := exec.CommandContext(ctx, "unshare", args...)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=0")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("mmdebstrap: %w", err)
	}
	fmt.Fprintf(log, "kindnode: root filesystem built in %s\n", time.Since(start).Round(time.Second))
	return os.Rename(tmp, out)
}
