package localcluster

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// ports are the components' listening ports on loopback (the API server's on
// the bridge gateway), picked afresh for each run.
type ports struct {
	etcd, etcdPeer, apiserver, controllerManager, scheduler int
	kubelet, kubeletHealthz, proxyHealthz, proxyMetrics     int
	dnsReady, dnsHealth                                     int
}

// freePorts picks the components' ports below the kernel's ephemeral range,
// so that no outgoing connection opened during the start takes one between
// the pick and the component's bind.
func freePorts() (ports, error) {
	var p ports
	used := map[int]bool{}
	lo := ephemeralLow()
	for _, port := range []*int{
		&p.etcd, &p.etcdPeer, &p.apiserver, &p.controllerManager, &p.scheduler,
		&p.kubelet, &p.kubeletHealthz, &p.proxyHealthz, &p.proxyMetrics,
		&p.dnsReady, &p.dnsHealth,
	} {
		if *port = freePortBelow(lo, used); *port == 0 {
			return p, errors.New("no free ports below the ephemeral range")
		}
	}
	return p, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range.
func ephemeralLow() int {
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 12000 {
				lo = n
			}
		}
	}
	return lo
}

// freePortBelow returns a port in the 10000 below lo that is free now and
// not in used (to which it adds it), or 0.
func freePortBelow(lo int, used map[int]bool) int {
	for try := 0; try < 1000; try++ {
		p := lo - 10000 + rand.IntN(10000)
		if used[p] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", p))
		if err != nil {
			continue
		}
		l.Close()
		used[p] = true
		return p
	}
	return 0
}

// gatewayIP is the first address of an IPv4 subnet: the host's side of the
// pod bridge for the pod subnet.
func gatewayIP(subnet string) (string, error) {
	ip, n, err := net.ParseCIDR(subnet)
	if err != nil || ip.To4() == nil {
		return "", fmt.Errorf("pod subnet %q: want an IPv4 CIDR", subnet)
	}
	gw := n.IP.To4()
	gw = net.IPv4(gw[0], gw[1], gw[2], gw[3]+1)
	return gw.String(), nil
}

// firstServiceIP is the ClusterIP of the kubernetes Service, which the API
// server's certificate must name.
func firstServiceIP(subnet string) string {
	gw, err := gatewayIP(subnet)
	if err != nil {
		return "10.96.0.1"
	}
	return gw
}
