package main

import (
	"context"
	"fmt"

	"github.com/nova-auth/nova-auth/service/internal/config"
	"github.com/nova-auth/nova-auth/service/internal/store"
)

// migrate applies the embedded migrations; concurrent runs are safe.
func migrate(ctx context.Context, _ []string, s stdio) error {
	return withStore(ctx, func(_ *config.Config, st *store.Store) error {
		applied, err := st.Migrate(ctx)
		if err != nil {
			return err
		}
		if len(applied) == 0 {
			fmt.Fprintf(s.out, "schema is current (version %d)\n", store.SchemaVersion())
		} else {
			fmt.Fprintf(s.out, "applied migrations %v; schema at version %d\n", applied, store.SchemaVersion())
		}
		return nil
	})
}
