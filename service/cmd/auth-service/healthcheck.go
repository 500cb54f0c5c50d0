package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/nova-auth/nova-auth/internal/tlsclient"
	"github.com/nova-auth/nova-auth/service/internal/grpcserver"
)

// healthcheck asks a gRPC server's health service whether it is SERVING;
// the image's probe and the chart's test pod run it.
func healthcheck(ctx context.Context, args []string, s stdio) error {
	// By default, probe the port serve would listen on, read from the same
	// environment with the same parsing and default. A configuration serve
	// would refuse matters only when no --addr says where to look.
	defAddr, cfgErr := localGRPCAddr()
	fs := s.flags("healthcheck")
	addr := fs.String("addr", defAddr, "gRPC address to probe")
	service := fs.String("service", grpcserver.ServiceName, "service name to ask about (\"\" for the whole server)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	useTLS := fs.Bool("tls", false, "speak TLS, verifying the server with the system's roots (or --cacert)")
	caFile := fs.String("cacert", "", "PEM CA bundle that signs the server's certificate (implies --tls)")
	certFile := fs.String("cert", "", "PEM client certificate for mutual TLS (implies --tls; with --key)")
	keyFile := fs.String("key", "", "PEM private key of --cert")
	serverName := fs.String("server-name", "", "name to verify in the server's certificate (default: --addr's host)")
	if err := parse(fs, args); err != nil {
		return err
	}
	creds, err := healthcheckCreds(*useTLS, *caFile, *certFile, *keyFile, *serverName)
	if err != nil {
		return err
	}
	if cfgErr != nil && !isSet(fs, "addr") {
		return cfgErr
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return usageError{fmt.Sprintf("--addr %q: %v", *addr, err)}
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: *service}, grpc.WaitForReady(true))
	if err != nil {
		return fmt.Errorf("%s: %w", *addr, err)
	}
	fmt.Fprintf(s.out, "%s %s: %s\n", *addr, *service, resp.GetStatus())
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("not serving")
	}
	return nil
}

// healthcheckCreds is plaintext, or TLS when any TLS flag is given.
func healthcheckCreds(useTLS bool, caFile, certFile, keyFile, serverName string) (credentials.TransportCredentials, error) {
	if (certFile == "") != (keyFile == "") {
		return nil, usageError{"--cert and --key go together"}
	}
	if !useTLS && caFile == "" && certFile == "" && serverName == "" {
		return insecure.NewCredentials(), nil
	}
	return tlsclient.Credentials(tlsclient.Files{CAFile: caFile, CertFile: certFile, KeyFile: keyFile, ServerName: serverName,
		CAName: "--cacert", PairName: "--cert/--key"})
}

// localGRPCAddr is this host's gRPC address as the configuration gives it.
func localGRPCAddr() (string, error) {
	cfg, err := loadConfig()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.GRPCPort)), nil
}

// isSet tells whether the command line gave the flag.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
