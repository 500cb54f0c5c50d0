// Package devstack runs the whole service locally from its own binary: what
// `make run` and the load test add to testenv's throwaway PostgreSQL and
// serving process — migrations, a demo user with permissions, a demo key
// pair and token. Every step goes through the binary's own commands, as an
// operator's would.
package devstack

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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

	o                  Options
	grpcPort, httpPort int
	keys               string // the demo key pair's folder
	pg                 *testenv.Postgres
	proc               *testenv.Proc
	dir                string
	tmp                bool
}

// readyWait bounds how long Start waits for the service to take calls.
const readyWait = 30 * time.Second

// Start brings the stack up and returns once the service reports SERVING.
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	s := &Stack{Bin: o.Bin, o: o, dir: o.Dir}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	// The bring-up, one step a line; a step's name starts its errors.
	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"state folder", s.makeDir},
		{"start PostgreSQL", s.startPostgres},
		{"generate the demo key pair", s.generateKeys},
		{"choose the ports", s.setEnv},
		{"migrate", s.migrate},
		{"create the demo user", s.seed},
		{"serve", s.serve},
		{"wait until SERVING", s.waitReady},
	}
	for _, st := range steps {
		if err := st.run(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", st.name, err)
		}
	}
	return s, nil
}

func (s *Stack) makeDir(context.Context) (err error) {
	if s.dir == "" {
		if s.dir, err = os.MkdirTemp("", "nova-auth-dev-"); err != nil {
			return err
		}
		s.tmp = true
		// PostgreSQL may run as another user (when we are root): it must be
		// able to reach its folder inside this one.
		return os.Chmod(s.dir, 0o755)
	}
	if err := os.RemoveAll(s.dir); err != nil {
		return err
	}
	return os.MkdirAll(s.dir, 0o755)
}

func (s *Stack) startPostgres(ctx context.Context) (err error) {
	if s.pg, err = testenv.StartPostgres(ctx, filepath.Join(s.dir, "pg")); err != nil {
		return err
	}
	s.DatabaseURL, err = s.pg.CreateDatabase(ctx, "nova_auth")
	return err
}

func (s *Stack) generateKeys(ctx context.Context) error {
	s.keys = filepath.Join(s.dir, "keys")
	_, err := s.run(ctx, nil, "keys", "generate", "--out-dir", s.keys)
	return err
}

// setEnv fixes the service's environment, ports included; every later
// command runs with it.
func (s *Stack) setEnv(context.Context) (err error) {
	s.grpcPort, s.httpPort = s.o.GRPCPort, s.o.HTTPPort
	if s.grpcPort == 0 {
		if s.grpcPort, err = testenv.FreePort("127.0.0.1"); err != nil {
			return err
		}
	}
	if s.httpPort == 0 {
		if s.httpPort, err = testenv.FreePort("127.0.0.1"); err != nil {
			return err
		}
	}
	s.GRPCAddr = "127.0.0.1:" + strconv.Itoa(s.grpcPort)
	s.HTTPAddr = "127.0.0.1:" + strconv.Itoa(s.httpPort)
	s.Env = append([]string{
		"DATABASE_URL=" + s.DatabaseURL,
		"BIND_HOST=127.0.0.1",
		"GRPC_PORT=" + strconv.Itoa(s.grpcPort),
		"HTTP_PORT=" + strconv.Itoa(s.httpPort),
		"JWT_PUBLIC_KEY_FILE=" + filepath.Join(s.keys, "public.pem"),
		"JWT_PRIVATE_KEY_FILE=" + filepath.Join(s.keys, "private.pem"),
		"JWT_ISSUER=http://localhost/nova-auth",
		"JWT_AUDIENCE=nova",
		"SHUTDOWN_DELAY=0s",
		// The chart turns reflection off; locally grpcurl should just work.
		"GRPC_REFLECTION=true",
	}, s.o.Env...)
	return nil
}

func (s *Stack) migrate(ctx context.Context) error {
	_, err := s.run(ctx, nil, "migrate")
	return err
}

// seed creates the demo user with its permissions and a token.
func (s *Stack) seed(ctx context.Context) error {
	s.Email = "demo@nova.local"
	id, err := s.run(ctx, strings.NewReader("demo-password-123\n"), "users", "create",
		"--email", s.Email, "--username", "demo", "--password-stdin")
	if err != nil {
		return err
	}
	s.UserID = strings.TrimSpace(id)
	for _, p := range []string{"users:read", "users:write"} {
		if _, err := s.run(ctx, nil, "permissions", "grant", "--user", s.UserID, "--permission", p); err != nil {
			return err
		}
	}
	tok, err := s.run(ctx, nil, "tokens", "issue", "--user", s.UserID, "--ttl", "24h")
	s.Token = strings.TrimSpace(tok)
	return err
}

// serve starts the service in its own process group: a terminal's Ctrl-C
// reaches only our caller, whose Stop then sends the one SIGTERM. Had the
// service seen the Ctrl-C too, that SIGTERM would be a second signal, which
// cuts the drain short and fails the exit.
func (s *Stack) serve(context.Context) (err error) {
	s.proc, err = testenv.Serve(s.Bin, testenv.ServeOptions{GRPCPort: s.grpcPort, HTTPPort: s.httpPort,
		Env: append(os.Environ(), s.Env...), Log: s.o.Log, Setpgid: true})
	return err
}

func (s *Stack) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyWait)
	defer cancel()
	return s.proc.WaitReady(ctx)
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
	if s.proc != nil {
		err = s.proc.Stop()
	}
	if s.pg != nil {
		s.pg.Close()
	}
	if s.tmp {
		os.RemoveAll(s.dir)
	}
	return err
}
