// Package kubescore only pins kube-score. It is its own module because
// kube-score v1.20.0 imports k8s.io/api/autoscaling/v2beta1, which the
// k8s.io/api that Helm v3.22 needs no longer has; here it builds with the
// Kubernetes libraries it was released with. chartstest builds it with
// `go build -C kubescore -o … github.com/zegl/kube-score/cmd/kube-score`.
package kubescore
