package suite

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
	"strings"
	"syscall"
	"time"
)

// hostPostgres is a throwaway PostgreSQL cluster on the host, listening on
// the pod bridge's gateway address so that pods reach it: the "managed
// database" shape of production. It is internal/pgtest's recipe (which the
// e2e module cannot import) with a password and a pg_hba line for the pods.
type hostPostgres struct {
	dir, bin, addr string
	port           int
	password       string
	cred           *syscall.Credential
}

// findPGBin locates initdb and pg_ctl: $PG_BIN, PATH, then Debian's
// /usr/lib/postgresql/<version>/bin, newest first.
func findPGBin() (string, error) {
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
	sort.Slice(matches, func(i, j int) bool {
		a, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(matches[i]))))
		b, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(matches[j]))))
		return a > b
	})
	if len(matches) > 0 {
		return filepath.Dir(matches[0]), nil
	}
	return "", errors.New("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql, or set PG_BIN")
}

// startHostPostgres starts a cluster in a new folder under the temporary
// folder (which the postgres user can enter), listening
// on addr (the bridge gateway) and admitting podCIDR with a password.
func startHostPostgres(ctx context.Context, addr, podCIDR string) (*hostPostgres, error) {
	bin, err := findPGBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "nova-auth-e2e-pg-")
	if err != nil {
		return nil, err
	}
	pw := make([]byte, 12)
	rand.Read(pw) //nolint:errcheck // crypto/rand does not fail
	p := &hostPostgres{dir: dir, bin: bin, addr: addr, password: hex.EncodeToString(pw)}
	// PostgreSQL refuses to run as root; CI runs as root.
	if os.Geteuid() == 0 {
		for _, name := range []string{"postgres", "nobody"} {
			if u, err := user.Lookup(name); err == nil {
				uid, _ := strconv.Atoi(u.Uid)
				gid, _ := strconv.Atoi(u.Gid)
				p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
				break
			}
		}
		if p.cred == nil {
			return nil, errors.New("running as root and no postgres or nobody user to run PostgreSQL as")
		}
		if err := os.Chown(dir, int(p.cred.Uid), int(p.cred.Gid)); err != nil {
			return nil, err
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	if err := p.run(ctx, "initdb", "-D", p.dataDir(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"); err != nil {
		return nil, err
	}
	// Local socket: trust (the test's own admin); TCP: password only, from
	// the pods' range and the host's own gateway address.
	hba := fmt.Sprintf("local all all trust\nhost all all %s/32 scram-sha-256\nhost all all %s scram-sha-256\n", addr, podCIDR)
	if err := os.WriteFile(filepath.Join(p.dataDir(), "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return nil, err
	}
	if p.cred != nil {
		os.Chown(filepath.Join(p.dataDir(), "pg_hba.conf"), int(p.cred.Uid), int(p.cred.Gid)) //nolint:errcheck
	}
	if p.port, err = freePortOn(addr); err != nil {
		return nil, err
	}
	opts := fmt.Sprintf("-c listen_addresses=%s -c port=%d -c unix_socket_directories=%s "+
		"-c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=300 -c password_encryption=scram-sha-256",
		addr, p.port, dir)
	if err := p.run(ctx, "pg_ctl", "-D", p.dataDir(), "-l", filepath.Join(dir, "postgres.log"), "-o", opts, "-w", "-t", "60", "start"); err != nil {
		return nil, err
	}
	// Two -c: each runs on its own (CREATE DATABASE cannot run in a transaction).
	if err := p.run(ctx, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", dir, "-p", strconv.Itoa(p.port), "-U", "postgres", "-d", "postgres",
		"-c", fmt.Sprintf("CREATE ROLE nova_auth LOGIN PASSWORD '%s'", p.password), "-c", "CREATE DATABASE nova_auth OWNER nova_auth"); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func (p *hostPostgres) dataDir() string { return filepath.Join(p.dir, "data") }

func (p *hostPostgres) run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(p.bin, name), args...)
	cmd.Dir = p.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if p.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w\n%s", name, err, out.String())
	}
	return nil
}

// URL is the database's URL, the same for pods and for the host (the
// gateway address is the host's own).
func (p *hostPostgres) URL() string {
	return fmt.Sprintf("postgres://nova_auth:%s@%s/nova_auth?sslmode=disable", p.password, net.JoinHostPort(p.addr, strconv.Itoa(p.port)))
}

// Log returns the server's log, for a failure report.
func (p *hostPostgres) Log() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "postgres.log"))
	return string(b)
}

// Close stops the server and removes its folder.
func (p *hostPostgres) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = p.run(ctx, "pg_ctl", "-D", p.dataDir(), "-m", "immediate", "-w", "stop")
	os.RemoveAll(p.dir)
}

// freePortOn returns a TCP port free on addr now.
func freePortOn(addr string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// redact hides a URL's password in messages.
func redact(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "****")
}
