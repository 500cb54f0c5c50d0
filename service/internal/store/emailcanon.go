package store

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/nova-auth/nova-auth/internal/email"
)

// fillEmailCanonical is migration 0003's Go step: it stores every user's
// canonical email (and trims the address as given) and refuses, naming the
// users, when live users would share one. Merging them silently would hand
// one person's account to another; which to keep is the operator's call.
func fillEmailCanonical(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT id, email, deleted_at IS NULL FROM users`)
	if err != nil {
		return err
	}
	var (
		ids              [][16]byte
		displays, canons []string
		live             = map[string][]string{}
	)
	for rows.Next() {
		var id [16]byte
		var addr string
		var isLive bool
		if err := rows.Scan(&id, &addr, &isLive); err != nil {
			rows.Close()
			return err
		}
		c := email.Canonical(addr)
		ids, displays, canons = append(ids, id), append(displays, email.Display(addr)), append(canons, c)
		if isLive {
			live[c] = append(live[c], uuid.UUID(id).String())
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	var groups []string
	for _, g := range live {
		if len(g) > 1 {
			slices.Sort(g)
			groups = append(groups, "["+strings.Join(g, " ")+"]")
		}
	}
	if len(groups) > 0 {
		slices.Sort(groups)
		// Ids only: the addresses are personal data and this lands in logs.
		return fmt.Errorf("%d group(s) of live users have emails that are the same once trimmed, "+
			"NFC-normalised and case-folded, and would become one identity: %s; nothing was changed: "+
			"soft-delete all but one user in each group (auth-service users delete --user ID), then migrate again",
			len(groups), strings.Join(groups, ", "))
	}
	_, err = tx.Exec(ctx, `
		UPDATE users u SET email = v.email, email_canonical = v.canonical
		FROM unnest($1::uuid[], $2::text[], $3::text[]) AS v(id, email, canonical)
		WHERE u.id = v.id`, ids, displays, canons)
	return err
}
