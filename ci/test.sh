#!/usr/bin/env bash
# ci/test.sh: the one CI script. It installs what a fresh Debian machine lacks
# (PostgreSQL server binaries, git, make, the local cluster's runtime), then
# runs the README's test command, `make test`, with CI=1 so that a missing
# prerequisite fails instead of skipping. The GitHub workflow
# (ci/github/workflows/ci.yaml) and this project's own CI (.ci/run) both call
# it. Runs as root on a clean clone: the local Kubernetes cluster needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
	echo "ci/test.sh: run as root (the local Kubernetes cluster needs it)" >&2
	exit 1
fi

apt_install() {
	export DEBIAN_FRONTEND=noninteractive
	if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
	apt-get install -y -qq --no-install-recommends "$@"
}

# PostgreSQL server binaries: tests start their own throwaway clusters, so
# keep Debian from creating and starting a shared one.
if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
	mkdir -p /etc/postgresql-common
	echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
	apt_install postgresql
fi
command -v git >/dev/null || apt_install git
command -v make >/dev/null || apt_install make

# The local Kubernetes cluster's runtime (containerd, runc, CNI plugins, iptables).
bash e2e/ci-deps.sh
# The kind provider (`make e2e-kind`, the last part of `make test`): where no
# Docker engine runs (this project's CI), the suite starts its own and builds
# kind's node image here, which needs Debian's docker.io and mmdebstrap. Where
# one runs (GitHub's runners), kind uses it, and installing docker.io beside
# it would conflict.
if ! docker info >/dev/null 2>&1; then
	bash e2e/kind-deps.sh
fi

export CI=1
go version
time make test
