#!/usr/bin/env bash
# ci-deps.sh installs the Debian packages the local cluster (e2e/localcluster)
# needs: a container runtime, CNI plugins and the netfilter tools kube-proxy and
# the cleanup use, and the packages given as arguments (kind-deps.sh). Idempotent:
# it only calls apt-get when something is missing.
set -euo pipefail

pkgs=(containerd runc containernetworking-plugins iptables nftables conntrack iproute2 kmod mount util-linux procps "$@")
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
# The maintainer scripts of containerd and docker.io start their daemons
# through invoke-rc.d where an init system runs; a policy-rc.d that exits 101
# forbids that, so no system daemon is left running (the tests run private
# ones, and check that the host is left as they found it). Ours only if the
# machine has none.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 0755 "$policy"
	trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq
# --no-install-recommends: the recommends (apparmor, git, xz …) are not used.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
