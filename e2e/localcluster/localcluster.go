// Package localcluster runs a real single-node Kubernetes on this host from
// upstream parts, without Docker: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, a private containerd with a CNI bridge, kubelet and
// kube-proxy, all built from pinned modules (see components/go.mod) and cached.
// Nothing is pulled: the pause image is built here and images are loaded with
// LoadImage, the equivalent of `kind load image-archive`.
//
// It needs root and Debian's containerd, runc, containernetworking-plugins,
// iptables and conntrack (e2e/ci-deps.sh installs them). One cluster runs per
// host at a time: the bridge, the iptables chains and the node name are
// host-wide.
//
//	c, err := localcluster.Up(ctx, localcluster.Options{})
//	defer c.Down(context.Background())
//	c.LoadImage(ctx, "dist/image.tar")
//	cfg, _ := c.RESTConfig()
package localcluster

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// NodeName is the name of the only node. The API server reaches kubelet by
// this host name (--kubelet-preferred-address-types=Hostname), which resolves
// to loopback, while the node's InternalIP is the bridge gateway (kubelet
// refuses a loopback node IP).
const NodeName = "localhost"

const (
	pauseImage     = "localhost/nova-auth/pause:1"
	cniNetworkName = "nova-auth-local"
	stateFile      = "state.json"
)

// ErrRunning is returned by Up when a cluster is already running in the
// folder (say, one started by `make cluster-up`); Attach returns it instead.
var ErrRunning = errors.New("a local cluster is already running")

// ErrNotRunning is returned by Attach when no live cluster is in the folder.
var ErrNotRunning = errors.New("no local cluster is running")

// Options configures Up. The zero value is a working configuration.
type Options struct {
	// Dir is the run folder: configuration, data, logs, containerd's root
	// and state. Default: $NOVA_AUTH_CLUSTER_DIR or /tmp/nova-auth-cluster.
	// Down removes it.
	Dir string
	// CacheDir keeps built binaries between runs (DefaultCacheDir).
	CacheDir string
	// PodSubnet is the CNI bridge's range; its first address is the host
	// side of the bridge. Default 10.88.0.0/16.
	PodSubnet string
	// ServiceSubnet is the ClusterIP range. Default 10.96.0.0/16.
	ServiceSubnet string
	// Bridge is the name of the pod bridge. Default "nova-auth0".
	Bridge string
	// Log receives progress lines. Default: discarded.
	Log io.Writer
	// ArtifactsDir, when set, receives a copy of the components' logs at Down.
	ArtifactsDir string
	// Timeout bounds the start after the binaries are built. Default 3m.
	Timeout time.Duration
}

