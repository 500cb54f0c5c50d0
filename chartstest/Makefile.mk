# Make fragment for the Helm chart, included from the root Makefile (paths
# are relative to the repository root). The Go tests live in their own module,
# chartstest/, so Helm's and Kubernetes' libraries stay out of the service's.

##@ Chart

CHART := charts/auth

.PHONY: test-chart helm chart-docs chart-golden lint-chart

test-chart: ## Test the chart without a cluster: golden renders, helm lint --strict, Pod Security, kube-score, schema, ConfigMap keys, README
	cd chartstest && go test -count=1 ./...

# Helm's release builds set the Kubernetes version that `helm template` and
# `helm lint` assume (without --kube-version) to their client-go's; a plain
# go build leaves it at 1.20, below the chart's kubeVersion. Do as they do.
HELM_K8S_MINOR = $(shell cd chartstest && go list -m -f '{{.Version}}' k8s.io/client-go | cut -d. -f2)

helm: ## Build helm (the version pinned in chartstest/go.mod) into bin/helm
	cd chartstest && go build -ldflags "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$(HELM_K8S_MINOR)" -o ../bin/helm helm.sh/helm/v3/cmd/helm

chart-docs: ## Regenerate charts/auth/README.md from README.md.gotmpl and the values.yaml comments (helm-docs)
	cd chartstest && go test -count=1 -run 'TestReadmeUpToDate' . -update

chart-golden: ## Rewrite the chart's golden renders (chartstest/testdata) after a deliberate change; review the diff
	cd chartstest && go test -count=1 -run 'TestScenariosGolden' . -update

lint-chart: helm ## helm lint --strict on every ci/ scenario with bin/helm
	@for f in $(CHART)/ci/*-values.yaml; do \
		echo "helm lint --strict $(CHART) -f $$f"; \
		bin/helm lint --strict $(CHART) -f $$f || exit 1; \
	done
