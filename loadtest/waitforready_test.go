package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nova-auth/nova-auth/internal/testenv"
)

// TestWaitForReady restarts the service in the middle of a run, as a rolling
// upgrade replaces a pod: without --wait-for-ready the calls made while the
// connection is re-established fail with UNAVAILABLE; with it they wait for
// the new server and none fails. (The e2e suite's upgrade steps use it.)
func TestWaitForReady(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts PostgreSQL and the service (make test runs it without -short)")
	}
	ctx := context.Background()
	sv := newService(t, "loadtest_restart")
	bin, dbURL, dir, keys, env := sv.bin, sv.dbURL, sv.dir, sv.keys, sv.env
	serve := func(gp, hp int) *testenv.Proc {
		p, err := testenv.Serve(bin, testenv.ServeOptions{Env: env, GRPCPort: gp, HTTPPort: hp})
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := p.WaitReady(wctx); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := serve(0, 0)
	gp, hp := port(t, p.GRPCAddr), port(t, p.HTTPAddr)
	defer func() { p.Stop() }() //nolint:errcheck

	// The data set, seeded once through a short run.
	data := filepath.Join(dir, "seed", "data.json")
	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"--addr", p.GRPCAddr, "--seed", "50", "--database-url", dbURL,
		"--jwt-private-key-file", filepath.Join(keys, "private.pem"), "--jwt-issuer", "https://auth.nova.test",
		"--jwt-audience", "nova", "--rps", "100", "--duration", "1s", "--warmup", "0", "--warmup-time", "0s", "--min-rps", "0", "--progress", "0",
		"--p95", "0", "--p99", "0", // seeding only: no latency gates on a busy machine
		"--out", filepath.Dir(data)}, &stdout, &stderr); code != 0 {
		t.Fatalf("seeding run: exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}

	// The start-up check through a connection refused at first, as a new
	// client pod meets a server whose policy engine has not admitted it yet
	// (kube-router REJECTs): the check waits for the connection within its
	// deadline instead of giving up after the pool's quick retries.
	t.Run("start-up check waits", func(t *testing.T) {
		d, err := loadDataset(data)
		if err != nil {
			t.Fatal(err)
		}
		fp, err := testenv.FreePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		front := net.JoinHostPort("127.0.0.1", strconv.Itoa(fp))
		var opened sync.WaitGroup
		opened.Go(func() {
			time.Sleep(1500 * time.Millisecond)
			forward(t, front, p.GRPCAddr)
		})
		defer opened.Wait() // t's cleanup is registered before t ends
		start := time.Now()
		if err := checkDataset(ctx, Target{Addr: front, DialTimeout: 5 * time.Second}, d); err != nil {
			t.Fatalf("start-up check through a port that refuses for 1.5 s: %v", err)
		}
		if w := time.Since(start); w < time.Second {
			t.Errorf("the check passed after %s, before the port took connections: the test no longer refuses first", w)
		}
	})

	// failed runs the mix for 4 s while the service is stopped and started
	// again on the same ports after 1.5 s, and returns how many calls failed.
	failed := func(extra ...string) int {
		out := t.TempDir()
		done := make(chan int)
		go func() {
			var stdout, stderr bytes.Buffer
			code := run(ctx, append([]string{"--addr", p.GRPCAddr, "--data", data, "--rps", "300", "--duration", "4s",
				"--warmup", "0", "--warmup-time", "0s", "--timeout", "10s", "--max-error-rate", "-1", "--p95", "0", "--p99", "0",
				"--min-rps", "0", "--progress", "0", "--out", out}, extra...), &stdout, &stderr)
			if code != 0 {
				t.Errorf("run %v: exit %d\n%s\n%s", extra, code, stdout.String(), stderr.String())
			}
			done <- code
		}()
		time.Sleep(1500 * time.Millisecond)
		if err := p.Stop(); err != nil {
			t.Errorf("stopping the service: %v", err)
		}
		p = serve(gp, hp)
		<-done
		return errorsIn(t, filepath.Join(out, "summary.json"))
	}
	if n := failed(); n == 0 {
		t.Error("without --wait-for-ready no call failed across the restart: the test no longer shows what the flag is for")
	}
	if n := failed("--wait-for-ready"); n != 0 {
		t.Errorf("with --wait-for-ready %d calls failed across the restart; want 0", n)
	}
}

func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// errorsIn reads the mix's failed-call count from a run's summary.json.
func errorsIn(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Results []struct {
			Name   string         `json:"name"`
			Calls  int            `json:"calls"`
			Errors int            `json:"errors"`
			Msgs   map[string]int `json:"errors_by_message"`
		} `json:"results"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	for _, r := range s.Results {
		if r.Name == "mix" {
			t.Logf("%d of %d calls failed %v", r.Errors, r.Calls, r.Msgs)
			return r.Errors
		}
	}
	t.Fatalf("%s has no mix row", file)
	return 0
}

// forward listens on addr until the test ends and copies each connection to
// and from to.
func forward(t *testing.T, addr, to string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Errorf("forwarder: %v", err)
		return
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, err := net.Dial("tcp", to)
				if err != nil {
					return
				}
				defer b.Close()
				go io.Copy(b, c) //nolint:errcheck // ends when either side closes
				io.Copy(c, b)    //nolint:errcheck
			}()
		}
	}()
}
