# Make fragment of the local cluster (e2e/localcluster); the root Makefile
# includes it. Paths are relative to this file, wherever make runs from.
LOCALCLUSTER_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))

##@ Local cluster

.PHONY: cluster-deps cluster-build cluster-up cluster-down cluster-status test-cluster

cluster-deps: ## Install the Debian packages the local cluster needs (containerd, runc, CNI plugins, iptables; root)
	bash $(LOCALCLUSTER_DIR)/ci-deps.sh

cluster-build: ## Build etcd, Kubernetes and kubectl from pinned modules into the cache (~5 min cold, instant warm)
	cd $(LOCALCLUSTER_DIR) && go run ./cmd/cluster build

cluster-up: cluster-deps ## Start a real single-node Kubernetes without Docker (root) and print its kubeconfig
	cd $(LOCALCLUSTER_DIR) && go run ./cmd/cluster up

cluster-status: ## Say whether the local cluster runs, and how to use it
	cd $(LOCALCLUSTER_DIR) && go run ./cmd/cluster status

cluster-down: ## Stop the local cluster and leave the host clean (also after a killed run)
	cd $(LOCALCLUSTER_DIR) && go run ./cmd/cluster down

test-cluster: cluster-deps ## Test the local cluster: up, restricted pods, logs/exec/port-forward/Service, down, host clean
	cd $(LOCALCLUSTER_DIR) && go test ./localcluster/ -run TestLocalCluster -count=1 -timeout 30m -v