func (o *Options) defaults() {
	if o.Dir == "" {
		o.Dir = os.Getenv("NOVA_AUTH_CLUSTER_DIR")
	}
	if o.Dir == "" {
		o.Dir = filepath.Join(os.TempDir(), "nova-auth-cluster")
	}
	o.Dir = filepath.Clean(o.Dir)
	if abs, err := filepath.Abs(o.Dir); err == nil {
		o.Dir = abs
	}
	if o.CacheDir == "" {
		o.CacheDir = DefaultCacheDir()
	}
	if o.PodSubnet == "" {
		o.PodSubnet = "10.88.0.0/16"
	}
	if o.ServiceSubnet == "" {
		o.ServiceSubnet = "10.96.0.0/16"
	}
	if o.Bridge == "" {
		o.Bridge = "nova-auth0"
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Timeout == 0 {
		o.Timeout = 3 * time.Minute
	}
}

// Cluster is a running local cluster.
type Cluster struct {
	// Dir is the run folder.
	Dir string
	// Kubeconfig is the path of a cluster-admin (system:masters) kubeconfig.
	Kubeconfig string
	// Server is the API server's URL.
	Server string
	// BinDir holds the built binaries, kubectl among them.
	BinDir string
	// GatewayIP is the host's address on the pod bridge (and the node's
	// InternalIP). A server on the host listening here, such as a test
	// PostgreSQL, is reachable from pods.
	GatewayIP string
	// PodSubnet and ServiceSubnet are the pod and ClusterIP ranges.
	PodSubnet, ServiceSubnet string
	// HostBefore is the host as Up found it, after cleaning a killed run and
	// before starting anything: after Down,
	// HostBefore.Diff(SnapshotHost(c.Dir)) should be empty.
	HostBefore HostState

	bridge   string
	opts     Options
	ports    ports
	procs    []*proc
	sysctls  map[string]string
	created  []string
	tables   []string
	lock     *os.File
	started  time.Time
	mu       sync.Mutex
	attached bool
}

type ports struct {
	etcd, etcdPeer, apiserver, controllerManager, scheduler int
	kubelet, kubeletHealthz, proxyHealthz, proxyMetrics     int
	dnsReady, dnsHealth                                     int
}

// state is state.json in the run folder: what Attach and the cleanup of a
// killed run need.
type state struct {
	Owner      procRecord        `json:"owner"`
	Detached   bool              `json:"detached"`
	Bridge     string            `json:"bridge"`
	Sysctls    map[string]string `json:"sysctls"`
	Procs      []procRecord      `json:"procs"`
	Server     string            `json:"server"`
	BinDir     string            `json:"binDir"`
	GatewayIP  string            `json:"gatewayIP"`
	PodSubnet  string            `json:"podSubnet"`
	SvcSubnet  string            `json:"serviceSubnet"`
	Containerd string            `json:"containerd"`
	// Created are the fixed host folders (hostFolders) this run created.
	Created []string `json:"created"`
	// Tables are the iptables tables that existed before the run.
	Tables []string `json:"tables"`
}

func (c *Cluster) path(elem ...string) string {
	return filepath.Join(append([]string{c.Dir}, elem...)...)
}

func (c *Cluster) containerdSocket() string { return c.path("containerd", "containerd.sock") }

// Check reports what this host lacks to run a cluster, or nil.
func Check() error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (kubelet, containerd and the CNI plugins need it)")
	}
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "ctr", "runc", "iptables", "iptables-save", "iptables-restore", "ip", "go"} {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	for _, p := range []string{"bridge", "host-local", "portmap", "loopback"} {
		if _, err := os.Stat(filepath.Join(cniBinDir(), p)); err != nil {
			missing = append(missing, "CNI plugin "+p)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("localcluster: this host lacks %s (run e2e/ci-deps.sh as root)", strings.Join(missing, ", "))
	}
	return nil
}

// Up builds (or takes from the cache) the binaries, cleans what a killed
// earlier run left in the folder, starts every component and returns once
// the node is Ready. On error it cleans up after itself. If a live cluster is
// already in the folder it returns ErrRunning and touches nothing.
func Up(ctx context.Context, opts Options) (*Cluster, error) {
	return up(ctx, opts, false)
}

// UpDetached is Up for a cluster that outlives the calling process (make
// cluster-up): Attach finds it later, and its Down stops it.
func UpDetached(ctx context.Context, opts Options) (*Cluster, error) {
	return up(ctx, opts, true)
}

func up(ctx context.Context, opts Options, detached bool) (*Cluster, error) {
	opts.defaults()
	if err := Check(); err != nil {
		return nil, err
	}
	// One cluster per host: a second Up (another test package run in
	// parallel by go test ./...) waits here until the first is down.
	lock, err := lockHost(ctx, opts)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			lock.Close()
		}
	}()
	if st, err := readState(opts.Dir); err == nil && st.alive() {
		return nil, fmt.Errorf("%w in %s (owner pid %d); stop it with `make cluster-down`", ErrRunning, opts.Dir, st.Owner.Pid)
	}
	if err := Clean(opts); err != nil {
		return nil, fmt.Errorf("cleaning an earlier run: %w", err)
	}
	before := SnapshotHost(opts.Dir)
	bin, err := BuildComponents(ctx, opts.CacheDir, opts.Log)
	if err != nil {
		return nil, err
	}
	pause, err := buildPause(ctx, opts.CacheDir)
	if err != nil {
		return nil, err
	}
	gw, err := gatewayIP(opts.PodSubnet)
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		Dir: opts.Dir, BinDir: bin, GatewayIP: gw,
		PodSubnet: opts.PodSubnet, ServiceSubnet: opts.ServiceSubnet,
		bridge: opts.Bridge, opts: opts,
		sysctls: readSysctls(), created: missingHostFolders(), tables: iptablesTables(),
		lock: lock, HostBefore: before,
	}
	c.Kubeconfig = c.path("kubeconfig")
	for _, d := range []string{"logs", "pki", "etcd", "containerd", "cni/net.d", "kubelet", "pod-logs"} {
		if err := os.MkdirAll(c.path(d), 0o755); err != nil {
			return nil, err
		}
	}
	// The state goes down first so that a run killed from here on is cleaned.
	self, _ := procStartTime(os.Getpid())
	st := &state{Detached: detached, Owner: procRecord{Name: "owner", Pid: os.Getpid(), Start: self}}
	if err := c.writeState(st); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	start := time.Now()
	c.started = start
	if err := c.start1(ctx, pause); err != nil {
		c.logTails(opts.Log)
		if derr := c.Down(context.Background()); derr != nil {
			fmt.Fprintf(opts.Log, "localcluster: cleanup after failed start: %v\n", derr)
		}
		return nil, err
	}
	ok = true
	if detached {
		// The cluster outlives this process; Attach and its Down take over.
		lock.Close()
		c.lock = nil
	}
	fmt.Fprintf(opts.Log, "localcluster: node %s Ready in %s; KUBECONFIG=%s\n", NodeName, time.Since(start).Round(100*time.Millisecond), c.Kubeconfig)
	return c, nil
}

