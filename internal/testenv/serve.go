package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// ServeOptions says how to run `auth-service serve`.
type ServeOptions struct {
	// Host is BIND_HOST and where the free ports are looked for; 127.0.0.1
	// when "".
	Host string
	// GRPCPort and HTTPPort are the ports to listen on; a free one each when
	// 0. Given again, they restart a stopped service on the same addresses.
	GRPCPort, HTTPPort int
	// Env is the service's whole environment, nothing inherited (add
	// os.Environ() to pass this process's on). BIND_HOST, GRPC_PORT and
	// HTTP_PORT come from the fields above and win over Env.
	Env []string
	// Log receives the service's stdout and stderr; discarded when nil.
	Log io.Writer
	// Setpgid runs the service in its own process group, so that a
	// terminal's Ctrl-C reaches only the caller, which stops it with one
	// SIGTERM. The service cuts its drain short on a second signal.
	Setpgid bool
}

// stopWait bounds how long Signal waits for the exit before it kills.
const stopWait = 30 * time.Second

// Proc is one `auth-service serve` process.
type Proc struct {
	GRPCAddr string // host:port
	HTTPAddr string // host:port

	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited
	err  error         // its exit, set before done is closed
}

// Serve starts `bin serve` as o says and returns at once; WaitReady waits
// for it to take calls.
func Serve(bin string, o ServeOptions) (*Proc, error) {
	host := o.Host
	if host == "" {
		host = "127.0.0.1"
	}
	gp, hp := o.GRPCPort, o.HTTPPort
	var err error
	if gp == 0 {
		if gp, err = FreePort(host); err != nil {
			return nil, err
		}
	}
	if hp == 0 {
		if hp, err = FreePort(host); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(slices.Clip(o.Env), "BIND_HOST="+host, "GRPC_PORT="+strconv.Itoa(gp), "HTTP_PORT="+strconv.Itoa(hp))
	cmd.Stdout, cmd.Stderr = o.Log, o.Log
	if o.Log == nil {
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	}
	if o.Setpgid {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start auth-service serve: %w", err)
	}
	p := &Proc{
		GRPCAddr: net.JoinHostPort(host, strconv.Itoa(gp)),
		HTTPAddr: net.JoinHostPort(host, strconv.Itoa(hp)),
		cmd:      cmd,
		done:     make(chan struct{}),
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// WaitReady waits until /readiness answers 200: the database answers and
// the schema is current. The service flips it in the same step as gRPC
// health to SERVING.
func (p *Proc) WaitReady(ctx context.Context) error { return p.WaitHTTP(ctx, "/readiness") }

// WaitHTTP waits until GET path answers 200 (/health: the process is up,
// ready or not). It gives up when ctx ends or the process exits, and says
// which.
func (p *Proc) WaitHTTP(ctx context.Context, path string) error {
	url := "http://" + p.HTTPAddr + path
	client := &http.Client{Timeout: time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		select {
		case <-p.done:
			return fmt.Errorf("GET %s: auth-service serve exited (%v) before it answered 200", url, p.err)
		case <-ctx.Done():
			return fmt.Errorf("GET %s: no 200 before %w (last: %v)", url, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop sends SIGTERM, as Kubernetes does, and waits for the exit.
func (p *Proc) Stop() error { return p.Signal(syscall.SIGTERM) }

// Signal sends sig and waits for the exit, killing the process when it has
// not exited 30s later. It returns the exit: nil for status 0. Called again
// after the exit, it returns the same.
func (p *Proc) Signal(sig os.Signal) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	p.cmd.Process.Signal(sig) //nolint:errcheck // exited meanwhile: done says so below
	select {
	case <-p.done:
		return p.err
	case <-time.After(stopWait):
		p.cmd.Process.Kill() //nolint:errcheck
		<-p.done
		return fmt.Errorf("auth-service serve did not exit within %v of %v; killed", stopWait, sig)
	}
}

// FreePort returns a TCP port on host that nothing listens on right now.
func FreePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
