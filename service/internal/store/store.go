// Package store is the service's only access to PostgreSQL: a pgx pool, one
// SQL statement per operation, embedded migrations, and sentinel errors that
// the gRPC layer maps to status codes.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/nova-auth/nova-auth/internal/email"
)

// Sentinel errors. Every error the store returns wraps one of these or a
// context error, so callers decide with errors.Is.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	ErrUnavailable   = errors.New("database unavailable")
	ErrInvalid       = errors.New("invalid value")
)

// User is a visible (not soft-deleted) user.
type User struct {
	ID                  uuid.UUID
	Email               string
	Username            string
	CreatedAt           time.Time
	IsActive            bool
	FailedLoginAttempts int32
	// LockedUntil is zero unless the account is locked now.
	LockedUntil time.Time
}

// Options sizes the connection pool.
type Options struct {
	MaxConns          int32
	MinConns          int32
	ConnectTimeout    time.Duration
	HealthCheckPeriod time.Duration
	// Tracer, when set, traces statements (and pool acquires, when it is
	// a pgxpool.AcquireTracer too); nil when tracing is off.
	Tracer pgx.QueryTracer
}

// Store runs the service's queries on a pgx pool.
type Store struct {
	pool *pgxpool.Pool
}

// Open parses the URL and builds a pool. It does not wait for the database:
// the service starts (unready) while PostgreSQL is still coming up.
func Open(ctx context.Context, url string, o Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message may quote the URL, password included: keep it out.
		return nil, errors.New("DATABASE_URL is not a valid PostgreSQL URL or DSN")
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	}
	cfg.MinConns = o.MinConns
	if o.ConnectTimeout > 0 {
		cfg.ConnConfig.ConnectTimeout = o.ConnectTimeout
	}
	if o.HealthCheckPeriod > 0 {
		cfg.HealthCheckPeriod = o.HealthCheckPeriod
	}
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "nova-auth"
	// A call that ends (deadline, client gone) cancels its statement on the
	// server too. Closing the socket alone would leave a statement that waits
	// on a lock to run later, after the caller was told it failed.
	cfg.ConnConfig.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: time.Second}
	}
	cfg.ConnConfig.Tracer = o.Tracer
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open pool: %w", classify(err))
	}
	return &Store{pool: pool}, nil
}

// Close closes every connection.
func (s *Store) Close() { s.pool.Close() }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return classify(s.pool.Ping(ctx)) }

// Pool exposes the pool for metrics.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

const userCols = `id, email, username, created_at, is_active, failed_login_attempts,
	CASE WHEN locked_until > now() THEN locked_until END`

// The uuid.UUID fields are scanned and sent as [16]byte: pgx then uses the
// binary UUID format instead of going through sql.Scanner and text.
func scanUser(row pgx.Row) (User, error) {
	var u User
	var locked *time.Time
	if err := row.Scan((*[16]byte)(&u.ID), &u.Email, &u.Username, &u.CreatedAt, &u.IsActive, &u.FailedLoginAttempts, &locked); err != nil {
		return User{}, err
	}
	if locked != nil {
		u.LockedUntil = *locked
	}
	return u, nil
}

// GetUser returns the visible user with this id, or ErrNotFound.
func (s *Store) GetUser(ctx context.Context, id uuid.UUID) (User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx,
		`SELECT `+userCols+` FROM users WHERE id = $1 AND deleted_at IS NULL`, [16]byte(id)))
	return u, classify(err)
}

// GetUsersByIDs returns the visible users among ids, in the order of each
// id's first occurrence; unknown ids are left out and duplicates collapse.
func (s *Store) GetUsersByIDs(ctx context.Context, ids []uuid.UUID) ([]User, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+userCols+`
		FROM (SELECT id AS rid, min(ord) AS ord
		      FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, ord) GROUP BY id) r
		JOIN users ON users.id = r.rid
		WHERE deleted_at IS NULL
		ORDER BY r.ord`, uuidBytes(ids))
	if err != nil {
		return nil, classify(err)
	}
	return collectUsers(rows)
}

func uuidBytes(ids []uuid.UUID) [][16]byte {
	out := make([][16]byte, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}

func collectUsers(rows pgx.Rows) ([]User, error) {
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, classify(err)
		}
		out = append(out, u)
	}
	return out, classify(rows.Err())
}

