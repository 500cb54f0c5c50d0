package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/nova-auth/nova-auth/internal/password"
	"github.com/nova-auth/nova-auth/service/internal/config"
	"github.com/nova-auth/nova-auth/service/internal/store"
)

// users creates and soft-deletes users.
func users(ctx context.Context, args []string, s stdio) error {
	if len(args) == 0 {
		return usageError{"want a subcommand: create or delete"}
	}
	switch args[0] {
	case "create":
		return usersCreate(ctx, args[1:], s)
	case "delete":
		return usersDelete(ctx, args[1:], s)
	}
	return usageError{fmt.Sprintf("unknown subcommand %q: want create or delete", args[0])}
}

func usersCreate(ctx context.Context, args []string, s stdio) error {
	fs := s.flags("users create")
	email := fs.String("email", "", "email address (unique, case-insensitive)")
	username := fs.String("username", "", "user name (unique)")
	pw := fs.String("password", "", "password (prefer --password-stdin: flags show in ps)")
	pwStdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *pwStdin {
		line, err := bufio.NewReader(s.in).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		*pw = strings.TrimRight(line, "\r\n")
	}
	// The store keeps the address less surrounding white space (and matches
	// on its canonical form), so the checks apply to that.
	*email = strings.TrimSpace(*email)
	var missing []string
	if *email == "" {
		missing = append(missing, "--email")
	}
	if *username == "" {
		missing = append(missing, "--username")
	}
	if *pw == "" {
		missing = append(missing, "--password or --password-stdin")
	}
	if len(missing) > 0 {
		return usageError{"missing " + strings.Join(missing, ", ")}
	}
	if !strings.Contains(*email, "@") || len(*email) > store.MaxEmailLen {
		return usageError{fmt.Sprintf("--email %q is not an email address", *email)}
	}
	if len(*username) > store.MaxUsernameLen {
		return usageError{fmt.Sprintf("--username is longer than %d characters", store.MaxUsernameLen)}
	}
	hash, err := password.Hash(*pw)
	if err != nil {
		return usageError{err.Error()}
	}
	return withStore(ctx, func(_ *config.Config, st *store.Store) error {
		id, err := st.CreateUser(ctx, store.NewUser{Email: *email, Username: *username, PasswordHash: hash})
		if errors.Is(err, store.ErrAlreadyExists) {
			return fmt.Errorf("a user with this email or username already exists")
		}
		if err != nil {
			return err
		}
		fmt.Fprintln(s.out, id)
		return nil
	})
}

func usersDelete(ctx context.Context, args []string, s stdio) error {
	fs := s.flags("users delete")
	user := fs.String("user", "", "user id")
	id, err := parseForUser(fs, args, user)
	if err != nil {
		return err
	}
	return withStore(ctx, func(_ *config.Config, st *store.Store) error {
		return userErr(st.SoftDeleteUser(ctx, id), id)
	})
}
