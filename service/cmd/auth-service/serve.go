package main

import (
	"context"
	"fmt"
	"net"

	"github.com/nova-auth/nova-auth/service/internal/app"
	"github.com/nova-auth/nova-auth/service/internal/store"
)

// serve runs the gRPC and HTTP servers until SIGTERM.
func serve(ctx context.Context, _ []string, s stdio) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	log := newLogger(s.err, cfg.LogLevel)
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	gl, err := net.Listen("tcp", cfg.GRPCAddr())
	if err != nil {
		return fmt.Errorf("GRPC_PORT: %w", err)
	}
	hl, err := net.Listen("tcp", cfg.HTTPAddr())
	if err != nil {
		gl.Close()
		return fmt.Errorf("HTTP_PORT: %w", err)
	}
	log.Info("starting", "version", version, "schema_version", store.SchemaVersion())
	return a.Serve(ctx, gl, hl)
}
