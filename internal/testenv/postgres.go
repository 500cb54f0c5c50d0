// Package testenv is the one harness every test of the repository uses: a
// throwaway PostgreSQL cluster from the installed server binaries (initdb in a
// fresh directory, a free port, torn down on Close), the auth-service binary
// built once per test run, and a serving process with WaitReady and Stop.
// Nothing shares a server. It lives under the root internal/ so that every
// module of the repository can import it and nobody outside can.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"
)

// Postgres is one running (or stopped) PostgreSQL cluster.
type Postgres struct {
	Dir  string // cluster root: data/ and the socket live here
	Host string // the address it listens on
	Port int
	bin  string
	cred *syscall.Credential
}

// PostgresOptions shape a cluster beyond the loopback default.
type PostgresOptions struct {
	// Dir is the cluster's folder; a new temporary one when "".
	Dir string
	// ListenAddr is the one address to listen on; 127.0.0.1 when "".
	ListenAddr string
	// PasswordCIDRs may connect over TCP with a password (scram-sha-256),
	// to roles made by CreateRoleDatabase: pods on a bridge, say. Loopback
	// and the socket stay trusted.
	PasswordCIDRs []string
}

// FindPostgres locates the directory holding initdb and pg_ctl: $PG_BIN, then
// PATH, then Debian's /usr/lib/postgresql/<version>/bin (newest first).
func FindPostgres() (string, error) {
	if d := os.Getenv("PG_BIN"); d != "" {
		return d, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		return filepath.Dir(p), nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(matches, func(i, j int) bool { return pgMajor(matches[i]) > pgMajor(matches[j]) })
	if len(matches) > 0 {
		return filepath.Dir(matches[0]), nil
	}
	return "", errors.New("PostgreSQL server binaries (initdb, pg_ctl) not found: install them (Debian: apt-get install -y postgresql) or set PG_BIN to their directory")
}

func pgMajor(p string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
	return n
}

// StartPostgres creates a cluster under dir (a new temporary directory when dir is
// "") and starts it on a free loopback port.
func StartPostgres(ctx context.Context, dir string) (*Postgres, error) {
	return StartPostgresWith(ctx, PostgresOptions{Dir: dir})
}

// StartPostgresWith creates and starts a cluster as o says.
func StartPostgresWith(ctx context.Context, o PostgresOptions) (_ *Postgres, err error) {
	bin, err := FindPostgres()
	if err != nil {
		return nil, err
	}
	dir := o.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "nova-pg-"); err != nil {
			return nil, err
		}
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	s := &Postgres{Dir: dir, Host: o.ListenAddr, bin: bin}
	if s.Host == "" {
		s.Host = "127.0.0.1"
	}
	defer func() {
		if err != nil { // leave no folder and no half-started postmaster behind
			s.Close()
		}
	}()
	// PostgreSQL refuses to run as root; CI runs as root, so run it as the
	// postgres (or nobody) user with a directory it owns.
	if os.Geteuid() == 0 {
		if s.cred, err = unprivileged(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if s.cred != nil {
		if err := os.Chown(dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(filepath.Join(s.dataDir(), "PG_VERSION")); err != nil {
		if err := s.run(ctx, "initdb", "-D", s.dataDir(), "-U", "postgres", "-A", "trust", "-E", "UTF8",
			"--no-locale", "--no-sync"); err != nil {
			return nil, err
		}
		if err := s.writeHBA(o.PasswordCIDRs); err != nil {
			return nil, err
		}
	}
	if s.Port, err = FreePort(s.Host); err != nil {
		return nil, err
	}
	if err := s.Restart(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func unprivileged() (*syscall.Credential, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("running as root and no postgres or nobody user to run PostgreSQL as")
}

func (s *Postgres) dataDir() string { return filepath.Join(s.Dir, "data") }

// writeHBA trusts connections from this host — the socket, and TCP from
// the listen address, which only this host's processes use as a source —
// and asks everyone in cidrs for a password.
func (s *Postgres) writeHBA(cidrs []string) error {
	hba := fmt.Sprintf("local all all trust\nhost all all %s/32 trust\n", s.Host)
	for _, c := range cidrs {
		hba += fmt.Sprintf("host all all %s scram-sha-256\n", c)
	}
	p := filepath.Join(s.dataDir(), "pg_hba.conf")
	if err := os.WriteFile(p, []byte(hba), 0o600); err != nil {
		return err
	}
	if s.cred != nil {
		return os.Chown(p, int(s.cred.Uid), int(s.cred.Gid))
	}
	return nil
}

func (s *Postgres) run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, name), args...)
	cmd.Dir = s.Dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w\n%s", name, err, out.String())
	}
	return nil
}

// Restart starts the (stopped) cluster again on the same port.
func (s *Postgres) Restart(ctx context.Context) error {
	opts := fmt.Sprintf("-c listen_addresses=%s -c port=%d -c unix_socket_directories=%s "+
		"-c fsync=off -c full_page_writes=off -c max_connections=300 -c password_encryption=scram-sha-256",
		s.Host, s.Port, s.Dir)
	return s.run(ctx, "pg_ctl", "-D", s.dataDir(), "-l", filepath.Join(s.Dir, "postgres.log"),
		"-o", opts, "-w", "-t", "60", "start")
}

// Stop shuts the cluster down at once (clients see their connections end).
func (s *Postgres) Stop(ctx context.Context) error {
	return s.run(ctx, "pg_ctl", "-D", s.dataDir(), "-m", "immediate", "-w", "stop")
}

// URL is the connection URL of database db as the superuser, trusted from
// this host only.
func (s *Postgres) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", net.JoinHostPort(s.Host, strconv.Itoa(s.Port)), db)
}

// CreateDatabase makes a new empty database and returns its URL.
func (s *Postgres) CreateDatabase(ctx context.Context, name string) (string, error) {
	if err := s.run(ctx, "createdb", "-h", s.Dir, "-p", strconv.Itoa(s.Port), "-U", "postgres", name); err != nil {
		return "", err
	}
	return s.URL(name), nil
}

// CreateDatabaseLocale makes a new empty database whose collation and
// character classes are locale (e.g. "C", "C.UTF-8"), copied from template0
// since template1's locale cannot be changed, and returns its URL.
func (s *Postgres) CreateDatabaseLocale(ctx context.Context, name, locale string) (string, error) {
	if err := s.run(ctx, "createdb", "-h", s.Dir, "-p", strconv.Itoa(s.Port), "-U", "postgres",
		"--template", "template0", "--locale", locale, name); err != nil {
		return "", err
	}
	return s.URL(name), nil
}

// CreateRoleDatabase makes a login role with a random password and a
// database of the same name that it owns, and returns the URL to reach it
// over TCP with that password — what a pod is given.
func (s *Postgres) CreateRoleDatabase(ctx context.Context, name string) (url, password string, err error) {
	pw := make([]byte, 12)
	rand.Read(pw) //nolint:errcheck // crypto/rand does not fail
	password = hex.EncodeToString(pw)
	if err := s.run(ctx, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", s.Dir, "-p", strconv.Itoa(s.Port),
		"-U", "postgres", "-d", "postgres",
		"-c", fmt.Sprintf("CREATE ROLE %q LOGIN PASSWORD '%s'", name, password),
		"-c", fmt.Sprintf("CREATE DATABASE %q OWNER %q", name, name)); err != nil {
		return "", "", err
	}
	return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", name, password,
		net.JoinHostPort(s.Host, strconv.Itoa(s.Port)), name), password, nil
}

// Log is the server's log so far, for a failure report.
func (s *Postgres) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "postgres.log"))
	return string(b)
}

// Close stops the cluster and removes its directory.
func (s *Postgres) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = s.run(ctx, "pg_ctl", "-D", s.dataDir(), "-m", "immediate", "-w", "stop")
	os.RemoveAll(s.Dir)
}
