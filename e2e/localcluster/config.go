package localcluster

import (
	"fmt"
	"os"
	"path/filepath"
)

// This file holds what each component is given: its command line and the
// configuration files it reads. The steps (steps.go) put them together.

func (c *Cluster) etcdURL() string { return fmt.Sprintf("http://127.0.0.1:%d", c.ports.etcd) }

func (c *Cluster) etcdCmd() []string {
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", c.ports.etcdPeer)
	return []string{c.bin("etcd"),
		"--name=local", "--data-dir=" + c.path("etcd"),
		"--listen-client-urls=" + c.etcdURL(), "--advertise-client-urls=" + c.etcdURL(),
		"--listen-peer-urls=" + peerURL, "--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=local=" + peerURL, "--unsafe-no-fsync", "--log-level=warn",
	}
}

// containerdCmd is Debian's containerd, not a built one.
func (c *Cluster) containerdCmd() []string {
	return []string{"containerd", "--config=" + c.path("containerd", "config.toml"), "--log-level=warn"}
}

func (c *Cluster) apiserverCmd() []string {
	pk := c.path("pki")
	return []string{c.bin("kube-apiserver"),
		"--etcd-servers=" + c.etcdURL(),
		"--bind-address=" + c.GatewayIP, "--advertise-address=" + c.GatewayIP,
		fmt.Sprintf("--secure-port=%d", c.ports.apiserver),
		"--tls-cert-file=" + pk + "/apiserver.crt", "--tls-private-key-file=" + pk + "/apiserver.key",
		"--client-ca-file=" + pk + "/ca.crt",
		"--kubelet-client-certificate=" + pk + "/apiserver-kubelet-client.crt",
		"--kubelet-client-key=" + pk + "/apiserver-kubelet-client.key",
		"--kubelet-preferred-address-types=Hostname",
		"--service-account-key-file=" + pk + "/sa.pub",
		"--service-account-signing-key-file=" + pk + "/sa.key",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range=" + c.ServiceSubnet,
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		"--profiling=false",
	}
}

func (c *Cluster) controllerManagerCmd() []string {
	pk := c.path("pki")
	return append(c.controlPlaneArgs("kube-controller-manager", "controller-manager.kubeconfig", c.ports.controllerManager),
		"--service-account-private-key-file="+pk+"/sa.key",
		"--root-ca-file="+pk+"/ca.crt",
		"--cluster-signing-cert-file="+pk+"/ca.crt", "--cluster-signing-key-file="+pk+"/ca.key",
		"--use-service-account-credentials=true",
		"--controllers=*",
		"--service-cluster-ip-range="+c.ServiceSubnet,
		"--leader-elect=false",
	)
}

func (c *Cluster) schedulerCmd() []string {
	return append(c.controlPlaneArgs("kube-scheduler", "scheduler.kubeconfig", c.ports.scheduler), "--leader-elect=false")
}

// controlPlaneArgs start the command line of the controller-manager or the
// scheduler: one kubeconfig (its client certificate) both to reach the API
// server and to check its own callers, and its port on loopback.
func (c *Cluster) controlPlaneArgs(name, kubeconfig string, port int) []string {
	kc := c.path(kubeconfig)
	return []string{c.bin(name),
		"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
		"--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", port),
	}
}

func (c *Cluster) kubeletCmd() []string {
	return []string{c.bin("kubelet"),
		"--config=" + c.path("kubelet.yaml"),
		"--kubeconfig=" + c.path("kubelet.kubeconfig"),
		"--root-dir=" + c.path("kubelet"),
		"--hostname-override=" + NodeName,
		"--node-ip=" + c.GatewayIP,
	}
}

func (c *Cluster) kubeProxyCmd() []string {
	return []string{c.bin("kube-proxy"), "--config=" + c.path("kube-proxy.yaml")}
}

func (c *Cluster) corednsCmd() []string {
	return []string{c.bin("coredns"), "-conf", c.path("Corefile")}
}

// resolvConf is the pods' resolv.conf. Pods never resolve names through the
// host's resolver: the only nameserver they see is the bridge gateway.
func (c *Cluster) resolvConf() string { return "nameserver " + c.GatewayIP + "\n" }

