package main

import (
	"context"
	"fmt"

	"github.com/nova-auth/nova-auth/service/internal/config"
	"github.com/nova-auth/nova-auth/service/internal/store"
)

// permissions grants a permission to a user.
func permissions(ctx context.Context, args []string, s stdio) error {
	fs, args, err := s.subcommand(args, "permissions grant --user ID --permission P")
	if err != nil {
		return err
	}
	user := fs.String("user", "", "user id")
	perm := fs.String("permission", "", "permission, e.g. users:read")
	id, err := parseForUser(fs, args, user)
	if err != nil {
		return err
	}
	if *perm == "" || len(*perm) > store.MaxPermissionLen {
		return usageError{fmt.Sprintf("--permission must be 1..%d characters", store.MaxPermissionLen)}
	}
	return withStore(ctx, func(_ *config.Config, st *store.Store) error {
		return userErr(st.GrantPermission(ctx, id, *perm), id)
	})
}
