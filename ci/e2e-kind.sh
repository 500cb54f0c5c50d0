#!/usr/bin/env bash
# ci/e2e-kind.sh: the e2e suite on kind alone (make e2e-kind, which make test
# also runs, after the local provider's e2e). kind itself is the Go
# library pinned in e2e/go.mod, so no kind binary is installed. Where a Docker
# engine runs (GitHub's runners), the kind provider uses it, pulls kind's node
# image and deploys PostgreSQL in the cluster; where none runs (this
# project's CI), it starts its own engine with a node image built here
# (e2e/kindcluster), which needs Debian's docker.io and mmdebstrap, as root.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! docker info --format 'Docker {{.ServerVersion}}' 2>/dev/null; then
	echo "ci/e2e-kind.sh: no Docker engine runs; the suite starts its own"
	bash e2e/kind-deps.sh
fi
make e2e-kind
