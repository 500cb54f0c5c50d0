// Command devstack is `make run`: the service with a throwaway PostgreSQL
// under .data/, a demo user, key pair and token. Ctrl-C stops everything and,
// once it has, exits 0: a clean stop is no error for make.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/nova-auth/nova-auth/internal/devstack"
)

func main() {
	bin := flag.String("bin", "bin/auth-service", "auth-service binary")
	dir := flag.String("dir", ".data", "state folder (wiped at start)")
	grpcPort := flag.Int("grpc-port", 9080, "gRPC port")
	httpPort := flag.Int("http-port", 8080, "HTTP port")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := devstack.Start(ctx, devstack.Options{Bin: *bin, Dir: *dir, GRPCPort: *grpcPort, HTTPPort: *httpPort, Log: os.Stderr})
	if err != nil {
		if ctx.Err() != nil { // Ctrl-C during the bring-up: Start has cleaned up
			fmt.Fprintln(os.Stderr, "stopped")
			return
		}
		fmt.Fprintln(os.Stderr, "make run:", err)
		os.Exit(1)
	}
	fmt.Printf(`
nova-auth is running.
  gRPC  %[1]s   (reflection on: grpcurl -plaintext %[1]s list)
  HTTP  http://%[2]s   (/health, /readiness, /metrics, /v1/...)
  demo user  %[3]s  %[4]s  (permissions users:read, users:write)
  state  %[6]s/   (PostgreSQL data, keys; wiped on the next run)

Try (make grpcurl builds bin/grpcurl):
  grpcurl -plaintext -d '{"user_id":"%[3]s"}' %[1]s nova.auth_service.AuthService/GetUser
  grpcurl -plaintext -d '{"token":"%[5]s"}' %[1]s nova.auth_service.AuthService/VerifyToken
  curl -s http://%[2]s/v1/users/%[3]s/permissions

Ctrl-C stops everything.
`, s.GRPCAddr, s.HTTPAddr, s.UserID, s.Email, s.Token, *dir)
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "stopping…")
	if err := s.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
