package dockerd

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nova-auth/nova-auth/e2e/localcluster"
)

// engineExes are the programs the engine runs on the host; a process of
// these is the run's when its command line names one of the run's folders.
// docker-proxy is started through a link in the run's bin folder
// (--userland-proxy-path), so its argv[0] names the folder too.
var engineExes = map[string]bool{
	"dockerd": true, "containerd": true, "containerd-shim-runc-v2": true, "containerd-shim": true,
	"docker-proxy": true, "runc": true, "nova-runc": true, "docker-init": true,
}

// killUnder SIGKILLs, until none is left, every engine process whose command
// line names one of dirs and every process in the containers' parent cgroup
// (a container's processes, left running by a killed shim).
func killUnder(dirs []string, cgroupParent string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		pids := runPids(dirs, cgroupParent)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes of the run still alive: %v", pids)
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func runPids(dirs []string, cgroupParent string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if ours(pid, dirs, cgroupParent) {
			out = append(out, pid)
		}
	}
	return out
}

func ours(pid int, dirs []string, cgroupParent string) bool {
	base := filepath.Join("/proc", strconv.Itoa(pid))
	if st, err := os.ReadFile(filepath.Join(base, "stat")); err == nil && zombie(st) {
		return false
	}
	// A container's root is not seen from here (its own mount namespace
	// shows it as "/"); its cgroup is.
	if cg, err := os.ReadFile(filepath.Join(base, "cgroup")); err == nil && strings.Contains(string(cg), ":/"+cgroupParent+"/") {
		return true
	}
	exe, _ := os.Readlink(filepath.Join(base, "exe"))
	if !engineExes[filepath.Base(strings.TrimSuffix(exe, " (deleted)"))] {
		return false
	}
	cmdline, _ := os.ReadFile(filepath.Join(base, "cmdline"))
	for _, d := range dirs {
		if strings.Contains(string(cmdline), d+"/") {
			return true
		}
	}
	return false
}

func unmountUnder(dir string) error { return localcluster.UnmountUnder(dir) }

// bridgesFile lists the host bridges of the run's networks, so that a later
// Clean finds them after a killed run.
const bridgesFile = "bridges"

func recordBridge(dir, bridge string) error {
	f, err := os.OpenFile(filepath.Join(dir, bridgesFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = fmt.Fprintln(f, bridge)
	return err
}

// removeBridges deletes the recorded bridges that still exist (docker
// deletes a network's bridge on `network rm`, not when it is killed).
func removeBridges(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, bridgesFile))
	if err != nil {
		return nil
	}
	var errs []error
	for _, br := range strings.Fields(string(b)) {
		if _, err := os.Stat("/sys/class/net/" + br); err != nil {
			continue
		}
		// The host ends of the containers' veth pairs: the kernel deletes
		// them with the container's namespace, but only some time after its
		// last process is gone.
		ports, _ := os.ReadDir(filepath.Join("/sys/class/net", br, "brif"))
		for _, p := range append(ports, nil) {
			link := br
			if p != nil {
				link = p.Name()
			}
			if out, err := exec.Command("ip", "link", "delete", link).CombinedOutput(); err != nil {
				if _, serr := os.Stat("/sys/class/net/" + link); serr == nil {
					errs = append(errs, fmt.Errorf("ip link delete %s: %v: %s", link, err, out))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// removeCgroup removes the containers' parent cgroup from every hierarchy,
// deepest first. rmdir fails while a killed process is not yet reaped, so it
// tries for a few seconds.
func removeCgroup(parent string) error {
	pattern := filepath.Join("/sys/fs/cgroup", "*", parent)
	for try := 0; ; try++ {
		tops, _ := filepath.Glob(pattern)
		if len(tops) == 0 {
			return nil
		}
		if try == 50 {
			return fmt.Errorf("cgroups left: %v", tops)
		}
		removeCgroupTrees(tops)
		time.Sleep(100 * time.Millisecond)
	}
}

func removeCgroupTrees(tops []string) {
	for _, top := range tops {
		var dirs []string
		filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			os.Remove(dirs[i])
		}
	}
}

// removeEmptyTree removes a folder the run created, but only if it holds
// nothing but folders and stale sockets (a SIGKILLed containerd shim leaves
// its socket in /run/containerd/s): another program may have started using it.
func removeEmptyTree(top string) {
	var dirs []string
	err := filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&os.ModeSocket != 0 && stale(p) {
			return os.Remove(p)
		}
		if !d.IsDir() {
			return errors.New("not empty")
		}
		dirs = append(dirs, p)
		return nil
	})
	if err != nil {
		return
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		os.Remove(dirs[i])
	}
}

// stale reports whether nothing listens on a unix socket.
func stale(path string) bool {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// SnapshotHost is the local cluster's host snapshot plus what an engine
// could leave: its processes and the host folders docker uses by default.
// Take one before Start and one after Stop: their Diff should be empty.
func SnapshotHost(dir string) localcluster.HostState {
	s := localcluster.SnapshotHost(dir)
	for _, p := range hostFolders {
		if _, err := os.Lstat(p); err == nil {
			s["path"] = append(s["path"], p)
		}
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err == nil && engineExes[filepath.Base(exe)] && strings.HasPrefix(filepath.Base(exe), "docker") {
			s["process"] = append(s["process"], filepath.Base(exe))
		}
	}
	return s
}

func readSysctls(keys []string) map[string]string {
	m := map[string]string{}
	for _, k := range keys {
		if b, err := os.ReadFile(filepath.Join("/proc/sys", k)); err == nil {
			m[k] = strings.TrimSpace(string(b))
		}
	}
	return m
}

// restoreSysctls writes back the values Start recorded where they changed.
func restoreSysctls(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	var saved map[string]string
	if err := json.Unmarshal(b, &saved); err != nil {
		return err
	}
	var errs []error
	for k, v := range saved {
		p := filepath.Join("/proc/sys", k)
		if cur, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(cur)) != v {
			if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
				errs = append(errs, fmt.Errorf("restoring %s: %w", k, err))
			}
		}
	}
	return errors.Join(errs...)
}
