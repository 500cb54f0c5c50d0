package localcluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"time"
)

// step is one part of the bring-up; the steps run in a list, as kind's
// create runs its actions. Starting a step writes its files into the run
// folder, then runs cmd as a component (a process named after the step,
// logging to logs/<name>.log) or calls do. wait, when set, returns once the
// step's work serves. The name is the one the progress lines and errors use.
type step struct {
	name string
	// needs are earlier steps that must be ready before this one starts.
	// Other waits are left to the end, so that the components start up side
	// by side.
	needs []string
	files files
	cmd   []string
	do    func(ctx context.Context) error
	wait  func(ctx context.Context) error
}

// files maps paths in the run folder to their content.
type files map[string]string

// steps is the bring-up, in order. Adding a component is one line here, its
// command line and files beside the others in config.go and its port in
// ports.
func (c *Cluster) steps(pauseBin string) []step {
	dnsReady := fmt.Sprintf("http://127.0.0.1:%d/ready", c.ports.dnsReady)
	return []step{
		// The bridge exists before kubelet so that its address can be the
		// node IP and the API server can listen on it for pods.
		{name: "bridge", do: c.addBridge},
		{name: "pki", do: func(context.Context) error { return c.writePKI() }},
		{name: "etcd", cmd: c.etcdCmd(), wait: c.httpReady(c.etcdURL()+"/health", false)},
		{name: "containerd", files: files{"containerd/config.toml": c.containerdConfig(), "cni/net.d/10-nova-auth.conflist": c.cniConfig()},
			cmd: c.containerdCmd(), wait: c.containerdReady},
		{name: "kube-apiserver", needs: []string{"etcd"}, cmd: c.apiserverCmd(), wait: c.httpReady(c.Server+"/readyz", true)},
		{name: "pause-image", needs: []string{"containerd"}, do: c.loadPause(pauseBin)},
		// CoreDNS's own role (as kubeadm's system:coredns), not the
		// aggregated "view", whose rules only appear once the
		// controller-manager has run: CoreDNS refused at its first list backs
		// off for long.
		{name: "coredns-rbac", needs: []string{"kube-apiserver"}, files: files{"coredns-rbac.yaml": corednsRBAC}, do: c.applyCoreDNSRBAC},
		{name: "kube-controller-manager", needs: []string{"kube-apiserver"}, cmd: c.controllerManagerCmd()},
		{name: "kube-scheduler", needs: []string{"kube-apiserver"}, cmd: c.schedulerCmd()},
		{name: "kubelet", needs: []string{"pause-image"}, files: files{"resolv.conf": c.resolvConf(), "kubelet.yaml": c.kubeletConfig()},
			cmd: c.kubeletCmd(), wait: c.waitNodeReady},
		{name: "kube-proxy", files: files{"kube-proxy.yaml": c.kubeProxyConfig()}, cmd: c.kubeProxyCmd()},
		{name: "coredns", needs: []string{"coredns-rbac"}, files: files{"Corefile": c.corefile()}, cmd: c.corednsCmd(),
			wait: c.httpReady(dnsReady, false)},
	}
}

// bringUp picks the ports, then runs the steps.
func (c *Cluster) bringUp(ctx context.Context, pauseBin string) error {
	var err error
	if c.ports, err = freePorts(); err != nil {
		return err
	}
	c.Server = fmt.Sprintf("https://%s:%d", c.GatewayIP, c.ports.apiserver)
	return c.runSteps(ctx, c.steps(pauseBin))
}

