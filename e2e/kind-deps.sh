#!/usr/bin/env bash
# kind-deps.sh installs what the kind provider needs on a host with no Docker
# engine, beyond the local cluster's packages: Debian's Docker engine (the
# suite starts a private dockerd of its own, e2e/dockerd) and mmdebstrap (the
# node image's root filesystem, e2e/kindnode). ci-deps.sh does the install,
# with the packages' init scripts kept from starting a daemon.
set -euo pipefail
exec bash "$(dirname "$0")/ci-deps.sh" docker.io mmdebstrap
