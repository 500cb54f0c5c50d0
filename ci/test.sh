#!/usr/bin/env bash
# ci/test.sh: what the workflow's test job runs, as root: install the
# PostgreSQL server binaries and the local cluster's runtime when missing,
# then `make test`. (.ci/run does the same on this project's own CI.)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
	echo "ci/test.sh: run as root (the local Kubernetes cluster needs it)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
	# Tests start their own throwaway clusters: no shared one.
	mkdir -p /etc/postgresql-common
	echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends postgresql
fi
bash e2e/ci-deps.sh
go version
make test
