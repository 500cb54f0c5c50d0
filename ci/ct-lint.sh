#!/usr/bin/env bash
# ci/ct-lint.sh: chart-testing lint of charts/ with ct.yaml (schema, yamllint,
# helm lint of every ci/*-values.yaml scenario). Needs ct and helm on PATH
# (the workflow installs them); `make lint-chart` is the helm-only part.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v ct >/dev/null; then
	echo "ci/ct-lint.sh: ct (chart-testing) not found; see https://github.com/helm/chart-testing" >&2
	exit 1
fi
ct lint --config ct.yaml --all