// UserExists tells whether a visible user has this id.
func (s *Store) UserExists(ctx context.Context, id uuid.UUID) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx,
		`SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND deleted_at IS NULL)`, [16]byte(id)).Scan(&ok)
	return ok, classify(err)
}

// GetUserByEmail finds a visible user by canonical email (email.Canonical:
// trimmed, NFC, case-folded, whatever the database's collation);
// ErrNotFound when there is none.
func (s *Store) GetUserByEmail(ctx context.Context, addr string) (User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx,
		`SELECT `+userCols+` FROM users WHERE email_canonical = $1 AND deleted_at IS NULL`, email.Canonical(addr)))
	return u, classify(err)
}

// ListUsers returns one page of visible users, newest first (id breaks
// ties), and how many visible users there are, from one snapshot. The total
// comes from user_counts, which a trigger keeps exact (migration 0002).
// With after set the page starts after that user's key instead of at offset.
func (s *Store) ListUsers(ctx context.Context, limit, offset int32, after *UserKey) ([]User, int64, error) {
	where, args := "deleted_at IS NULL", []any{limit, offset}
	if after != nil {
		// Keyset: the rows after the key in the page order, found by a seek
		// on users_created_at_id_live_idx however deep the page is.
		where += " AND (created_at, id) < ($3, $4)"
		args = append(args, after.CreatedAt, after.ID)
	}
	rows, err := s.pool.Query(ctx, `
		WITH page AS (
			SELECT `+userCols+` FROM users WHERE `+where+`
			ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2)
		SELECT c.live_users, page.*
		FROM user_counts c
		LEFT JOIN page ON true
		ORDER BY page.created_at DESC, page.id DESC`, args...)
	if err != nil {
		return nil, 0, classify(err)
	}
	defer rows.Close()
	var total int64
	out := make([]User, 0, limit)
	for rows.Next() {
		// The LEFT JOIN makes every page column nullable; value types keep
		// the scan free of per-row allocations.
		var (
			id       pgtype.UUID
			email    pgtype.Text
			username pgtype.Text
			created  pgtype.Timestamptz
			active   pgtype.Bool
			failed   pgtype.Int4
			locked   pgtype.Timestamptz
		)
		if err := rows.Scan(&total, &id, &email, &username, &created, &active, &failed, &locked); err != nil {
			return nil, 0, classify(err)
		}
		if !id.Valid { // the page is empty: only the count came back
			continue
		}
		u := User{ID: id.Bytes, Email: email.String, Username: username.String, CreatedAt: created.Time,
			IsActive: active.Bool, FailedLoginAttempts: failed.Int32}
		if locked.Valid {
			u.LockedUntil = locked.Time
		}
		out = append(out, u)
	}
	return out, total, classify(rows.Err())
}

// HasPermission tells whether the visible user holds permission;
// ErrNotFound when there is no such user.
func (s *Store) HasPermission(ctx context.Context, id uuid.UUID, permission string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM user_permissions p WHERE p.user_id = u.id AND p.permission = $2)
		FROM users u WHERE u.id = $1 AND u.deleted_at IS NULL`, [16]byte(id), permission).Scan(&ok)
	return ok, classify(err)
}

// Permissions lists the visible user's permissions, sorted; ErrNotFound when
// there is no such user.
func (s *Store) Permissions(ctx context.Context, id uuid.UUID) ([]string, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT p.permission
		FROM users u LEFT JOIN user_permissions p ON p.user_id = u.id
		WHERE u.id = $1 AND u.deleted_at IS NULL
		ORDER BY p.permission`, [16]byte(id))
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	found := false
	perms := []string{}
	for rows.Next() {
		found = true
		var p *string
		if err := rows.Scan(&p); err != nil {
			return nil, classify(err)
		}
		if p != nil {
			perms = append(perms, *p)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, classify(err)
	}
	if !found {
		return nil, ErrNotFound
	}
	return perms, nil
}

// LoginFailure is the account's state after a recorded failure.
type LoginFailure struct {
	FailedAttempts int32
	LockedUntil    time.Time // zero when not locked
}

