//go:build tools

// Package kubeadm lists the upstream command the kind node image ships, so
// that `go mod tidy` keeps it in go.mod and go.sum.
package kubeadm

import (
	_ "k8s.io/kubernetes/cmd/kubeadm"
)
