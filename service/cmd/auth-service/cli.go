package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/google/uuid"

	"github.com/nova-auth/nova-auth/service/internal/config"
	"github.com/nova-auth/nova-auth/service/internal/store"
)

// usageError is a mistake in the command line; it exits 2 instead of 1.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// flags starts the flag set of one command; its -h text goes to the
// command's stderr.
func (s stdio) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(s.err)
	return fs
}

// parse reads args into fs; a bad flag is a usage error.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	return nil
}

// subcommand is for a command with one form, such as "keys generate
// [--out-dir D]": it checks that args start with the form's second word and
// returns the flag set for the rest, or a usage error that shows the form.
func (s stdio) subcommand(args []string, form string) (*flag.FlagSet, []string, error) {
	words := strings.Fields(form)
	if len(args) == 0 || args[0] != words[1] {
		return nil, nil, usageError{"want: " + form}
	}
	return s.flags(words[0] + " " + words[1]), args[1:], nil
}

// parseForUser is parse for a command that acts on one user: user is its
// --user flag, which must hold a user id.
func parseForUser(fs *flag.FlagSet, args []string, user *string) (uuid.UUID, error) {
	if err := parse(fs, args); err != nil {
		return uuid.Nil, err
	}
	id, err := uuid.Parse(*user)
	if err != nil {
		return uuid.Nil, usageError{fmt.Sprintf("--user %q is not a UUID", *user)}
	}
	return id, nil
}

// userErr says which user a command could not find.
func userErr(err error, id uuid.UUID) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("user %s not found", id)
	}
	return err
}

func loadConfig() (*config.Config, error) { return config.Load(os.Getenv) }

// withStore runs f with the configuration and a store for a one-shot
// command, and closes the store after. It fails fast, before f, when the
// database is unreachable.
func withStore(ctx context.Context, f func(*config.Config, *store.Store) error) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	if err := cfg.RequireDatabase(); err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, store.Options{MaxConns: 2, ConnectTimeout: cfg.DBConnectTimeout})
	if err != nil {
		return err
	}
	defer st.Close()
	pctx, cancel := context.WithTimeout(ctx, cfg.DBConnectTimeout)
	defer cancel()
	if err := st.Ping(pctx); err != nil {
		return fmt.Errorf("cannot reach the database at DATABASE_URL: %w", err)
	}
	return f(cfg, st)
}