// RecordFailedLogin counts one failed login in a single UPDATE, so
// concurrent calls for one user serialise on the row and none is lost. The
// threshold-th failure locks the account for lockFor; a failure after an
// expired lock starts a new count at 1; failures during a lock are counted
// but do not extend it. ErrNotFound when there is no such user.
func (s *Store) RecordFailedLogin(ctx context.Context, id uuid.UUID, threshold int, lockFor time.Duration) (LoginFailure, error) {
	var (
		f      LoginFailure
		locked *time.Time
	)
	// Every expression reads the row being updated (not a snapshot taken
	// before the row lock), so a waiting UPDATE re-evaluates on the version
	// its predecessor committed: no failure is lost.
	err := s.pool.QueryRow(ctx, `
		UPDATE users SET
			failed_login_attempts = CASE WHEN locked_until <= now() THEN 1
			                             ELSE failed_login_attempts + 1 END,
			locked_until = CASE
				WHEN locked_until > now() THEN locked_until
				WHEN (CASE WHEN locked_until <= now() THEN 1 ELSE failed_login_attempts + 1 END) >= $2
					THEN now() + $3::interval
				ELSE NULL END,
			updated_at = now()
		WHERE id = $1 AND deleted_at IS NULL
		RETURNING failed_login_attempts, CASE WHEN locked_until > now() THEN locked_until END`,
		[16]byte(id), threshold, lockFor).Scan(&f.FailedAttempts, &locked)
	if locked != nil {
		f.LockedUntil = *locked
	}
	return f, classify(err)
}

// NewUser is what CreateUser stores.
type NewUser struct {
	Email, Username, PasswordHash string
}

// CreateUser inserts a user and returns its id; ErrAlreadyExists when the
// email (compared canonically, see email.Canonical) or username is taken by a
// visible user. The email is stored as given less surrounding white space.
func (s *Store) CreateUser(ctx context.Context, n NewUser) (uuid.UUID, error) {
	var id uuid.UUID
	err := s.pool.QueryRow(ctx,
		`INSERT INTO users (email, email_canonical, username, password_hash) VALUES ($1, $2, $3, $4) RETURNING id`,
		email.Display(n.Email), email.Canonical(n.Email), n.Username, n.PasswordHash).Scan(&id)
	return id, classify(err)
}

// GrantPermission gives the visible user a permission (a no-op when held).
func (s *Store) GrantPermission(ctx context.Context, id uuid.UUID, permission string) error {
	tag, err := s.pool.Exec(ctx, `
		INSERT INTO user_permissions (user_id, permission)
		SELECT id, $2 FROM users WHERE id = $1 AND deleted_at IS NULL
		ON CONFLICT DO NOTHING`, id, permission)
	if err != nil {
		return classify(err)
	}
	if tag.RowsAffected() == 0 {
		ok, err := s.UserExists(ctx, id)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNotFound
		}
	}
	return nil
}

// SoftDeleteUser marks the user deleted; every RPC stops seeing it.
func (s *Store) SoftDeleteUser(ctx context.Context, id uuid.UUID) error {
	tag, err := s.pool.Exec(ctx,
		`UPDATE users SET deleted_at = now(), updated_at = now() WHERE id = $1 AND deleted_at IS NULL`, id)
	if err != nil {
		return classify(err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// classify wraps driver errors in the store's sentinels; the original stays
// reachable for logs through errors.Unwrap but is never shown to clients.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrAlreadyExists) || errors.Is(err, ErrInvalid) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		code := pgErr.Code
		switch {
		case code == sqlstateUniqueViolation:
			return fmt.Errorf("%w: %s", ErrAlreadyExists, pgErr.ConstraintName)
		case code == sqlstateCheckViolation || code == sqlstateInvalidTextRepresentation ||
			code == sqlstateStringDataRightTruncation || code == sqlstateCharacterNotInRepertoire ||
			code == sqlstateUntranslatableCharacter:
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		case code == sqlstateQueryCanceled:
			return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
		case len(code) == 5 && (strings.HasPrefix(code, sqlstateClassConnectionException) ||
			strings.HasPrefix(code, sqlstateClassInsufficientResources) ||
			strings.HasPrefix(code, sqlstatePrefixOperatorShutdown)):
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return err
	}
	// Anything else from the driver that is not a server answer is a
	// connection that could not be made or was lost.
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) || pgconn.SafeToRetry(err) || isNetErr(err) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}
