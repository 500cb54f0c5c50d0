# Make fragment of the e2e suite (e2e/suite) and the image it deploys; the
# root Makefile includes it. Paths are relative to the repository root.

##@ E2E

# The image tarball `make image` writes and the suite loads into the node.
E2E_IMAGE   ?= $(CURDIR)/dist/auth-service.tar
# Artifacts of a run: load-test reports, helm/kubectl output, component logs.
E2E_OUT     ?= $(CURDIR)/e2e/out
E2E_TIMEOUT ?= 45m
# kind: a cold run builds the node image's parts first (~20 min here).
E2E_KIND_TIMEOUT ?= 75m
# Extra go test flags, e.g. E2E_FLAGS='-run TestE2E/rpcs'.
E2E_FLAGS   ?=
E2E_VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: image e2e e2e-kind test-image kind-deps test-kind-engine test-kind-node test-kind-cluster kind-build

image: ## Build the service image without Docker: dist/auth-service.tar, ghcr.io/nova-auth/auth-service:<appVersion>, UID 65532
	cd e2e && go run ./cmd/image --root .. --out $(E2E_IMAGE) --version $(E2E_VERSION)

test-image: image ## Read the image back (user, entrypoint, one layer, labels) and run the binary from it
	cd e2e && E2E_IMAGE=$(E2E_IMAGE) go test -count=1 ./authimage

e2e: image helm cluster-deps ## E2E on the local cluster (root): install the chart, RPCs, load test, rolling upgrade, PDB, rollback, uninstall
	cd e2e && E2E_IMAGE=$(E2E_IMAGE) E2E_HELM=$(CURDIR)/bin/helm E2E_OUT=$(E2E_OUT) \
		go test -count=1 -timeout $(E2E_TIMEOUT) -v ./authimage ./suite $(E2E_FLAGS)

e2e-kind: image helm ## The same suite on kind (kind-config.yaml: 3 nodes) plus NetworkPolicy refusals, HPA scaling, node loss; without a Docker engine, its own engine and node image built here (root, make kind-deps)
	cd e2e && E2E_PROVIDER=kind E2E_IMAGE=$(E2E_IMAGE) E2E_HELM=$(CURDIR)/bin/helm E2E_OUT=$(E2E_OUT) \
		go test -count=1 -timeout $(E2E_KIND_TIMEOUT) -v ./suite $(E2E_FLAGS)

kind-deps: ## Install what the kind provider needs here beyond the local cluster's packages: Debian's docker.io and mmdebstrap (root)
	bash e2e/kind-deps.sh

test-kind-engine: kind-deps ## Test the private Docker engine (root): privileged containers, exec, embedded DNS, stop and killed-run cleanup leave the host as found
	cd e2e && go test -count=1 -timeout 10m -v ./dockerd/...

kind-build: kind-deps ## Build the kind node image's files into the cache without a Docker engine: kubeadm, kube-router, CoreDNS, root filesystem, cluster images (root; ~7 min cold)
	cd e2e && go run ./cmd/kind-build

test-kind-node: kind-deps ## Build the kind node image here (cached; cold ~10 min) and boot one node: systemd running, containerd active, images preloaded, host left as found (root)
	cd e2e && go test -count=1 -timeout 40m -v ./kindnode/

test-kind-cluster: kind-deps ## Create kind-config.yaml's cluster (1 control plane, 2 workers, kube-router) on the private engine: nodes Ready, CNI and CoreDNS up, host left as found (root)
	cd e2e && go test -count=1 -timeout 40m -v ./kindcluster/
