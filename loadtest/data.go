package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/nova-auth/nova-auth/internal/email"
	"github.com/nova-auth/nova-auth/internal/password"
	"github.com/nova-auth/nova-auth/internal/tokens"
)

// Dataset is what the scenarios draw their requests from: real users with
// permissions and tokens. --seed writes one; --data reads one (staging).
type Dataset struct {
	Users []DataUser `json:"users"`
	// Permission is one every user holds; CheckPermission asks for it and
	// for a permission nobody holds, alternately.
	Permission string `json:"permission"`
	// PageTokens are ListUsers' next_page_tokens after the first pages of
	// 20, asked of the server at the start of each run.
	PageTokens []string `json:"-"`
}

// DataUser is one user of the data set.
type DataUser struct {
	ID          string   `json:"id"`
	Email       string   `json:"email"`
	Token       string   `json:"token"`
	Permissions []string `json:"permissions,omitempty"`
}

func loadDataset(path string) (*Dataset, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d Dataset
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := d.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &d, nil
}

func (d *Dataset) validate() error {
	if len(d.Users) == 0 {
		return errors.New("data set has no users")
	}
	for i, u := range d.Users {
		if _, err := uuid.Parse(u.ID); err != nil {
			return fmt.Errorf("users[%d].id %q is not a UUID", i, u.ID)
		}
		if u.Email == "" || u.Token == "" {
			return fmt.Errorf("users[%d] needs email and token", i)
		}
	}
	return nil
}

func (d *Dataset) save(path string) error {
	b, err := json.MarshalIndent(d, "", " ")
	if err != nil {
		return err
	}
	// The file holds live tokens: readable by the owner only.
	return os.WriteFile(path, b, 0o600)
}

// SeedOptions says where seeded users go and how their tokens are signed.
type SeedOptions struct {
	N              int
	DatabaseURL    string
	PrivateKeyFile string
	Issuer         string
	Audience       string
	TokenTTL       time.Duration
}

// seedPermissions are granted to every seeded user.
var seedPermissions = []string{"users:read", "orders:read", "orders:write"}

// seed writes N users with permissions straight into the database (COPY; one
// argon2id hash shared by all, since nothing logs them in) and signs a real
// token for each with the service's private key. Emails and usernames carry
// a run id, so seeding twice into one database does not collide.
func seed(ctx context.Context, o SeedOptions) (*Dataset, error) {
	if o.DatabaseURL == "" {
		return nil, errors.New("--seed needs a database the load test may write to: set --database-url or DATABASE_URL")
	}
	if o.PrivateKeyFile == "" {
		return nil, errors.New("--seed needs the service's signing key to make tokens: set --jwt-private-key-file or JWT_PRIVATE_KEY_FILE")
	}
	signer, err := newTokenSigner(o.PrivateKeyFile, o.Issuer, o.Audience)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.Connect(ctx, o.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("seed: connect to the database: %w", err)
	}
	defer conn.Close(ctx)

	run := make([]byte, 4)
	rand.Read(run) //nolint:errcheck // crypto/rand does not fail
	runID := hex.EncodeToString(run)
	hash, err := password.Hash("loadtest-" + runID)
	if err != nil {
		return nil, err
	}

	d := &Dataset{Permission: seedPermissions[0], Users: make([]DataUser, o.N)}
	userRows := make([][]any, o.N)
	permRows := make([][]any, 0, o.N*len(seedPermissions))
	for i := range d.Users {
		id := uuid.New()
		u := DataUser{
			ID:          id.String(),
			Email:       fmt.Sprintf("lt-%s-%d@loadtest.nova.local", runID, i),
			Permissions: seedPermissions,
		}
		if u.Token, _, err = signer.Issue(u.ID, u.Email, o.TokenTTL); err != nil {
			return nil, err
		}
		d.Users[i] = u
		userRows[i] = []any{id, u.Email, email.Canonical(u.Email), fmt.Sprintf("lt_%s_%d", runID, i), hash}
		for _, p := range seedPermissions {
			permRows = append(permRows, []any{id, p})
		}
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"users"}, []string{"id", "email", "email_canonical", "username", "password_hash"},
		pgx.CopyFromRows(userRows)); err != nil {
		return nil, fmt.Errorf("seed users: %w", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"user_permissions"}, []string{"user_id", "permission"},
		pgx.CopyFromRows(permRows)); err != nil {
		return nil, fmt.Errorf("seed permissions: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	// As autovacuum would leave a table at rest: statistics for the planner
	// and a visibility map for index-only scans.
	if _, err := conn.Exec(ctx, "VACUUM ANALYZE users, user_permissions"); err != nil {
		return nil, fmt.Errorf("seed: vacuum: %w", err)
	}
	return d, nil
}

// newTokenSigner signs with the service's private key file, through the
// service's own token code, so seeded tokens carry exactly the claims and
// kid `auth-service tokens issue` gives.
func newTokenSigner(path, issuer, audience string) (*tokens.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := tokens.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return tokens.NewSigner(k, issuer, audience)
}
