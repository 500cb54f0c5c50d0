package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrationLockKey is the advisory lock that serialises concurrent migrate
// runs (several replicas or hook Jobs starting at once). Arbitrary but fixed.
const migrationLockKey int64 = 0x6e6f7661_61757468 // "novaauth"

type migration struct {
	version int
	name    string
	sql     string
	// steps run in order in the migration's transaction: the file's SQL cut
	// at each "-- migrate:go NAME" line, with that Go step between.
	steps []func(ctx context.Context, tx pgx.Tx) error
}

// goStepMarker starts a line in a migration file that runs the Go step of
// that name (from goSteps) at that point: for what SQL cannot compute, such as
// the canonical email, which must be the same function the service uses.
const goStepMarker = "-- migrate:go "

var goSteps = map[string]func(ctx context.Context, tx pgx.Tx) error{
	"fill_email_canonical": fillEmailCanonical,
}

func execStep(sql string) func(ctx context.Context, tx pgx.Tx) error {
	return func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, sql)
		return err
	}
}

// parseSteps cuts a migration's SQL at its Go-step markers.
func parseSteps(name, sql string) ([]func(ctx context.Context, tx pgx.Tx) error, error) {
	var steps []func(ctx context.Context, tx pgx.Tx) error
	var cur strings.Builder
	flush := func() {
		if strings.TrimSpace(cur.String()) != "" {
			steps = append(steps, execStep(cur.String()))
		}
		cur.Reset()
	}
	for _, line := range strings.SplitAfter(sql, "\n") {
		step, ok := strings.CutPrefix(strings.TrimSpace(line), goStepMarker)
		if !ok {
			cur.WriteString(line)
			continue
		}
		f := goSteps[strings.TrimSpace(step)]
		if f == nil {
			return nil, fmt.Errorf("migration %s: no Go step named %q", name, strings.TrimSpace(step))
		}
		flush()
		steps = append(steps, f)
	}
	flush()
	return steps, nil
}

func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		prefix, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number and _", e.Name())
		}
		b, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		steps, err := parseSteps(e.Name(), string(b))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b), steps: steps})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// SchemaVersion is the newest migration embedded in this binary; the service
// is ready only when the database is at this version.
func SchemaVersion() int {
	ms, err := loadMigrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// Migrate applies every embedded migration the database lacks, each in its
// own transaction, under an advisory lock so concurrent runs wait for each
// other instead of racing. It returns the versions it applied.
func (s *Store) Migrate(ctx context.Context) ([]int, error) { return s.migrate(ctx, math.MaxInt) }

// migrate applies the migrations up to version upTo (tests stop early to
// load rows in an older schema).
func (s *Store) migrate(ctx context.Context, upTo int) ([]int, error) {
	ms, err := loadMigrations()
	if err != nil {
		return nil, err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, classify(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLockKey); err != nil {
		return nil, classify(err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLockKey) //nolint:errcheck // released with the session anyway

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, classify(err)
	}
	var applied []int
	for _, m := range ms {
		if m.version > upTo {
			break
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			var done bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)", m.version).Scan(&done); err != nil {
				return err
			}
			if done {
				return nil
			}
			for _, step := range m.steps {
				if err := step(ctx, tx); err != nil {
					return fmt.Errorf("migration %s: %w", m.name, err)
				}
			}
			if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
				return err
			}
			applied = append(applied, m.version)
			return nil
		})
		if err != nil {
			return applied, classify(err)
		}
	}
	return applied, nil
}

// CurrentVersion is the newest migration applied to the database, 0 when
// none is.
func (s *Store) CurrentVersion(ctx context.Context) (int, error) {
	var v int
	err := s.pool.QueryRow(ctx, "SELECT COALESCE(max(version), 0) FROM schema_migrations").Scan(&v)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == sqlstateUndefinedTable { // never migrated
		return 0, nil
	}
	if err != nil {
		return 0, classify(err)
	}
	return v, nil
}
