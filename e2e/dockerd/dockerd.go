// Package dockerd runs a private Docker engine for the kind provider on a
// host where no Docker engine runs: Debian's dockerd with its own data root,
// exec root, socket and pidfile, so that it never touches a daemon a user
// runs, stopped by its pid, and the host left as it was found.
//
// The engine adds no iptables rules to the host (--iptables=false) and leaves
// ip_forward alone; containers reach each other on a user-defined bridge
// network (Network), whose bridged traffic skips the host's iptables. Its
// default runtime is nova-runc (internal/novarunc), which removes from a
// container's capabilities those the host's bounding set lacks, so that
// --privileged containers (kind's nodes) run here.
package dockerd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nova-auth/nova-auth/e2e/ociimage"
)

// Options configure an engine. Zero values take the defaults.
type Options struct {
	// Dir is the run folder: socket, exec root, pidfile, logs, the client's
	// config and the runtime wrapper. Keep it short: a unix socket path has at
	// most 108 bytes. Default /tmp/nova-auth-docker.
	Dir string
	// DataRoot holds images and containers. Under a cache folder it keeps
	// images between runs. Default Dir/data (removed at Stop).
	DataRoot string
	// CgroupParent is the cgroup (under every v1 hierarchy) the containers
	// are put in; Stop removes it. Default nova-auth-docker.
	CgroupParent string
	// Sysctls are host settings (paths under /proc/sys) the containers may
	// change: a privileged container shares the host's non-namespaced
	// sysctls, and a kind node's kubelet sets vm.overcommit_memory,
	// kernel.panic and others. Start records them; Stop (or the Clean of the
	// next Start, after a killed run) puts them back.
	Sysctls []string
	// Log receives progress lines; dockerd's own output goes to Dir/dockerd.log.
	Log io.Writer
}

