package localcluster

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// sysctls are the host settings the cluster's parts change (the CNI bridge
// plugin turns on forwarding; kubelet sets the vm/kernel ones). Up records
// them and Down puts them back.
var sysctls = []string{
	"net/ipv4/ip_forward",
	"net/ipv4/conf/all/route_localnet",
	"net/bridge/bridge-nf-call-iptables",
	"net/bridge/bridge-nf-call-ip6tables",
	"vm/overcommit_memory",
	"vm/panic_on_oom",
	"kernel/panic",
	"kernel/panic_on_oops",
	"kernel/keys/root_maxkeys",
	"kernel/keys/root_maxbytes",
}

func readSysctls() map[string]string {
	m := map[string]string{}
	for _, k := range sysctls {
		if b, err := os.ReadFile("/proc/sys/" + k); err == nil {
			m[k] = strings.TrimSpace(string(b))
		}
	}
	return m
}

// chainPrefixes are the iptables chains kube-proxy, kubelet and the CNI
// plugins create.
var chainPrefixes = []string{"KUBE-", "CNI-"}

// hostFolders are fixed paths that kubelet (/var/log/containers,
// /var/lib/kubelet/device-plugins) and containerd's CNI and shim code
// (/var/lib/cni, /run/containerd/s) use whatever they are configured with.
// Down removes those the run created, and only its own entries from the others.
var hostFolders = []string{"/run/containerd", "/var/lib/cni", "/var/lib/kubelet", "/var/log/containers", "/var/log/pods"}

func missingHostFolders() []string {
	var out []string
	for _, p := range hostFolders {
		if _, err := os.Lstat(p); os.IsNotExist(err) {
			out = append(out, p)
		}
	}
	return out
}

// hostChanges is what the cleanup must undo beyond the run folder.
type hostChanges struct {
	bridge  string
	sysctls map[string]string
	created []string
	tables  []string // nil: unknown, leave every table
}

// cleanHost removes everything a run in dir may have left on the host, whether
// it ended with Down or was killed: processes, mounts, the bridge, iptables
// chains, kubelet's log links, cgroups; it restores the recorded sysctls and
// deletes dir. Each step runs even when an earlier one failed.
func cleanHost(dir string, h hostChanges) error {
	bridge, saved := h.bridge, h.sysctls
	var errs []error
	if err := killAll(dir, 20*time.Second); err != nil {
		errs = append(errs, err)
	}
	if err := unmountUnder(dir); err != nil {
		errs = append(errs, err)
	}
	if bridge != "" {
		if _, err := os.Stat("/sys/class/net/" + bridge); err == nil {
			if out, err := exec.Command("ip", "link", "delete", bridge).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("ip link delete %s: %v: %s", bridge, err, out))
			}
		}
	}
	for _, tool := range []string{"iptables", "ip6tables"} {
		if err := removeChains(tool); err != nil {
			errs = append(errs, err)
		}
	}
	if h.tables != nil {
		removeEmptyTables(h.tables)
	}
	removeLogLinks(dir)
	removeCNIResults()
	for _, p := range h.created {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	removeCgroups()
	for k, v := range saved {
		if cur, err := os.ReadFile("/proc/sys/" + k); err == nil && strings.TrimSpace(string(cur)) != v {
			if err := os.WriteFile("/proc/sys/"+k, []byte(v), 0o644); err != nil {
				errs = append(errs, fmt.Errorf("restoring %s: %w", k, err))
			}
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// unmountUnder detaches every mount point at or below dir, deepest first.
func unmountUnder(dir string) error {
	for try := 0; try < 5; try++ {
		mounts := mountsUnder(dir)
		if len(mounts) == 0 {
			return nil
		}
		for i := len(mounts) - 1; i >= 0; i-- {
			syscall.Unmount(mounts[i], syscall.MNT_DETACH)
		}
	}
	if m := mountsUnder(dir); len(m) > 0 {
		return fmt.Errorf("mounts left under %s: %v", dir, m)
	}
	return nil
}

func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out
}

func unescapeMount(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

// removeChains rewrites each table without the chains of chainPrefixes and
// without the rules that jump to them, in one iptables-restore per table.
func removeChains(tool string) error {
	if _, err := exec.LookPath(tool + "-save"); err != nil {
		return nil
	}
	var errs []error
	for _, table := range []string{"filter", "nat", "mangle", "raw"} {
		out, err := exec.Command(tool+"-save", "-t", table).Output()
		if err != nil {
			continue // table not present
		}
		filtered, changed := filterChains(out)
		if !changed {
			continue
		}
		cmd := exec.Command(tool+"-restore", "-w", "5")
		cmd.Stdin = bytes.NewReader(filtered)
		if b, err := cmd.CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("%s-restore %s: %v: %s", tool, table, err, b))
		}
	}
	return errors.Join(errs...)
}

// iptablesSave returns each existing table's lines of tool-save. Asked for
// one table with -t, the nf_tables iptables-save prints an absent table's
// built-in chains, so the whole dump is read instead.
func iptablesSave(tool string) map[string][]string {
	out, err := exec.Command(tool + "-save").Output()
	if err != nil {
		return nil
	}
	tables := map[string][]string{}
	cur := ""
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			cur = strings.TrimPrefix(line, "*")
			tables[cur] = []string{}
		case cur != "" && (strings.HasPrefix(line, ":") || strings.HasPrefix(line, "-A")):
			tables[cur] = append(tables[cur], line)
		}
	}
	return tables
}