// containerdConfig keeps every path of the private containerd under the run
// folder, so that it shares nothing with a system containerd and Down can
// remove all of it.
func (c *Cluster) containerdConfig() string {
	return fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = %[3]q

[ttrpc]
  address = %[4]q

[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[6]q
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  # Without CAP_SYS_RESOURCE runc cannot lower oom_score_adj and fails every
  # sandbox ("can't get final child's PID from pipe: EOF").
  restrict_oom_score_adj = true
  # Pod network namespaces live under the state folder, not /var/run/netns.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = %[7]q
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[8]q
    conf_dir = %[9]q
    max_conf_num = 1
`, c.path("containerd", "root"), c.path("containerd", "state"), c.containerdSocket(), c.path("containerd", "ttrpc.sock"),
		c.path("containerd", "opt"), pauseImage, c.path("containerd", "runc"), cniBinDir(), c.path("cni", "net.d"))
}

// cniConfig is the pod network: one bridge with host-local addresses and
// portmap for hostPort, the shape of containerd's own example config.
func (c *Cluster) cniConfig() string {
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": %q,
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": %q, "gateway": %q}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": %q
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, cniNetworkName, c.bridge, c.PodSubnet, c.GatewayIP, c.path("cni", "ipam"))
}

func (c *Cluster) kubeletConfig() string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: %[1]d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %[2]d
tlsCertFile: %[3]q
tlsPrivateKeyFile: %[4]q
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %[5]q}
authorization:
  mode: Webhook
containerRuntimeEndpoint: %[6]q
# cgroup v1 and no systemd as PID 1 here: plain cgroupfs, no QoS hierarchy,
# nothing reserved, no eviction (a test host's disk may well be 90%% full).
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
failCgroupV1: false
evictionHard:
  memory.available: "0%%"
  nodefs.available: "0%%"
  nodefs.inodesFree: "0%%"
  imagefs.available: "0%%"
  imagefs.inodesFree: "0%%"
mergeDefaultEvictionSettings: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
podLogsDir: %[7]q
resolvConf: %[8]q
clusterDomain: cluster.local
clusterDNS: [%[9]q]
serializeImagePulls: false
protectKernelDefaults: false
registerNode: true
maxPods: 110
`, c.ports.kubelet, c.ports.kubeletHealthz, c.path("pki", "kubelet.crt"), c.path("pki", "kubelet.key"), c.path("pki", "ca.crt"),
		"unix://"+c.containerdSocket(), c.path("pod-logs"), c.path("resolv.conf"), c.GatewayIP)
}

func (c *Cluster) kubeProxyConfig() string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %[1]q
mode: iptables
hostnameOverride: %[2]s
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:%[3]d
metricsBindAddress: 127.0.0.1:%[4]d
clusterCIDR: %[5]q
detectLocalMode: ClusterCIDR
# Leave the host's conntrack sysctls alone.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
iptables:
  # Keeps kube-proxy from setting route_localnet on the host.
  localhostNodePorts: false
  masqueradeAll: false
`, c.path("kube-proxy.kubeconfig"), NodeName, c.ports.proxyHealthz, c.ports.proxyMetrics, c.PodSubnet)
}

func writeFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o644)
}

// cniBinDir is where Debian's containernetworking-plugins puts the plugins.
func cniBinDir() string {
	for _, d := range []string{"/usr/lib/cni", "/opt/cni/bin"} {
		if _, err := os.Stat(filepath.Join(d, "bridge")); err == nil {
			return d
		}
	}
	return "/usr/lib/cni"
}

// corefile serves cluster.local (and reverse lookups of pods and Services)
// from the API server on the bridge gateway, the pods' only nameserver. There
// is no forward: other names fail, and no query leaves the host.
func (c *Cluster) corefile() string {
	return fmt.Sprintf(`.:53 {
    bind %[1]s
    ready 127.0.0.1:%[2]d
    health 127.0.0.1:%[3]d
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig %[4]q nova-auth-local
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }
    cache 5
    loadbalance
}
`, c.GatewayIP, c.ports.dnsReady, c.ports.dnsHealth, c.path("coredns.kubeconfig"))
}

const corednsRBAC = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: nova-auth:coredns
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: nova-auth:coredns
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: nova-auth:coredns
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: nova-auth:coredns
`
