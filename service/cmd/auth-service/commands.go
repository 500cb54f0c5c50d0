package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/nova-auth/nova-auth/internal/password"
	"github.com/nova-auth/nova-auth/internal/tokens"
	"github.com/nova-auth/nova-auth/service/internal/app"
	"github.com/nova-auth/nova-auth/service/internal/config"
	"github.com/nova-auth/nova-auth/service/internal/grpcserver"
	"github.com/nova-auth/nova-auth/service/internal/store"
)

func loadConfig() (*config.Config, error) { return config.Load(os.Getenv) }

func serve(ctx context.Context, stderr io.Writer) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	gl, err := net.Listen("tcp", cfg.GRPCAddr())
	if err != nil {
		return fmt.Errorf("GRPC_PORT: %w", err)
	}
	hl, err := net.Listen("tcp", cfg.HTTPAddr())
	if err != nil {
		gl.Close()
		return fmt.Errorf("HTTP_PORT: %w", err)
	}
	log.Info("starting", "version", version, "schema_version", store.SchemaVersion())
	return a.Serve(ctx, gl, hl)
}

// openStore connects for the one-shot commands and fails fast when the
// database is unreachable.
func openStore(ctx context.Context) (*config.Config, *store.Store, error) {
	cfg, err := loadConfig()
	if err != nil {
		return nil, nil, err
	}
	if err := cfg.RequireDatabase(); err != nil {
		return nil, nil, err
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, store.Options{MaxConns: 2, ConnectTimeout: cfg.DBConnectTimeout})
	if err != nil {
		return nil, nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.DBConnectTimeout)
	defer cancel()
	if err := st.Ping(pctx); err != nil {
		st.Close()
		return nil, nil, fmt.Errorf("cannot reach the database at DATABASE_URL: %w", err)
	}
	return cfg, st, nil
}

func migrate(ctx context.Context, stdout, stderr io.Writer) error {
	_, st, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	applied, err := st.Migrate(ctx)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintf(stdout, "schema is current (version %d)\n", store.SchemaVersion())
	} else {
		fmt.Fprintf(stdout, "applied migrations %v; schema at version %d\n", applied, store.SchemaVersion())
	}
	return nil
}

func users(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError{"want a subcommand: create or delete"}
	}
	switch args[0] {
	case "create":
		fs := flag.NewFlagSet("users create", flag.ContinueOnError)
		email := fs.String("email", "", "email address (unique, case-insensitive)")
		username := fs.String("username", "", "user name (unique)")
		pw := fs.String("password", "", "password (prefer --password-stdin: flags show in ps)")
		pwStdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin")
		if err := fs.Parse(args[1:]); err != nil {
			return usageError{err.Error()}
		}
		if *pwStdin {
			line, err := bufio.NewReader(stdin).ReadString('\n')
			if err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			*pw = strings.TrimRight(line, "\r\n")
		}
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
		if !strings.Contains(*email, "@") || len(*email) > 254 {
			return usageError{fmt.Sprintf("--email %q is not an email address", *email)}
		}
		if len(*username) > 64 {
			return usageError{"--username is longer than 64 characters"}
		}
		hash, err := password.Hash(*pw)
		if err != nil {
			return usageError{err.Error()}
		}
		_, st, err := openStore(ctx)
		if err != nil {
			return err
		}
		defer st.Close()
		id, err := st.CreateUser(ctx, store.NewUser{Email: *email, Username: *username, PasswordHash: hash})
		if errors.Is(err, store.ErrAlreadyExists) {
			return fmt.Errorf("a user with this email or username already exists")
		}
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, id)
		return nil
	case "delete":
		fs := flag.NewFlagSet("users delete", flag.ContinueOnError)
		user := fs.String("user", "", "user id")
		if err := fs.Parse(args[1:]); err != nil {
			return usageError{err.Error()}
		}
		id, err := uuid.Parse(*user)
		if err != nil {
			return usageError{fmt.Sprintf("--user %q is not a UUID", *user)}
		}
		_, st, err := openStore(ctx)
		if err != nil {
			return err
		}
		defer st.Close()
		if err := st.SoftDeleteUser(ctx, id); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("user %s not found", id)
		} else if err != nil {
			return err
		}
		return nil
	}
	return usageError{fmt.Sprintf("unknown subcommand %q: want create or delete", args[0])}
}

