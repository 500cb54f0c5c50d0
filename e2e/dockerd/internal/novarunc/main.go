// Command nova-runc is the OCI runtime the private dockerd (e2e/dockerd) uses:
// it removes from a container's capability sets every capability this
// machine's bounding set lacks, then execs runc with the same arguments.
//
// Every kind node is a --privileged container, for which docker asks for all
// capabilities; where the host's bounding set lacks one (CAP_SYS_RESOURCE
// here), runc fails with "unable to apply caps: operation not permitted".
// runc reads capabilities from two places, so both are rewritten: the
// bundle's config.json (create, run) and the process spec of an exec
// (`docker exec --privileged`, which kind uses for every step).
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	args := os.Args[1:]
	if err := rewriteSpec(args, boundingSet()); err != nil {
		fmt.Fprintln(os.Stderr, "nova-runc:", err)
		os.Exit(1)
	}
	runc, err := exec.LookPath("runc")
	if err == nil {
		err = syscall.Exec(runc, append([]string{"runc"}, args...), os.Environ())
	}
	fmt.Fprintln(os.Stderr, "nova-runc: exec runc:", err)
	os.Exit(127)
}

// globalValueFlags are runc's global flags that take a value as the next
// argument; the shim passes --root, --log and --log-format before the command.
var globalValueFlags = map[string]bool{"--root": true, "--log": true, "--log-format": true, "--criu": true, "--rootless": true}

// rewriteSpec finds the spec file the runc command line reads capabilities
// from and removes those not in allowed. Commands without capabilities (state,
// kill, delete, features, --version) are left alone.
func rewriteSpec(args []string, allowed map[string]bool) error {
	i := 0
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		if globalValueFlags[args[i]] {
			i++
		}
		i++
	}
	if i >= len(args) {
		return nil
	}
	cmd, rest := args[i], args[i+1:]
	switch cmd {
	case "create", "run":
		bundle := flagValue(rest, "--bundle", "-b")
		if bundle == "" {
			bundle = "."
		}
		return rewriteFile(filepath.Join(bundle, "config.json"), true, allowed)
	case "exec":
		if p := flagValue(rest, "--process", "-p"); p != "" {
			return rewriteFile(p, false, allowed)
		}
	}
	return nil
}

// flagValue returns the value of a flag given as "--name V", "--name=V" or
// "-n V", or "".
func flagValue(args []string, long, short string) string {
	for i, a := range args {
		if a == "--" {
			break
		}
		if (a == long || a == short) && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, long+"="); ok {
			return v
		}
	}
	return ""
}

// rewriteFile filters the capability lists of a bundle's config.json
// (inConfig: under "process") or of an exec's process spec (top level), and
// writes the file back only when something was removed.
func rewriteFile(path string, inConfig bool, allowed map[string]bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, changed, err := filterCaps(b, inConfig, allowed)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if !changed {
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	tmp := path + ".nova-runc"
	if err := os.WriteFile(tmp, out, fi.Mode().Perm()); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// filterCaps returns the spec with every capability set filtered to allowed.
// Numbers are kept as written (memory limits can exceed float64's precision).
func filterCaps(spec []byte, inConfig bool, allowed map[string]bool) ([]byte, bool, error) {
	dec := json.NewDecoder(bytes.NewReader(spec))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, false, err
	}
	proc := doc
	if inConfig {
		p, ok := doc["process"].(map[string]any)
		if !ok {
			return spec, false, nil
		}
		proc = p
	}
	caps, ok := proc["capabilities"].(map[string]any)
	if !ok {
		return spec, false, nil
	}
	changed := false
	for set, v := range caps {
		list, ok := v.([]any)
		if !ok {
			continue
		}
		kept := make([]any, 0, len(list))
		for _, c := range list {
			if name, ok := c.(string); ok && !allowed[name] && knownCap(name) {
				changed = true
				continue
			}
			kept = append(kept, c)
		}
		caps[set] = kept
	}
	if !changed {
		return spec, false, nil
	}
	out, err := json.Marshal(doc)
	return out, true, err
}

// capNames are the capabilities by number (linux/capability.h).
var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
	"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
	"CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

// knownCap keeps names this program cannot judge (a newer kernel's) for runc
// to decide on.
func knownCap(name string) bool {
	for _, n := range capNames {
		if n == name {
			return true
		}
	}
	return false
}

// boundingSet returns the capabilities in this process's bounding set
// (CapBnd in /proc/self/status), or every known one if it cannot be read.
func boundingSet() map[string]bool {
	m := map[string]bool{}
	mask := ^uint64(0)
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
				if n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64); err == nil {
					mask = n
				}
			}
		}
	}
	for i, n := range capNames {
		if mask&(1<<uint(i)) != 0 {
			m[n] = true
		}
	}
	return m
}