// lockHost takes the host-wide cluster lock (a file in the cache folder, so
// that it is no file of a run), waiting while another process holds it.
func lockHost(ctx context.Context, opts Options) (*os.File, error) {
	if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(opts.CacheDir, "cluster.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	said := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
		}
		if !said {
			fmt.Fprintln(opts.Log, "localcluster: another process's cluster is up on this host; waiting for its Down")
			said = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for another local cluster to go down: %w", ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

func gatewayIP(subnet string) (string, error) {
	ip, n, err := net.ParseCIDR(subnet)
	if err != nil || ip.To4() == nil {
		return "", fmt.Errorf("pod subnet %q: want an IPv4 CIDR", subnet)
	}
	gw := n.IP.To4()
	gw = net.IPv4(gw[0], gw[1], gw[2], gw[3]+1)
	return gw.String(), nil
}

func (c *Cluster) start1(ctx context.Context, pauseBin string) error {
	var err error
	if c.ports, err = freePorts(); err != nil {
		return err
	}
	// The bridge exists before kubelet so that its address can be the node IP
	// and the API server can listen on it for pods.
	_, n, _ := net.ParseCIDR(c.PodSubnet)
	size, _ := n.Mask.Size()
	for _, args := range [][]string{
		{"link", "add", c.bridge, "type", "bridge"},
		{"addr", "add", fmt.Sprintf("%s/%d", c.GatewayIP, size), "dev", c.bridge},
		{"link", "set", c.bridge, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	c.Server = fmt.Sprintf("https://%s:%d", c.GatewayIP, c.ports.apiserver)

	if err := c.writePKI(); err != nil {
		return err
	}
	if err := writeFile(c.path("containerd", "config.toml"), c.containerdConfig()); err != nil {
		return err
	}
	if err := writeFile(c.path("cni", "net.d", "10-nova-auth.conflist"), c.cniConfig()); err != nil {
		return err
	}
	// Pods never resolve names through the host's resolver: the only
	// nameserver they see is the bridge gateway.
	if err := writeFile(c.path("resolv.conf"), "nameserver "+c.GatewayIP+"\n"); err != nil {
		return err
	}
	if err := writeFile(c.path("kubelet.yaml"), c.kubeletConfig()); err != nil {
		return err
	}
	if err := writeFile(c.path("kube-proxy.yaml"), c.kubeProxyConfig()); err != nil {
		return err
	}

	c.logf("starting etcd and containerd")
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", c.ports.etcd)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", c.ports.etcdPeer)
	if _, err := c.start("etcd", c.bin("etcd"),
		"--name=local", "--data-dir="+c.path("etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=local="+peerURL, "--unsafe-no-fsync", "--log-level=warn",
	); err != nil {
		return err
	}
	if _, err := c.start("containerd", "containerd", "--config="+c.path("containerd", "config.toml"), "--log-level=warn"); err != nil {
		return err
	}
	if err := c.waitHTTP(ctx, "etcd", etcdURL+"/health", nil); err != nil {
		return err
	}
	c.logf("etcd ready")

	c.logf("starting kube-apiserver")
	pk := c.path("pki")
	if _, err := c.start("kube-apiserver", c.bin("kube-apiserver"),
		"--etcd-servers="+etcdURL,
		"--bind-address="+c.GatewayIP, "--advertise-address="+c.GatewayIP,
		fmt.Sprintf("--secure-port=%d", c.ports.apiserver),
		"--tls-cert-file="+pk+"/apiserver.crt", "--tls-private-key-file="+pk+"/apiserver.key",
		"--client-ca-file="+pk+"/ca.crt",
		"--kubelet-client-certificate="+pk+"/apiserver-kubelet-client.crt",
		"--kubelet-client-key="+pk+"/apiserver-kubelet-client.key",
		"--kubelet-preferred-address-types=Hostname",
		"--service-account-key-file="+pk+"/sa.pub",
		"--service-account-signing-key-file="+pk+"/sa.key",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range="+c.ServiceSubnet,
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		"--profiling=false",
	); err != nil {
		return err
	}
	if err := c.importPause(ctx, pauseBin); err != nil {
		return err
	}
	c.logf("pause image loaded")
	tlsCfg, err := c.adminTLS()
	if err != nil {
		return err
	}
	if err := c.waitHTTP(ctx, "kube-apiserver", c.Server+"/readyz", tlsCfg); err != nil {
		return err
	}
	c.logf("kube-apiserver ready")
	// CoreDNS's own role (as kubeadm's system:coredns), not the aggregated
	// "view", whose rules only appear once the controller-manager has run:
	// CoreDNS refused at its first list backs off for long.
	if err := writeFile(c.path("coredns-rbac.yaml"), corednsRBAC); err != nil {
		return err
	}
	if _, err := c.Kubectl(ctx, "apply", "-f", c.path("coredns-rbac.yaml")); err != nil {
		return err
	}

	c.logf("starting controller-manager, scheduler, kubelet, kube-proxy")
	if _, err := c.start("kube-controller-manager", c.bin("kube-controller-manager"),
		"--kubeconfig="+c.path("controller-manager.kubeconfig"),
		"--authentication-kubeconfig="+c.path("controller-manager.kubeconfig"),
		"--authorization-kubeconfig="+c.path("controller-manager.kubeconfig"),
		"--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", c.ports.controllerManager),
		"--service-account-private-key-file="+pk+"/sa.key",
		"--root-ca-file="+pk+"/ca.crt",
		"--cluster-signing-cert-file="+pk+"/ca.crt", "--cluster-signing-key-file="+pk+"/ca.key",
		"--use-service-account-credentials=true",
		"--controllers=*",
		"--service-cluster-ip-range="+c.ServiceSubnet,
		"--leader-elect=false",
	); err != nil {
		return err
	}
	if _, err := c.start("kube-scheduler", c.bin("kube-scheduler"),
		"--kubeconfig="+c.path("scheduler.kubeconfig"),
		"--authentication-kubeconfig="+c.path("scheduler.kubeconfig"),
		"--authorization-kubeconfig="+c.path("scheduler.kubeconfig"),
		"--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", c.ports.scheduler),
		"--leader-elect=false",
	); err != nil {
		return err
	}
	if _, err := c.start("kubelet", c.bin("kubelet"),
		"--config="+c.path("kubelet.yaml"),
		"--kubeconfig="+c.path("kubelet.kubeconfig"),
		"--root-dir="+c.path("kubelet"),
		"--hostname-override="+NodeName,
		"--node-ip="+c.GatewayIP,
	); err != nil {
		return err
	}
	if _, err := c.start("kube-proxy", c.bin("kube-proxy"), "--config="+c.path("kube-proxy.yaml")); err != nil {
		return err
	}
	if err := writeFile(c.path("Corefile"), c.corefile()); err != nil {
		return err
	}
	if _, err := c.start("coredns", c.bin("coredns"), "-conf", c.path("Corefile")); err != nil {
		return err
	}
	if err := c.waitNodeReady(ctx); err != nil {
		return err
	}
	c.logf("node Ready")
	return c.waitHTTP(ctx, "coredns", fmt.Sprintf("http://127.0.0.1:%d/ready", c.ports.dnsReady), nil)
}

// logf writes a progress line with the time since Up began.
func (c *Cluster) logf(format string, args ...any) {
	fmt.Fprintf(c.opts.Log, "localcluster: [%5.1fs] %s\n", time.Since(c.started).Seconds(), fmt.Sprintf(format, args...))
}

func (c *Cluster) bin(name string) string { return filepath.Join(c.BinDir, name) }

func (c *Cluster) writePKI() error {
	p, err := newPKI(c.path("pki"))
	if err != nil {
		return err
	}
	if _, err := p.issue("apiserver", "kube-apiserver", nil, []string{
		c.GatewayIP, "127.0.0.1", "localhost", firstServiceIP(c.ServiceSubnet),
		"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local",
	}); err != nil {
		return err
	}
	if _, err := p.issue("kubelet", "system:node:"+NodeName, []string{"system:nodes"}, []string{NodeName, "127.0.0.1", c.GatewayIP}); err != nil {
		return err
	}
	if _, err := p.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client", []string{"system:masters"}, nil); err != nil {
		return err
	}
	clients := []struct{ file, cn, org string }{
		{"kubeconfig", "nova-auth-admin", "system:masters"},
		{"controller-manager.kubeconfig", "system:kube-controller-manager", ""},
		{"scheduler.kubeconfig", "system:kube-scheduler", ""},
		{"kubelet.kubeconfig", "system:node:" + NodeName, "system:nodes"},
		{"kube-proxy.kubeconfig", "system:kube-proxy", ""},
		// CoreDNS reads Services, EndpointSlices, Namespaces and Pods
		// cluster-wide (corednsRBAC, applied at Up).
		{"coredns.kubeconfig", "nova-auth:coredns", ""},
	}
	for _, cl := range clients {
		var orgs []string
		if cl.org != "" {
			orgs = []string{cl.org}
		}
		is, err := p.issue(strings.TrimSuffix(cl.file, ".kubeconfig")+"-client", cl.cn, orgs, nil)
		if err != nil {
			return err
		}
		if err := p.kubeconfig(c.path(cl.file), c.Server, cl.cn, is); err != nil {
			return err
		}
	}
	return nil
}

func firstServiceIP(subnet string) string {
	gw, err := gatewayIP(subnet)
	if err != nil {
		return "10.96.0.1"
	}
	return gw
}

func (c *Cluster) adminTLS() (*tls.Config, error) {
	return tlsFromPKI(c.path("pki"), "kubeconfig-client")
}

// freePorts picks the components' ports below the kernel's ephemeral range,
// so that no outgoing connection opened during the start takes one between
// the pick and the component's bind.
func freePorts() (ports, error) {
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 12000 {
				lo = n
			}
		}
	}
	used := map[int]bool{}
	next := func() int {
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
	p := ports{
		etcd: next(), etcdPeer: next(), apiserver: next(), controllerManager: next(), scheduler: next(),
		kubelet: next(), kubeletHealthz: next(), proxyHealthz: next(), proxyMetrics: next(),
		dnsReady: next(), dnsHealth: next(),
	}
	if p.dnsHealth == 0 {
		return p, errors.New("no free ports below the ephemeral range")
	}
	return p, nil
}