func permissions(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "grant" {
		return usageError{"want: permissions grant --user ID --permission P"}
	}
	fs := flag.NewFlagSet("permissions grant", flag.ContinueOnError)
	user := fs.String("user", "", "user id")
	perm := fs.String("permission", "", "permission, e.g. users:read")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err.Error()}
	}
	id, err := uuid.Parse(*user)
	if err != nil {
		return usageError{fmt.Sprintf("--user %q is not a UUID", *user)}
	}
	if *perm == "" || len(*perm) > 128 {
		return usageError{"--permission must be 1..128 characters"}
	}
	_, st, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.GrantPermission(ctx, id, *perm); errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("user %s not found", id)
	} else if err != nil {
		return err
	}
	return nil
}

func tokensCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "issue" {
		return usageError{"want: tokens issue --user ID [--ttl 15m]"}
	}
	fs := flag.NewFlagSet("tokens issue", flag.ContinueOnError)
	user := fs.String("user", "", "user id (the token's sub)")
	ttl := fs.Duration("ttl", 0, "lifetime (default JWT_ACCESS_TOKEN_TTL)")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err.Error()}
	}
	id, err := uuid.Parse(*user)
	if err != nil {
		return usageError{fmt.Sprintf("--user %q is not a UUID", *user)}
	}
	cfg, st, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if *ttl == 0 {
		*ttl = cfg.JWTTokenTTL
	}
	if *ttl < 0 {
		return usageError{"--ttl must be positive"}
	}
	privPEM, err := cfg.PrivateKeyPEM()
	if err != nil {
		return err
	}
	key, err := tokens.ParsePrivateKey(privPEM)
	if err != nil {
		return fmt.Errorf("JWT_PRIVATE_KEY: %w", err)
	}
	u, err := st.GetUser(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("user %s not found", id)
	} else if err != nil {
		return err
	}
	signer, err := tokens.NewSigner(key, cfg.JWTIssuer, cfg.JWTAudience)
	if err != nil {
		return err
	}
	tok, _, err := signer.Issue(u.ID.String(), u.Email, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

func keysCmd(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "generate" {
		return usageError{"want: keys generate [--out-dir D]"}
	}
	fs := flag.NewFlagSet("keys generate", flag.ContinueOnError)
	dir := fs.String("out-dir", "", "write private.pem and public.pem here (0600/0644) instead of stdout")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err.Error()}
	}
	priv, pub, err := tokens.GenerateEd25519PEM()
	if err != nil {
		return err
	}
	if *dir == "" {
		_, err = stdout.Write(append(priv, pub...))
		return err
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*dir, "private.pem"), priv, 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(*dir, "public.pem"), pub, 0o644)
}

func healthcheck(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	port := os.Getenv("GRPC_PORT")
	if port == "" {
		port = "9080"
	}
	addr := fs.String("addr", "127.0.0.1:"+port, "gRPC address to probe")
	service := fs.String("service", grpcserver.ServiceName, "service name to ask about (\"\" for the whole server)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return usageError{fmt.Sprintf("--addr %q: %v", *addr, err)}
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: *service}, grpc.WaitForReady(true))
	if err != nil {
		return fmt.Errorf("%s: %w", *addr, err)
	}
	fmt.Fprintf(stdout, "%s %s: %s\n", *addr, *service, resp.GetStatus())
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("not serving")
	}
	return nil
}

func envCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("env", flag.ContinueOnError)
	names := fs.Bool("names", false, "print only the names, one per line")
	md := fs.Bool("markdown", false, "print a Markdown table")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	switch {
	case *names:
		for _, n := range config.Names() {
			fmt.Fprintln(stdout, n)
		}
	case *md:
		fmt.Fprintln(stdout, "| Variable | Default | Meaning |")
		fmt.Fprintln(stdout, "|---|---|---|")
		for _, v := range config.Vars {
			d := v.Default
			if d == "" {
				d = "—"
			} else {
				d = "`" + d + "`"
			}
			fmt.Fprintf(stdout, "| `%s` | %s | %s |\n", v.Name, d, strings.ReplaceAll(v.Help, "|", "\\|"))
		}
	default:
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VARIABLE\tDEFAULT\tMEANING")
		for _, v := range config.Vars {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", v.Name, v.Default, v.Help)
		}
		return tw.Flush()
	}
	return nil
}
