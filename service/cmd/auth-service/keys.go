package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
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
	flags, args, err := s.subcommand(args, "keys generate [--out-dir D [--force]]")
	if err != nil {
		return err
	}
	dir := flags.String("out-dir", "", "write private.pem and public.pem here (0600/0644) instead of stdout")
	force := flags.Bool("force", false, "with --out-dir: replace existing private.pem/public.pem")
	if err := parse(flags, args); err != nil {
		return err
	}
	if *force && *dir == "" {
		return usageError{"--force only applies with --out-dir"}
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
	privPath, pubPath := filepath.Join(*dir, "private.pem"), filepath.Join(*dir, "public.pem")
	if !*force {
		// Check both before writing either, so a refusal leaves no half pair.
		for _, p := range []string{privPath, pubPath} {
			if _, err := os.Lstat(p); err == nil {
				return fmt.Errorf("%s already exists: keys generate does not replace keys; move it away or pass --force", p)
			}
		}
		if err := writeNew(privPath, priv, 0o600); err != nil {
			return err
		}
		return writeNew(pubPath, pub, 0o644)
	}
	if err := replaceFile(privPath, priv, 0o600); err != nil {
		return err
	}
	return replaceFile(pubPath, pub, 0o644)
}

// writeNew creates path with mode, failing if anything is already there
// (O_EXCL: no race with another writer, no following a planted symlink).
func writeNew(path string, data []byte, mode fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s already exists: keys generate does not replace keys; move it away or pass --force", path)
	}
	if err != nil {
		return err
	}
	return finish(f, data, mode)
}

// replaceFile writes data to a new temporary file beside path and renames it
// over path. Rewriting the old file in place would keep its mode: a
// private.pem that was 0644 would stay readable by everyone.
func replaceFile(path string, data []byte, mode fs.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if err := finish(f, data, mode); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// finish sets the mode explicitly (the umask may have narrowed it, and
// CreateTemp always makes 0600), writes, syncs and closes f.
func finish(f *os.File, data []byte, mode fs.FileMode) error {
	err := f.Chmod(mode)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
