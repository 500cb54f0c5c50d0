package main

import (
	"context"
	"os"
	"path/filepath"

	"github.com/nova-auth/nova-auth/internal/tokens"
)

// keysCmd generates an Ed25519 key pair, to stdout or into a directory, or
// with "ensure" makes the chart's key Secret (keysensure.go).
func keysCmd(ctx context.Context, args []string, s stdio) error {
	if len(args) > 0 && args[0] == "ensure" {
		return keysEnsure(ctx, args, s)
	}
	fs, args, err := s.subcommand(args, "keys generate [--out-dir D]")
	if err != nil {
		return err
	}
	dir := fs.String("out-dir", "", "write private.pem and public.pem here (0600/0644) instead of stdout")
	if err := parse(fs, args); err != nil {
		return err
	}
	priv, pub, err := tokens.GenerateEd25519PEM()
	if err != nil {
		return err
	}
	if *dir == "" {
		_, err = s.out.Write(append(priv, pub...))
		return err
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*dir, "private.pem"), priv, 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(*dir, "public.pem"), pub, 0o644)
}
