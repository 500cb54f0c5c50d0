// Command auth-service is the nova-auth binary: the gRPC/HTTP server and the
// commands that operate it (migrations, users, permissions, tokens, probes).
// Each command has its own file; cli.go holds what they share.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/nova-auth/nova-auth/service/internal/tracing"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// usage lists every command with the flags it accepts. The README's command
// list says the same (usage_test.go checks both against the flag sets).
const usage = `auth-service — nova-auth's gRPC auth service

Usage:
  auth-service [serve]                      run the gRPC (GRPC_PORT) and HTTP (HTTP_PORT) servers
  auth-service migrate                      apply the embedded schema migrations (idempotent)
  auth-service users create --email E --username U (--password P | --password-stdin)
                                            create a user; prints its id
  auth-service users delete --user ID       soft-delete a user
  auth-service permissions grant --user ID --permission P
  auth-service tokens issue --user ID [--ttl 15m]
                                            print a JWT signed with JWT_PRIVATE_KEY
  auth-service keys generate [--out-dir D [--force]]
                                            make an Ed25519 key pair (PEM); --force replaces
                                            existing files
  auth-service keys ensure --secret S [--adopt S] [--type ed25519|ecdsa|rsa]
                                            in a Kubernetes pod: create the key pair Secret S
                                            unless it exists (the chart's key Job)
  auth-service healthcheck [--addr H:P] [--service S] [--timeout 3s] [--tls] [--cacert F] [--cert F --key F] [--server-name N]
                                            gRPC health probe (default 127.0.0.1:GRPC_PORT),
                                            over TLS or mutual TLS with those flags;
                                            exit 0 when SERVING
  auth-service env [--names|--markdown]     the environment variables it reads
  auth-service --version

Configuration comes from environment variables; see 'auth-service env'.
`

// stdio is the process's standard streams, passed to every command so that
// tests can run them in-process.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

// commands maps a command's name to the function that runs it with the rest
// of the arguments.
var commands = map[string]func(ctx context.Context, args []string, s stdio) error{
	"serve":       serve,
	"migrate":     migrate,
	"users":       users,
	"permissions": permissions,
	"tokens":      tokensCmd,
	"keys":        keysCmd,
	"healthcheck": healthcheck,
	"env":         envCmd,
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	name := "serve"
	if len(args) > 0 {
		name, args = args[0], args[1:]
	}
	switch name {
	case "--version", "version", "-v":
		fmt.Fprintln(stdout, "auth-service", version)
		return 0
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "auth-service: unknown command %q\n\n%s", name, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	// After the first signal, a second one kills the process at once
	// instead of waiting for the drain.
	context.AfterFunc(ctx, stop)
	if err := cmd(ctx, args, stdio{in: stdin, out: stdout, err: stderr}); err != nil {
		fmt.Fprintf(stderr, "auth-service %s: %s\n", name, err)
		if errors.As(err, new(usageError)) {
			return 2
		}
		return 1
	}
	return 0
}

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	h := tracing.LogHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
	return slog.New(h).With(slog.String("service", "auth-service"))
}
