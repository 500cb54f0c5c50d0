// Command auth-service is the nova-auth binary: the gRPC/HTTP server and the
// commands that operate it (migrations, users, permissions, tokens, probes).
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
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

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
  auth-service keys generate [--out-dir D]  make an Ed25519 key pair (PEM)
  auth-service healthcheck [--addr 127.0.0.1:9080] [--service NAME] [--timeout 3s]
                                            gRPC health probe; exit 0 when SERVING
  auth-service env [--names]                the environment variables it reads
  auth-service --version

Configuration comes from environment variables; see 'auth-service env'.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	// After the first signal, a second one kills the process at once
	// instead of waiting for the drain.
	context.AfterFunc(ctx, stop)
	var err error
	switch cmd {
	case "serve":
		err = serve(ctx, stderr)
	case "migrate":
		err = migrate(ctx, stdout, stderr)
	case "users":
		err = users(ctx, args, stdin, stdout)
	case "permissions":
		err = permissions(ctx, args)
	case "tokens":
		err = tokensCmd(ctx, args, stdout)
	case "keys":
		err = keysCmd(args, stdout)
	case "healthcheck":
		err = healthcheck(ctx, args, stdout)
	case "env":
		err = envCmd(args, stdout)
	case "--version", "version", "-v":
		fmt.Fprintln(stdout, "auth-service", version)
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "auth-service: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "auth-service %s: %s\n", cmd, err)
			return 2
		}
		fmt.Fprintf(stderr, "auth-service %s: %s\n", cmd, err)
		return 1
	}
	return 0
}

// usageError is a mistake in the command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})).With(slog.String("service", "auth-service"))
}
