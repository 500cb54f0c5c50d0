#!/usr/bin/env bash
# ci-deps.sh installs the Debian packages the local cluster (e2e/localcluster)
# needs: a container runtime, CNI plugins and the netfilter tools kube-proxy and
# the cleanup use. Idempotent: it only calls apt-get when something is missing.
set -euo pipefail

pkgs=(containerd runc containernetworking-plugins iptables nftables conntrack iproute2 kmod mount util-linux procps)
missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "ci-deps.sh: missing ${missing[*]}; run as root to install them" >&2
	exit 1
fi
echo "ci-deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# --no-install-recommends: containerd's recommends pull in nothing we use.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's containerd package starts a system containerd where an init system
# runs; the local cluster runs its own private containerd, so a system one is
# not needed (and there is no systemd on these machines).
