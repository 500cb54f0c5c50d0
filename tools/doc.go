// Package tools holds no code: its go.mod pins, with `tool` directives, every
// generator and linter the Makefile and the tests build (buf and the protoc
// plugins, grpcurl, helm-docs, kube-score). It is a module of its own so that
// none of their dependencies reach the service's, the chart tests' or the
// client library's module graph. kube-score v1.20.0 needs the Kubernetes
// libraries it was released with (it imports k8s.io/api/autoscaling/v2beta1,
// gone from the k8s.io/api that Helm v3.22 needs), which is why it is built
// here rather than in chartstest. The one exception is helm itself: it is
// pinned (a tool directive too) in chartstest/go.mod, beside the Helm SDK the
// chart tests use, so that the CLI the e2e suite runs and the SDK the chart
// tests render with are one version.
package tools