// runSteps starts the steps in order, first waiting for the steps each one
// needs, then waits for those not waited for yet, in order. An error names
// its step.
func (c *Cluster) runSteps(ctx context.Context, steps []step) error {
	started := map[string]*step{}
	ready := map[string]bool{}
	wait := func(s *step) error {
		if ready[s.name] || s.wait == nil {
			return nil
		}
		if err := s.wait(ctx); err != nil {
			return fmt.Errorf("waiting for %s: %w", s.name, err)
		}
		ready[s.name] = true
		c.logf("%s ready", s.name)
		return nil
	}
	for i := range steps {
		s := &steps[i]
		if started[s.name] != nil {
			return fmt.Errorf("step %s is in the list twice", s.name)
		}
		for _, n := range s.needs {
			dep := started[n]
			if dep == nil {
				return fmt.Errorf("step %s needs %s, which is not an earlier step", s.name, n)
			}
			if err := wait(dep); err != nil {
				return err
			}
		}
		c.logf("starting %s", s.name)
		if err := c.startStep(ctx, s); err != nil {
			return fmt.Errorf("starting %s: %w", s.name, err)
		}
		started[s.name] = s
	}
	for i := range steps {
		if err := wait(&steps[i]); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) startStep(ctx context.Context, s *step) error {
	for name, content := range s.files {
		if err := writeFile(c.path(name), content); err != nil {
			return err
		}
	}
	if len(s.cmd) > 0 {
		return c.start(s.name, s.cmd[0], s.cmd[1:]...)
	}
	if s.do != nil {
		return s.do(ctx)
	}
	return nil
}

// logf writes a progress line with the time since Up began.
func (c *Cluster) logf(format string, args ...any) {
	fmt.Fprintf(c.opts.Log, "localcluster: [%5.1fs] %s\n", time.Since(c.started).Seconds(), fmt.Sprintf(format, args...))
}

// poll calls check until it returns nil, a component exits, or ctx ends.
func (c *Cluster) poll(ctx context.Context, every time.Duration, check func(ctx context.Context) error) error {
	for {
		if err := c.checkAlive(); err != nil {
			return err
		}
		err := check(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(every):
		}
	}
}

// httpReady is a wait that polls url until it answers 200; with admin the
// client presents the cluster-admin certificate (read when the wait begins,
// after the pki step).
func (c *Cluster) httpReady(url string, admin bool) func(context.Context) error {
	return func(ctx context.Context) error {
		var tlsCfg *tls.Config
		if admin {
			var err error
			if tlsCfg, err = c.adminTLS(); err != nil {
				return err
			}
		}
		client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
		defer client.CloseIdleConnections()
		return c.poll(ctx, 200*time.Millisecond, func(context.Context) error {
			resp, err := client.Get(url)
			if err != nil {
				return err
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
			}
			return nil
		})
	}
}

// addBridge creates the pod bridge with the gateway address and a MAC
// address of its own (bridgeMAC). A Linux bridge without one takes the
// lowest MAC of its ports and changes it when that port goes: each pod that
// ends can move the gateway's MAC, and every other pod keeps sending to the
// old one until its ARP entry expires — tens of seconds in which its DNS
// (CoreDNS on the gateway) and its Service traffic (routed through the
// gateway) go nowhere. Seen as calls stuck during rolling upgrades.
func (c *Cluster) addBridge(context.Context) error {
	_, n, _ := net.ParseCIDR(c.PodSubnet)
	size, _ := n.Mask.Size()
	mac, err := bridgeMAC(c.GatewayIP)
	if err != nil {
		return err
	}
	for _, args := range [][]string{
		{"link", "add", c.bridge, "address", mac, "type", "bridge"},
		{"addr", "add", fmt.Sprintf("%s/%d", c.GatewayIP, size), "dev", c.bridge},
		{"link", "set", c.bridge, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// bridgeMAC is the pod bridge's MAC address: locally administered (02:00)
// followed by the gateway's IPv4 address, so two clusters on different
// subnets never share one.
func bridgeMAC(gateway string) (string, error) {
	ip := net.ParseIP(gateway).To4()
	if ip == nil {
		return "", fmt.Errorf("gateway %q is not an IPv4 address", gateway)
	}
	return net.HardwareAddr{0x02, 0x00, ip[0], ip[1], ip[2], ip[3]}.String(), nil
}

func (c *Cluster) applyCoreDNSRBAC(ctx context.Context) error {
	_, err := c.Kubectl(ctx, "apply", "-f", c.path("coredns-rbac.yaml"))
	return err
}
