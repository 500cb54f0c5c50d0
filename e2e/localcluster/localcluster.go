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
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
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

func (c *Cluster) path(elem ...string) string {
	return filepath.Join(append([]string{c.Dir}, elem...)...)
}

func (c *Cluster) containerdSocket() string { return c.path("containerd", "containerd.sock") }

func (c *Cluster) bin(name string) string { return filepath.Join(c.BinDir, name) }

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
	if err := c.bringUp(ctx, pause); err != nil {
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

// Attach returns the live cluster in opts.Dir, started by another process
// (make cluster-up), or ErrNotRunning. Down on it stops that cluster.
func Attach(opts Options) (*Cluster, error) {
	opts.defaults()
	st, err := readState(opts.Dir)
	if err != nil || !st.alive() {
		return nil, fmt.Errorf("%w in %s", ErrNotRunning, opts.Dir)
	}
	return st.cluster(opts), nil
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
	// Then any component not named above, last started first.
	for i := len(c.procs) - 1; i >= 0; i-- {
		stop(c.procs[i].Name)
	}
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
