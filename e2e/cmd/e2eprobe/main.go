// Command e2eprobe is what the e2e suite runs inside the cluster, from its own
// image, where the service's image has no tool for it:
//
//	e2eprobe dial [--settle D] [--retry D] HOST:PORT
//	                           open a TCP connection: exit 0 when it connects
//	e2eprobe http [--settle D] [--retry D] URL [TEXT]
//	                           GET URL: exit 0 on 200 (with TEXT in the body when given);
//	                           otherwise exit 1, the error on stderr (refused, timeout, status)
//	e2eprobe calls [flags]     call the auth service through the clients pool (GRPC_CLIENT_*
//	                           environment), as another Nova service does, for --duration at
//	                           --rate: reads (GetUser, CheckUserExists) and writes
//	                           (RecordFailedLogin); the last line of stdout is a JSON Summary
//
// The suite reads both through the pod's phase and log.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/status"

	"github.com/nova-auth/nova-auth/clients"
	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: e2eprobe dial HOST:PORT | e2eprobe http URL [TEXT] | e2eprobe calls [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "dial":
		err = dial(os.Args[2:])
	case "http":
		err = httpGet(os.Args[2:])
	case "calls":
		err = calls(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2eprobe:", err)
		os.Exit(1)
	}
}

// attempts parses dial's and http's flags and runs try as they say: after
// --settle (a NetworkPolicy engine applies policies to a new pod a moment
// after it starts: before, its egress is open and its address is in no
// allow list), then again every second until it succeeds or --retry has
// passed. The last error is returned.
func attempts(name string, args []string, nargs [2]int, try func(args []string) error) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	settle := fs.Duration("settle", 0, "wait this long first")
	retry := fs.Duration("retry", 0, "try again every second for this long until it works")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < nargs[0] || fs.NArg() > nargs[1] {
		return fmt.Errorf("%s: want %d to %d arguments, got %q", name, nargs[0], nargs[1], fs.Args())
	}
	time.Sleep(*settle)
	deadline := time.Now().Add(*retry)
	for {
		err := try(fs.Args())
		if err == nil || time.Now().After(deadline) {
			return err
		}
		fmt.Fprintf(os.Stderr, "%s: %v (trying again)\n", time.Now().UTC().Format(time.TimeOnly), err)
		time.Sleep(time.Second)
	}
}

func dial(args []string) error {
	return attempts("dial", args, [2]int{1, 1}, func(args []string) error {
		c, err := net.DialTimeout("tcp", args[0], 5*time.Second)
		if err != nil {
			return err
		}
		fmt.Printf("connected to %s (%s)\n", args[0], c.RemoteAddr())
		return c.Close()
	})
}

func httpGet(args []string) error {
	return attempts("http", args, [2]int{1, 2}, func(args []string) error {
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(args[0])
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		if err != nil {
			return err
		}
		fmt.Printf("%s: %s, %d bytes\n", args[0], resp.Status, len(body))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %s", resp.Status)
		}
		if len(args) == 2 && !strings.Contains(string(body), args[1]) {
			return fmt.Errorf("%q not in the body", args[1])
		}
		return nil
	})
}

// Summary is what calls prints last, as one JSON line.
type Summary struct {
	Calls  int `json:"calls"`
	Failed int `json:"failed"`
	// Failures counts the failed calls by method and status code.
	Failures map[string]int `json:"failures"`
	// Writes counts, per user id, the RecordFailedLogin calls that
	// succeeded: each is a failed login the database must hold.
	Writes map[string]int `json:"writes"`
	// WritesFailed counts, per user id, the RecordFailedLogin calls that
	// failed (the pool never retries them): each may or may not have
	// been stored.
	WritesFailed map[string]int `json:"writes_failed"`
	// FirstError is the first failed call's error.
	FirstError string `json:"first_error,omitempty"`
}

func calls(args []string) error {
	fs := flag.NewFlagSet("calls", flag.ContinueOnError)
	users := fs.String("users", "", "comma-separated user ids to call with (their failed logins are counted up)")
	duration := fs.Duration("duration", time.Minute, "how long to call")
	rate := fs.Int("rate", 50, "calls per second, all workers together")
	workers := fs.Int("workers", 8, "concurrent callers")
	writeEvery := fs.Int("write-every", 4, "every n-th call is a RecordFailedLogin")
	progress := fs.Duration("progress", 10*time.Second, "progress line interval")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ids := strings.Split(*users, ",")
	if *users == "" || *rate < 1 || *workers < 1 || *writeEvery < 1 {
		return fmt.Errorf("--users, and --rate, --workers, --write-every of at least 1, are needed")
	}
	pool, err := clients.FromEnv()
	if err != nil {
		return err
	}
	defer pool.Close()
	cl := pool.Auth()
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	if err := pool.WaitReady(wctx, "auth"); err != nil {
		return fmt.Errorf("the pool never became ready: %w", err)
	}

	s := Summary{Failures: map[string]int{}, Writes: map[string]int{}, WritesFailed: map[string]int{}}
	var mu sync.Mutex
	record := func(method, id string, write bool, err error) {
		mu.Lock()
		defer mu.Unlock()
		s.Calls++
		if err == nil {
			if write {
				s.Writes[id]++
			}
			return
		}
		s.Failed++
		s.Failures[method+" "+status.Code(err).String()]++
		if write {
			s.WritesFailed[id]++
		}
		if s.FirstError == "" {
			s.FirstError = fmt.Sprintf("%s %s: %v", time.Now().UTC().Format(time.TimeOnly), method, err)
		}
		fmt.Printf("%s %s failed: %v\n", time.Now().UTC().Format(time.TimeOnly), method, err)
	}
	// One ticket per call, at the rate, for the workers to take.
	tickets := make(chan int)
	go func() {
		defer close(tickets)
		t := time.NewTicker(time.Second / time.Duration(*rate))
		defer t.Stop()
		for n := 0; ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				select {
				case tickets <- n:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	var wg sync.WaitGroup
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range tickets {
				// Each user in turn for writeEvery calls, one a
				// write: the writes spread over every user.
				id := ids[(n / *writeEvery)%len(ids)]
				// A call's own deadline comes from the pool
				// (GRPC_CLIENT_TIMEOUT), not from the run's end.
				cctx := context.Background()
				var err error
				switch {
				case n%*writeEvery == 0:
					_, err = cl.RecordFailedLogin(cctx, &authpb.RecordFailedLoginRequest{UserId: id})
					record("RecordFailedLogin", id, true, err)
				case n%2 == 0:
					_, err = cl.GetUser(cctx, &authpb.GetUserRequest{UserId: id})
					record("GetUser", id, false, err)
				default:
					_, err = cl.CheckUserExists(cctx, &authpb.CheckUserExistsRequest{UserId: id})
					record("CheckUserExists", id, false, err)
				}
			}
		}()
	}
	start := time.Now()
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(*progress)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				mu.Lock()
				fmt.Printf("%s %4.0fs: %d calls, %d failed\n", time.Now().UTC().Format(time.TimeOnly), time.Since(start).Seconds(), s.Calls, s.Failed)
				mu.Unlock()
			}
		}
	}()
	wg.Wait()
	close(done)
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	fmt.Println(string(b))
	return nil
}
