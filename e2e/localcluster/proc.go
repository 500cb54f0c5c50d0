package localcluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procRecord names one process the cluster started; the start time (in clock
// ticks since boot) tells a recycled pid from ours.
type procRecord struct {
	Name  string `json:"name"`
	Pid   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// proc is a running component. cmd is nil when the cluster was attached to
// rather than started by this process.
type proc struct {
	procRecord
	cmd  *exec.Cmd
	done chan struct{}
}

// start runs bin with args as the component name, in its own session (so a
// terminal's Ctrl-C or the caller's exit does not reach it), output to
// logs/<name>.log, and records it in the state file.
func (c *Cluster) start(name, bin string, args ...string) error {
	logFile, err := os.OpenFile(c.path("logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = c.Dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "PATH="+c.BinDir+":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	p := &proc{procRecord: procRecord{Name: name, Pid: cmd.Process.Pid}, cmd: cmd, done: make(chan struct{})}
	p.Start, _ = procStartTime(p.Pid)
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	c.procs = append(c.procs, p)
	return c.saveState()
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

// exited reports whether the process has ended (and was reaped, if ours).
func (p *proc) exited() bool {
	if p.done != nil {
		select {
		case <-p.done:
			return true
		default:
			return false
		}
	}
	return !sameProcess(p.Pid, p.Start)
}

// stop sends SIGTERM, then SIGKILL after grace, and waits for the end.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	syscall.Kill(p.Pid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for !p.exited() {
		if time.Now().After(deadline) {
			syscall.Kill(p.Pid, syscall.SIGKILL)
			deadline = time.Now().Add(time.Hour)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// procStartTime reads field 22 of /proc/<pid>/stat.
func procStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("bad stat")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return 0, errors.New("short stat")
	}
	if f[0] == "Z" {
		return 0, errors.New("zombie")
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// sameProcess reports whether pid is alive and still the process that
// started at start.
func sameProcess(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	st, err := procStartTime(pid)
	return err == nil && (start == 0 || st == start)
}

// processesUnder lists the pids of every process that belongs to the run
// folder dir: a component or containerd shim whose command line names it, a
// container whose root is in it, and the descendants of those.
func processesUnder(dir string) []int {
	self := os.Getpid()
	entries, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	var matched []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			s := string(b)
			if i := strings.LastIndexByte(s, ')'); i >= 0 {
				if f := strings.Fields(s[i+1:]); len(f) > 1 {
					parent[pid], _ = strconv.Atoi(f[1])
				}
			}
		}
		if belongsTo(pid, dir) {
			matched = append(matched, pid)
		}
	}
	set := map[int]bool{}
	for _, p := range matched {
		set[p] = true
	}
	// Add descendants until nothing changes.
	for changed := true; changed; {
		changed = false
		for pid, ppid := range parent {
			if !set[pid] && set[ppid] && pid != self {
				set[pid] = true
				changed = true
			}
		}
	}
	out := make([]int, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	return out
}

// ownNames are the executables the cluster runs; only these are matched by
// command line, so that, say, a shell tailing a log in the run folder is left
// alone.
var ownNames = map[string]bool{
	"etcd": true, "kube-apiserver": true, "kube-controller-manager": true, "kube-scheduler": true,
	"kubelet": true, "kube-proxy": true, "coredns": true, "containerd": true, "containerd-shim-runc-v2": true,
	"containerd-shim": true, "runc": true, "ctr": true,
}

func belongsTo(pid int, dir string) bool {
	base := filepath.Join("/proc", strconv.Itoa(pid))
	prefix := dir + "/"
	// A container's root is a rootfs under containerd's state folder.
	if t, err := os.Readlink(filepath.Join(base, "root")); err == nil && strings.HasPrefix(t, prefix) {
		return true
	}
	exe, err := os.Readlink(filepath.Join(base, "exe"))
	if err != nil || !ownNames[filepath.Base(strings.TrimSuffix(exe, " (deleted)"))] {
		return false
	}
	b, err := os.ReadFile(filepath.Join(base, "cmdline"))
	return err == nil && strings.Contains(string(b), prefix)
}

// killAll SIGKILLs every process of the run folder until none is left.
func killAll(dir string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		pids := processesUnder(dir)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes of %s still running after SIGKILL: %v", dir, pids)
		}
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
