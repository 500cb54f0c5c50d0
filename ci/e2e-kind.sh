#!/usr/bin/env bash
# ci/e2e-kind.sh: the e2e suite on kind (make e2e-kind). Needs a running
# Docker engine; kind itself is the Go library pinned in e2e/go.mod, so no
# kind binary is installed. The kind provider loads dist/auth-service.tar
# into the nodes and deploys PostgreSQL in the cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
docker info --format 'Docker {{.ServerVersion}}' || {
	echo "ci/e2e-kind.sh: Docker is required" >&2
	exit 1
}
make e2e-kind
