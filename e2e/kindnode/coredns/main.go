// Command coredns is upstream CoreDNS with the plugins of the Corefile
// kubeadm writes (errors, health, ready, kubernetes, prometheus, forward,
// cache, loop, reload, loadbalance), for the kind node image. The local
// cluster's CoreDNS (localcluster/components/coredns) has fewer: it forwards
// nothing.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

func init() {
	// The order of plugin.cfg upstream, restricted to the plugins above
	// (the prometheus directive is the metrics plugin).
	dnsserver.Directives = []string{"reload", "bind", "ready", "health", "prometheus", "errors", "log",
		"loadbalance", "cache", "kubernetes", "loop", "forward"}
}

func main() {
	coremain.Run()
}
