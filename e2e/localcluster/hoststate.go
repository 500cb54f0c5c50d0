package localcluster

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// HostState is what a cluster run may change on the host, as sets of
// comparable lines. Take one before Up and one after Down: Diff should be
// empty.
type HostState map[string][]string

// hostPaths are folders whose entries a cluster's parts could leave behind
// if they were not pointed at the run folder.
var hostPaths = []string{
	"/var/log/containers", "/var/log/pods", "/var/lib/cni", "/var/lib/kubelet",
	"/var/lib/containerd", "/run/containerd", "/var/run/netns", "/etc/cni/net.d", "/opt/containerd",
}

// SnapshotHost records the host's processes of the cluster's kinds, mount
// points, network links and namespaces, iptables rules and chains, the
// sysctls the cluster touches, cgroups and the folders above.
func SnapshotHost(dir string) HostState {
	if dir == "" {
		o := Options{}
		o.defaults()
		dir = o.Dir
	}
	s := HostState{}
	add := func(k, v string) { s[k] = append(s[k], v) }

	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err == nil && (ownNames[filepath.Base(exe)] || belongsTo(mustAtoi(e.Name()), dir)) {
			add("process", filepath.Base(exe))
		}
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 4 {
				add("mount", unescapeMount(f[4]))
			}
		}
	}
	links, _ := os.ReadDir("/sys/class/net")
	for _, l := range links {
		add("link", l.Name())
	}
	for _, tool := range []string{"iptables", "ip6tables"} {
		for table, lines := range iptablesSave(tool) {
			add("iptables", tool+" table "+table)
			for _, line := range lines {
				if strings.HasPrefix(line, ":") {
					line = "chain " + strings.Fields(line)[0]
				}
				add("iptables", tool+" "+table+" "+line)
			}
		}
	}
	for k, v := range readSysctls() {
		add("sysctl", k+"="+v)
	}
	cg, _ := filepath.Glob("/sys/fs/cgroup/*/*")
	for _, d := range cg {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			add("cgroup", d)
		}
	}
	for _, p := range append(hostPaths, dir) {
		if _, err := os.Lstat(p); err != nil {
			continue
		}
		add("path", p)
		es, _ := os.ReadDir(p)
		for _, e := range es {
			add("path", filepath.Join(p, e.Name()))
		}
	}
	for k := range s {
		sort.Strings(s[k])
	}
	return s
}

func mustAtoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// Diff lists what after has that s lacks ("+ kind: line") and the reverse
// ("- kind: line").
func (s HostState) Diff(after HostState) []string {
	var out []string
	kinds := map[string]bool{}
	for k := range s {
		kinds[k] = true
	}
	for k := range after {
		kinds[k] = true
	}
	keys := make([]string, 0, len(kinds))
	for k := range kinds {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		before := count(s[k])
		now := count(after[k])
		for v, n := range now {
			if before[v] < n {
				out = append(out, fmt.Sprintf("+ %s: %s", k, v))
			}
		}
		for v, n := range before {
			if now[v] < n {
				out = append(out, fmt.Sprintf("- %s: %s", k, v))
			}
		}
	}
	sort.Strings(out)
	return out
}

func count(xs []string) map[string]int {
	m := map[string]int{}
	for _, x := range xs {
		m[x]++
	}
	return m
}
