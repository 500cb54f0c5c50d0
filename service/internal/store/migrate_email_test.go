package store

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/nova-auth/nova-auth/internal/testenv"
)

// TestMigrateEmailCanonical: migration 0003 converts the rows of a schema-2
// database to canonical emails, and refuses, naming the users, when live
// users would become one identity. The rows are loaded into a C-locale
// database, where lower() let them all in as different users.
func TestMigrateEmailCanonical(t *testing.T) {
	ctx := context.Background()
	pg, err := testenv.StartPostgres(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Close)

	type row struct {
		email   string
		deleted bool
	}
	for _, tc := range []struct {
		name    string
		rows    []row
		collide [][]int // groups of row indexes the report must name
		// canonical and display forms after a successful migration, by row.
		canonical, display []string
	}{
		{
			name: "converted",
			rows: []row{
				{"  Spaced@Example.com \t", false},
				{"Élodie@example.com", false},
				{"\u212Aate@example.com", false},
				{"kate@example.com", true}, // soft-deleted: no longer an identity
				{"eloise@example.com", false},
			},
			canonical: []string{"spaced@example.com", "élodie@example.com", "kate@example.com", "kate@example.com", "eloise@example.com"},
			display:   []string{"Spaced@Example.com", "Élodie@example.com", "\u212Aate@example.com", "kate@example.com", "eloise@example.com"},
		},
		{
			name: "collisions reported",
			rows: []row{
				{"\u212Aate@example.com", false}, // 0: Kelvin sign
				{"kate@example.com", false},      // 1
				{"Élodie@example.com", false},    // 2
				{"élodie@example.com", false},    // 3
				{"e\u0301lodie@example.com", false},
				{" spaces@example.com", false}, // 5
				{"spaces@example.com", false},  // 6
				{"alone@example.com", false},   // 7: no collision
				{"ALONE@example.com", true},    // 8: deleted, not reported
			},
			collide: [][]int{{0, 1}, {2, 3, 4}, {5, 6}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, err := pg.CreateDatabaseLocale(ctx, strings.ReplaceAll(tc.name, " ", "_"), "C")
			if err != nil {
				t.Fatal(err)
			}
			st, err := Open(ctx, url, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if _, err := st.migrate(ctx, 2); err != nil {
				t.Fatal(err)
			}
			ids := make([]string, len(tc.rows))
			for i, r := range tc.rows {
				if err := st.pool.QueryRow(ctx, `INSERT INTO users (email, username, password_hash, deleted_at)
					VALUES ($1, $2, 'x', CASE WHEN $3 THEN now() END) RETURNING id::text`,
					r.email, "u"+string(rune('a'+i)), r.deleted).Scan(&ids[i]); err != nil {
					t.Fatalf("row %d %q: %v", i, r.email, err)
				}
			}

			_, err = st.Migrate(ctx)
			if tc.collide != nil {
				if err == nil {
					t.Fatal("migration succeeded; want it to report the collisions")
				}
				if testing.Verbose() {
					t.Log(err)
				}
				msg := err.Error()
				named := map[string]bool{}
				for _, g := range tc.collide {
					var want []string
					for _, i := range g {
						want = append(want, ids[i])
						named[ids[i]] = true
					}
					// A group's ids are listed together, sorted.
					slices.Sort(want)
					if !strings.Contains(msg, "["+strings.Join(want, " ")+"]") {
						t.Errorf("report does not list %v together:\n%s", want, msg)
					}
				}
				for _, id := range ids {
					if !named[id] && strings.Contains(msg, id) {
						t.Errorf("report names %s, which collides with no live user:\n%s", id, msg)
					}
				}
				for _, r := range tc.rows {
					if strings.Contains(msg, strings.TrimSpace(r.email)) {
						t.Errorf("report quotes an address (%q); ids are enough:\n%s", r.email, msg)
					}
				}
				if !strings.Contains(msg, "0003_email_canonical.sql") || !strings.Contains(msg, "nothing was changed") {
					t.Errorf("report does not say which migration failed and that nothing changed:\n%s", msg)
				}
				if v, err := st.CurrentVersion(ctx); err != nil || v != 2 {
					t.Errorf("after the refused migration the schema is at %d (%v), want 2", v, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, id := range ids {
				var canonical, display string
				if err := st.pool.QueryRow(ctx, `SELECT email_canonical, email FROM users WHERE id = $1`, id).Scan(&canonical, &display); err != nil {
					t.Fatal(err)
				}
				if canonical != tc.canonical[i] || display != tc.display[i] {
					t.Errorf("row %d: email_canonical %q email %q, want %q %q", i, canonical, display, tc.canonical[i], tc.display[i])
				}
			}
			// The index is on the canonical form now.
			if _, err := st.CreateUser(ctx, NewUser{Email: "ÉLODIE@example.com", Username: "new", PasswordHash: "x"}); !errors.Is(err, ErrAlreadyExists) {
				t.Errorf("CreateUser of a converted address in another spelling: %v, want ErrAlreadyExists", err)
			}
			if u, err := st.GetUserByEmail(ctx, "kate@example.com"); err != nil || u.ID.String() != ids[2] {
				t.Errorf("GetUserByEmail(kate@example.com) = %s, %v; want the live Kelvin-sign user %s", u.ID, err, ids[2])
			}
		})
	}
}

// TestParseSteps: a migration file is cut at its Go-step markers; a marker
// naming no Go step is refused when the migrations load, not half-way
// through a database's upgrade.
func TestParseSteps(t *testing.T) {
	for _, tc := range []struct {
		sql   string
		steps int
		err   string
	}{
		{"SELECT 1;\n", 1, ""},
		{"SELECT 1;\n-- migrate:go fill_email_canonical\nSELECT 2;\n", 3, ""},
		{"-- migrate:go fill_email_canonical\n", 1, ""},
		{"SELECT 1;\n-- migrate:go no_such_step\n", 0, `no Go step named "no_such_step"`},
	} {
		steps, err := parseSteps("0099_x.sql", tc.sql)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseSteps(%q) error %v, want %q", tc.sql, err, tc.err)
			}
			continue
		}
		if err != nil || len(steps) != tc.steps {
			t.Errorf("parseSteps(%q) = %d steps, %v; want %d", tc.sql, len(steps), err, tc.steps)
		}
	}
}