// waitHTTP polls url until it answers 200, a component dies, or ctx ends.
func (c *Cluster) waitHTTP(ctx context.Context, what, url string, tlsCfg *tls.Config) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	defer client.CloseIdleConnections()
	var last error
	for {
		if err := c.checkAlive(); err != nil {
			return err
		}
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last: %v)", what, ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// checkAlive fails when a component has exited.
func (c *Cluster) checkAlive() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		if p.exited() {
			return fmt.Errorf("%s exited; see %s", p.Name, c.path("logs", p.Name+".log"))
		}
	}
	return nil
}

func (c *Cluster) writeState(st *state) error {
	st.Bridge = c.bridge
	st.Sysctls = c.sysctls
	st.Server = c.Server
	st.BinDir = c.BinDir
	st.GatewayIP = c.GatewayIP
	st.PodSubnet = c.PodSubnet
	st.SvcSubnet = c.ServiceSubnet
	st.Containerd = c.containerdSocket()
	st.Created = c.created
	st.Tables = c.tables
	st.Procs = st.Procs[:0]
	for _, p := range c.procs {
		st.Procs = append(st.Procs, p.procRecord)
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := c.path(stateFile + ".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, c.path(stateFile))
}

func (c *Cluster) saveState() error {
	st, err := readState(c.Dir)
	if err != nil {
		return err
	}
	return c.writeState(st)
}

func readState(dir string) (*state, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", stateFile, err)
	}
	return &st, nil
}

// alive reports whether the recorded cluster is still in use: its owner
// process lives (or it was started detached) and some component runs.
func (st *state) alive() bool {
	if !st.Detached && !sameProcess(st.Owner.Pid, st.Owner.Start) {
		return false
	}
	for _, p := range st.Procs {
		if sameProcess(p.Pid, p.Start) {
			return true
		}
	}
	return false
}

// Attach returns the live cluster in opts.Dir, started by another process
// (make cluster-up), or ErrNotRunning. Down on it stops that cluster.
func Attach(opts Options) (*Cluster, error) {
	opts.defaults()
	st, err := readState(opts.Dir)
	if err != nil || !st.alive() {
		return nil, fmt.Errorf("%w in %s", ErrNotRunning, opts.Dir)
	}
	c := &Cluster{
		Dir: opts.Dir, Server: st.Server, BinDir: st.BinDir, GatewayIP: st.GatewayIP,
		PodSubnet: st.PodSubnet, ServiceSubnet: st.SvcSubnet,
		bridge: st.Bridge, opts: opts, sysctls: st.Sysctls, created: st.Created, tables: st.Tables, attached: true,
	}
	c.Kubeconfig = c.path("kubeconfig")
	for _, r := range st.Procs {
		c.procs = append(c.procs, &proc{procRecord: r})
	}
	return c, nil
}

// Clean removes what a run in opts.Dir left behind when it was killed before
// Down: processes, mounts, the bridge, iptables chains, files. It refuses
// (ErrRunning) while a live cluster is there.
func Clean(opts Options) error {
	opts.defaults()
	st, err := readState(opts.Dir)
	h := hostChanges{bridge: opts.Bridge}
	if err == nil {
		if st.alive() {
			return fmt.Errorf("%w in %s", ErrRunning, opts.Dir)
		}
		if st.Bridge != "" {
			h.bridge = st.Bridge
		}
		h.sysctls, h.created, h.tables = st.Sysctls, st.Created, st.Tables
	}
	return cleanHost(opts.Dir, h)
}

// Down stops the cluster and leaves the host as it was: it removes the pods
// through the runtime (so the CNI plugins undo their network setup), stops
// every process it started, then removes mounts, the bridge, iptables chains,
// sysctl changes and the run folder.
func (c *Cluster) Down(ctx context.Context) error {
	if c == nil {
		return nil
	}
	if c.opts.ArtifactsDir != "" {
		copyLogs(c.path("logs"), c.opts.ArtifactsDir)
	}
	byName := map[string]*proc{}
	for _, p := range c.procs {
		byName[p.Name] = p
	}
	stop := func(names ...string) {
		for _, n := range names {
			if p := byName[n]; p != nil {
				t := time.Now()
				p.stop(10 * time.Second)
				if d := time.Since(t); d > 2*time.Second {
					fmt.Fprintf(c.opts.Log, "localcluster: %s took %s to stop\n", n, d.Round(100*time.Millisecond))
				}
			}
		}
	}
	// kubelet first, so that it does not restart what the runtime removes.
	stop("kubelet", "kube-proxy", "coredns", "kube-scheduler", "kube-controller-manager")
	if p := byName["containerd"]; p != nil && !p.exited() {
		rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		if err := removeAllPods(rctx, c.containerdSocket()); err != nil {
			fmt.Fprintf(c.opts.Log, "localcluster: removing pods: %v\n", err)
		}
		cancel()
	}
	stop("containerd", "kube-apiserver", "etcd")
	err := cleanHost(c.Dir, hostChanges{bridge: c.bridge, sysctls: c.sysctls, created: c.created, tables: c.tables})
	if c.lock != nil {
		c.lock.Close()
		c.lock = nil
	}
	return err
}

// logTails prints the end of every component's log, for a failed start.
func (c *Cluster) logTails(w io.Writer) {
	entries, _ := os.ReadDir(c.path("logs"))
	for _, e := range entries {
		b, _ := os.ReadFile(c.path("logs", e.Name()))
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		fmt.Fprintf(w, "---- %s (last lines)\n%s\n", e.Name(), strings.Join(lines, "\n"))
	}
}

// LogDir is the folder of the components' logs (removed by Down; see
// Options.ArtifactsDir).
func (c *Cluster) LogDir() string { return c.path("logs") }

func copyLogs(from, to string) {
	if err := os.MkdirAll(to, 0o755); err != nil {
		return
	}
	entries, _ := os.ReadDir(from)
	for _, e := range entries {
		if b, err := os.ReadFile(filepath.Join(from, e.Name())); err == nil {
			os.WriteFile(filepath.Join(to, e.Name()), b, 0o644)
		}
	}
}
