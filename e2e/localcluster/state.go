package localcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// stateFile, in the run folder, is what Attach and the cleanup of a killed
// run know of the cluster.
const stateFile = "state.json"

// state is the content of stateFile.
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

// writeState records the cluster in st and writes it, replacing the file in
// one rename so that a reader never sees half of it.
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

// saveState rewrites the state file with the cluster as it is now, keeping
// the owner written at Up.
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

// cluster is the recorded cluster, attached to: its processes are not this
// process's children.
func (st *state) cluster(opts Options) *Cluster {
	c := &Cluster{
		Dir: opts.Dir, Server: st.Server, BinDir: st.BinDir, GatewayIP: st.GatewayIP,
		PodSubnet: st.PodSubnet, ServiceSubnet: st.SvcSubnet,
		bridge: st.Bridge, opts: opts, sysctls: st.Sysctls, created: st.Created, tables: st.Tables, attached: true,
	}
	c.Kubeconfig = c.path("kubeconfig")
	for _, r := range st.Procs {
		c.procs = append(c.procs, &proc{procRecord: r})
	}
	return c
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
