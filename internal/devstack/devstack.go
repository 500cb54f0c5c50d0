// Package devstack runs the whole service locally from its own binary: a
// throwaway PostgreSQL, migrations, a demo user with permissions, a demo key
// pair and token, and `auth-service serve`. `make run` and the load test use
// it; every step goes through the binary's own commands, as an operator's
// would.
package devstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nova-auth/nova-auth/internal/testenv"
)

// Options says where and how to run.
type Options struct {
	Bin      string // path of the auth-service binary
	Dir      string // state folder (wiped at start); a temp dir when ""
	GRPCPort int    // 0: a free port
	HTTPPort int    // 0: a free port
	Env      []string
	Log      io.Writer // the service's JSON logs; discarded when nil
}

// Stack is a running local service.
type Stack struct {
	GRPCAddr, HTTPAddr string
	DatabaseURL        string
	UserID, Email      string
	Token              string
	Env                []string // what the service was started with
	Bin                string

	pg  *testenv.Postgres
	cmd *exec.Cmd
	dir string
	tmp bool
}

// Start brings the stack up and returns once the service reports SERVING.
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	s := &Stack{Bin: o.Bin, dir: o.Dir}
	if s.dir == "" {
		if s.dir, err = os.MkdirTemp("", "nova-auth-dev-"); err != nil {
			return nil, err
		}
		s.tmp = true
		// PostgreSQL may run as another user (when we are root): it must be
		// able to reach its folder inside this one.
		if err := os.Chmod(s.dir, 0o755); err != nil {
			return nil, err
		}
	} else {
		if err := os.RemoveAll(s.dir); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(s.dir, 0o755); err != nil {
			return nil, err
		}
	}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	if s.pg, err = testenv.StartPostgres(ctx, filepath.Join(s.dir, "pg")); err != nil {
		return nil, err
	}
	if s.DatabaseURL, err = s.pg.CreateDatabase(ctx, "nova_auth"); err != nil {
		return nil, err
	}
	keys := filepath.Join(s.dir, "keys")
	if _, err := s.run(ctx, nil, "keys", "generate", "--out-dir", keys); err != nil {
		return nil, err
	}
	grpcPort, httpPort := o.GRPCPort, o.HTTPPort
	if grpcPort == 0 {
		grpcPort = freePort()
	}
	if httpPort == 0 {
		httpPort = freePort()
	}
	s.GRPCAddr = "127.0.0.1:" + strconv.Itoa(grpcPort)
	s.HTTPAddr = "127.0.0.1:" + strconv.Itoa(httpPort)
	s.Env = append([]string{
		"DATABASE_URL=" + s.DatabaseURL,
		"BIND_HOST=127.0.0.1",
		"GRPC_PORT=" + strconv.Itoa(grpcPort),
		"HTTP_PORT=" + strconv.Itoa(httpPort),
		"JWT_PUBLIC_KEY_FILE=" + filepath.Join(keys, "public.pem"),
		"JWT_PRIVATE_KEY_FILE=" + filepath.Join(keys, "private.pem"),
		"JWT_ISSUER=http://localhost/nova-auth",
		"JWT_AUDIENCE=nova",
		"SHUTDOWN_DELAY=0s",
	}, o.Env...)

	if _, err := s.run(ctx, nil, "migrate"); err != nil {
		return nil, err
	}
	s.Email = "demo@nova.local"
	id, err := s.run(ctx, strings.NewReader("demo-password-123\n"), "users", "create",
		"--email", s.Email, "--username", "demo", "--password-stdin")
	if err != nil {
		return nil, err
	}
	s.UserID = strings.TrimSpace(id)
	for _, p := range []string{"users:read", "users:write"} {
		if _, err := s.run(ctx, nil, "permissions", "grant", "--user", s.UserID, "--permission", p); err != nil {
			return nil, err
		}
	}
	tok, err := s.run(ctx, nil, "tokens", "issue", "--user", s.UserID, "--ttl", "24h")
	if err != nil {
		return nil, err
	}
	s.Token = strings.TrimSpace(tok)

	s.cmd = exec.Command(s.Bin, "serve")
	s.cmd.Env = append(os.Environ(), s.Env...)
	s.cmd.Stdout, s.cmd.Stderr = o.Log, o.Log
	if o.Log == nil {
		s.cmd.Stdout, s.cmd.Stderr = io.Discard, io.Discard
	}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := s.run(ctx, nil, "healthcheck", "--addr", s.GRPCAddr, "--timeout", "1s"); err == nil {
			return s, nil
		} else if time.Now().After(deadline) {
			return nil, fmt.Errorf("service did not become SERVING in 30s: %w", err)
		} else if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Run runs one auth-service command against the stack and returns stdout.
func (s *Stack) Run(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	return s.run(ctx, stdin, args...)
}

func (s *Stack) run(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, s.Bin, args...)
	cmd.Env = append(os.Environ(), s.Env...)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("auth-service %s: %w: %s", args[0], err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// Stop sends SIGTERM to the service, waits for it to drain, then stops
// PostgreSQL and removes a temporary state folder.
func (s *Stack) Stop() error {
	var err error
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // already gone is fine
		done := make(chan error, 1)
		go func() { done <- s.cmd.Wait() }()
		select {
		case err = <-done:
		case <-time.After(30 * time.Second):
			s.cmd.Process.Kill() //nolint:errcheck
			err = errors.New("service did not stop within 30s of SIGTERM")
		}
	}
	if s.pg != nil {
		s.pg.Close()
	}
	if s.tmp {
		os.RemoveAll(s.dir)
	}
	return err
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