// iptablesTables lists the tables that exist, as "iptables nat".
func iptablesTables() []string {
	out := []string{}
	for _, tool := range []string{"iptables", "ip6tables"} {
		for table := range iptablesSave(tool) {
			out = append(out, tool+" "+table)
		}
	}
	sort.Strings(out)
	return out
}

// removeEmptyTables deletes the nftables-backed iptables tables the run
// brought into being (kube-proxy and kubelet create them), when they hold
// nothing but built-in chains that accept. It needs nft; without it the
// empty tables stay, which changes no packet's fate.
func removeEmptyTables(before []string) {
	if _, err := exec.LookPath("nft"); err != nil {
		return
	}
	had := map[string]bool{}
	for _, t := range before {
		had[t] = true
	}
	for _, tool := range []string{"iptables", "ip6tables"} {
		family := map[string]string{"iptables": "ip", "ip6tables": "ip6"}[tool]
		if v, _ := exec.Command(tool, "--version").Output(); !bytes.Contains(v, []byte("nf_tables")) {
			continue
		}
		for table, lines := range iptablesSave(tool) {
			if had[tool+" "+table] {
				continue
			}
			empty := true
			for _, line := range lines {
				if strings.HasPrefix(line, "-A") || !strings.Contains(line, " ACCEPT ") {
					empty = false
				}
			}
			if empty {
				exec.Command("nft", "delete", "table", family, table).Run()
			}
		}
	}
}

func ownChain(name string) bool {
	for _, p := range chainPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func filterChains(save []byte) ([]byte, bool) {
	var buf bytes.Buffer
	changed := false
	sc := bufio.NewScanner(bytes.NewReader(save))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		drop := false
		switch {
		case strings.HasPrefix(line, ":") && ownChain(strings.TrimPrefix(f[0], ":")):
			drop = true
		case strings.HasPrefix(line, "-A ") && len(f) > 1:
			if ownChain(f[1]) {
				drop = true
			}
			for i := 2; i+1 < len(f); i++ {
				if (f[i] == "-j" || f[i] == "-g") && ownChain(f[i+1]) {
					drop = true
				}
			}
		}
		if drop {
			changed = true
			continue
		}
		buf.WriteString(line)
		buf.WriteByte('\n')
	}
	return buf.Bytes(), changed
}

// removeLogLinks deletes kubelet's links in /var/log/containers (a fixed path
// in kubelet) that point into dir or nowhere.
func removeLogLinks(dir string) {
	const logs = "/var/log/containers"
	entries, err := os.ReadDir(logs)
	if err != nil {
		return
	}
	for _, e := range entries {
		p := filepath.Join(logs, e.Name())
		t, err := os.Readlink(p)
		if err != nil {
			continue
		}
		if strings.HasPrefix(t, dir+"/") {
			os.Remove(p)
		} else if _, err := os.Stat(p); err != nil {
			os.Remove(p)
		}
	}
}

// removeCNIResults deletes the CNI cache entries of the cluster's network,
// which a killed run leaves in libcni's fixed cache folder.
func removeCNIResults() {
	m, _ := filepath.Glob("/var/lib/cni/results/" + cniNetworkName + "-*")
	for _, p := range m {
		os.Remove(p)
	}
}

// cgroupParents are the cgroup folders the cluster's containers live in.
var cgroupParents = []string{"k8s.io"}

// removeCgroups removes the (by then empty) cgroups of the containers, in
// every v1 hierarchy and in the v2 one.
func removeCgroups() {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	roots = append(roots, "/sys/fs/cgroup")
	for _, root := range roots {
		for _, parent := range cgroupParents {
			p := filepath.Join(root, parent)
			if _, err := os.Stat(p); err != nil {
				continue
			}
			var dirs []string
			filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					dirs = append(dirs, path)
				}
				return nil
			})
			sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
			for _, d := range dirs {
				syscall.Rmdir(d)
			}
		}
	}
}