func (o *Options) defaults() {
	if o.Dir == "" {
		o.Dir = "/tmp/nova-auth-docker"
	}
	if o.DataRoot == "" {
		o.DataRoot = filepath.Join(o.Dir, "data")
	}
	if o.CgroupParent == "" {
		o.CgroupParent = "nova-auth-docker"
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// Engine is a running private dockerd.
type Engine struct {
	opts Options
	// Host is the DOCKER_HOST value of the engine (unix://…/docker.sock).
	Host string
	// BinDir holds a `docker` matching the daemon (Debian's CLI); put it first
	// on PATH so that tools that run `docker` (kind) use it rather than
	// another CLI on the machine.
	BinDir string
	pid    int
	// created are host folders that did not exist before Start; Stop removes
	// them when empty.
	created []string
}

// hostFolders are fixed paths dockerd and its containerd use whatever they
// are configured with: containerd 1.6's shim sockets (/run/containerd/s) and
// plugin folder (/opt/containerd/{bin,lib}), bind sources docker creates when
// missing (/lib/modules, which kind mounts into its nodes) and docker's
// default folders (/run/docker/plugins).
var hostFolders = []string{"/run/containerd", "/opt/containerd", "/lib/modules", "/etc/docker", "/var/lib/docker", "/run/docker"}

// Check says what this host lacks for Start, or nil.
func Check() error {
	var missing []string
	for _, bin := range []string{"dockerd", "containerd", "runc", "go"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if _, err := os.Stat("/usr/bin/docker"); err != nil {
		missing = append(missing, "/usr/bin/docker (Debian's docker.io CLI)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("dockerd: missing %s (install with e2e/kind-deps.sh)", strings.Join(missing, ", "))
	}
	if os.Geteuid() != 0 {
		return errors.New("dockerd: the private Docker engine needs root")
	}
	return nil
}

// Start cleans what a killed run in the same folder left, then starts
// dockerd and waits until it answers.
func Start(ctx context.Context, o Options) (*Engine, error) {
	o.defaults()
	if err := Check(); err != nil {
		return nil, err
	}
	if _, err := os.Stat("/run/containerd/containerd.sock"); err == nil {
		// dockerd would use that containerd instead of starting its own.
		return nil, errors.New("dockerd: a system containerd runs (/run/containerd/containerd.sock); the private engine needs its own")
	}
	if err := Clean(o); err != nil {
		return nil, fmt.Errorf("dockerd: cleaning a previous run: %w", err)
	}
	e := &Engine{opts: o, Host: "unix://" + e2path(o, "docker.sock"), BinDir: e2path(o, "bin")}
	for _, p := range hostFolders {
		if _, err := os.Lstat(p); os.IsNotExist(err) {
			e.created = append(e.created, p)
		}
	}
	for _, d := range []string{o.Dir, e.BinDir, e2path(o, "exec"), e2path(o, "cli"), o.DataRoot} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	if err := writeJSON(e2path(o, "created.json"), e.created); err != nil {
		return nil, err
	}
	if err := writeJSON(e2path(o, "sysctls.json"), readSysctls(o.Sysctls)); err != nil {
		return nil, err
	}
	for name, target := range map[string]string{"docker": "/usr/bin/docker", "docker-proxy": "/usr/sbin/docker-proxy"} {
		if err := os.Symlink(target, filepath.Join(e.BinDir, name)); err != nil {
			return nil, err
		}
	}
	wrapper := filepath.Join(e.BinDir, "nova-runc")
	if err := buildWrapper(ctx, wrapper); err != nil {
		return nil, err
	}
	// The key path: docker 20.10 otherwise creates /etc/docker/key.json.
	if err := writeJSON(e2path(o, "daemon.json"), map[string]any{"deprecated-key-path": e2path(o, "key.json")}); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(e2path(o, "dockerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command("dockerd", e.args(wrapper)...)
	cmd.Dir = o.Dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "PATH="+e.BinDir+":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	// Its own session: a terminal's Ctrl-C stops the test, not the engine
	// before the test's cleanup removed its containers.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("dockerd: %w", err)
	}
	e.pid = cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if err := e.waitReady(ctx, exited); err != nil {
		e.Stop()
		return nil, fmt.Errorf("dockerd: %w; see %s", err, e2path(o, "dockerd.log"))
	}
	// A killed run's containers and networks, in a data root kept in the
	// cache: dockerd brings their bridges back at start.
	if err := e.removeAll(ctx); err != nil {
		e.Stop()
		return nil, fmt.Errorf("dockerd: removing a killed run's containers: %w", err)
	}
	fmt.Fprintf(o.Log, "dockerd: engine up in %s at %s\n", time.Since(start).Round(100*time.Millisecond), e.Host)
	return e, nil
}

func e2path(o Options, elem ...string) string {
	return filepath.Join(append([]string{o.Dir}, elem...)...)
}

func (e *Engine) args(wrapper string) []string {
	o := e.opts
	return []string{
		"--config-file", e2path(o, "daemon.json"),
		"--data-root", o.DataRoot,
		"--exec-root", e2path(o, "exec"),
		"--pidfile", e2path(o, "dockerd.pid"),
		"-H", e.Host,
		"--group", "root",
		"--storage-driver", "overlay2",
		"--exec-opt", "native.cgroupdriver=cgroupfs",
		"--cgroup-parent", "/" + o.CgroupParent,
		// No host iptables rules, no forwarding change, no default bridge:
		// containers use the networks Network creates.
		"--iptables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none",
		"--userland-proxy=true", "--userland-proxy-path", filepath.Join(e.BinDir, "docker-proxy"),
		"--add-runtime", "nova-runc=" + wrapper, "--default-runtime", "nova-runc",
		"--oom-score-adjust=0",
		"--log-driver", "json-file", "--log-opt", "max-size=10m",
		"--live-restore=false",
	}
}

func (e *Engine) waitReady(ctx context.Context, exited <-chan error) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("exited: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("not answering: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
		if _, err := e.Docker(ctx, "version", "--format", "{{.Server.Version}}"); err == nil {
			return nil
		}
	}
}

// buildWrapper builds internal/novarunc as a static binary (the Go build
// cache makes a warm build take a moment).
func buildWrapper(ctx context.Context, out string) error {
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		return errors.New("dockerd: cannot find its source folder (built with -trimpath?)")
	}
	return ociimage.GoBuild(ctx, filepath.Join(filepath.Dir(file), "internal", "novarunc"), ".", out)
}

// Env is the environment a docker client (or kind) needs to use this
// engine: DOCKER_HOST, a DOCKER_CONFIG of its own (nothing written to
// ~/.docker) and PATH with the matching CLI first.
func (e *Engine) Env() []string {
	return []string{
		"DOCKER_HOST=" + e.Host,
		"DOCKER_CONFIG=" + e2path(e.opts, "cli"),
		"PATH=" + e.BinDir + string(os.PathListSeparator) + os.Getenv("PATH"),
	}
}

// Docker runs the docker CLI against this engine and returns its stdout;
// an error carries stderr.
func (e *Engine) Docker(ctx context.Context, args ...string) ([]byte, error) {
	return e.DockerIn(ctx, nil, args...)
}

// DockerIn is Docker with stdin.
func (e *Engine) DockerIn(ctx context.Context, stdin io.Reader, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(e.BinDir, "docker"), args...)
	cmd.Env = append(os.Environ(), e.Env()...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// Network creates a bridge network with a host bridge of the given name and
// subnet (e.g. "nvkind0", "172.30.77.0/24"); Stop removes it. Bridged
// traffic between its containers skips the host's iptables
// (nf_call_iptables off on this bridge only), so a host firewall's FORWARD
// policy cannot break it.
func (e *Engine) Network(ctx context.Context, name, bridge, subnet, gateway string) error {
	if _, err := e.Docker(ctx, "network", "create", "--driver", "bridge", "--subnet", subnet, "--gateway", gateway,
		"--opt", "com.docker.network.bridge.name="+bridge, name); err != nil {
		return err
	}
	if err := recordBridge(e.opts.Dir, bridge); err != nil {
		return err
	}
	if b, err := exec.CommandContext(ctx, "ip", "link", "set", bridge, "type", "bridge", "nf_call_iptables", "0").CombinedOutput(); err != nil {
		return fmt.Errorf("ip link set %s nf_call_iptables 0: %w: %s", bridge, err, b)
	}
	return nil
}

// removeAll removes every container (with its anonymous volumes) and every
// network but docker's own. The engine is the run's alone, so all of them
// are the run's, or, in a data root kept in a cache, a killed run's.
func (e *Engine) removeAll(ctx context.Context) error {
	var errs []error
	for _, list := range [][]string{
		{"ps", "--all", "--quiet"},
		{"network", "ls", "--quiet", "--filter", "type=custom"},
	} {
		out, err := e.Docker(ctx, list...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ids := strings.Fields(string(out)); len(ids) > 0 {
			rm := []string{"rm", "--force", "--volumes"}
			if list[0] == "network" {
				rm = []string{"network", "rm"}
			}
			if _, err := e.Docker(ctx, append(rm, ids...)...); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Stop removes every container and the networks of the engine, stops
// dockerd by its pid and leaves the host as Start found it.
func (e *Engine) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var errs []error
	if err := e.removeAll(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := Clean(e.opts); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Clean stops the dockerd of the run folder by its pidfile (SIGTERM, then
// SIGKILL), kills what it left (containerd, shims, proxies started from the
// folder), unmounts what is mounted under the folder and the data root,
// deletes the bridges of its networks, the containers' cgroups and the host
// folders the run created, then removes the run folder (not a data root
// outside it). It is what Stop ends with, and what Start does first after a
// killed run.
func Clean(o Options) error {
	o.defaults()
	if _, err := os.Stat(o.Dir); os.IsNotExist(err) {
		return nil
	}
	var errs []error
	if pid := readPid(e2path(o, "dockerd.pid")); pid > 0 && isDockerd(pid, o.Dir) {
		syscall.Kill(pid, syscall.SIGTERM)
		if !waitGone(pid, 30*time.Second) {
			syscall.Kill(pid, syscall.SIGKILL)
			waitGone(pid, 5*time.Second)
		}
	}
	if err := killUnder([]string{o.Dir, o.DataRoot}, o.CgroupParent, 10*time.Second); err != nil {
		errs = append(errs, err)
	}
	for _, d := range []string{o.Dir, o.DataRoot} {
		if err := unmountUnder(d); err != nil {
			// Removing the folder through a mount left in it could delete
			// what the mount shows.
			return errors.Join(append(errs, err)...)
		}
	}
	if err := removeBridges(o.Dir); err != nil {
		errs = append(errs, err)
	}
	if err := removeCgroup(o.CgroupParent); err != nil {
		errs = append(errs, err)
	}
	if err := restoreSysctls(e2path(o, "sysctls.json")); err != nil {
		errs = append(errs, err)
	}
	var created []string
	if b, err := os.ReadFile(e2path(o, "created.json")); err == nil {
		json.Unmarshal(b, &created) //nolint:errcheck // an unreadable list leaves the folders
	}
	for _, p := range created {
		removeEmptyTree(p)
	}
	if err := os.RemoveAll(o.Dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// isDockerd checks that pid is still the dockerd of dir, not a recycled pid.
func isDockerd(pid int, dir string) bool {
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return filepath.Base(strings.TrimSuffix(exe, " (deleted)")) == "dockerd" && bytes.Contains(cmdline, []byte(dir+"/"))
}

func waitGone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
		// Our own child stays a zombie until reaped by cmd.Wait's goroutine.
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && zombie(st) {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

func zombie(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}
