package suite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/gruntwork-io/terratest/modules/testing"

	"github.com/nova-auth/nova-auth/e2e/localcluster"
	"github.com/nova-auth/nova-auth/internal/testenv"
)

// Local is the provider of this repository's CI: a real single-node
// Kubernetes from upstream parts, without Docker (e2e/localcluster), and a
// throwaway PostgreSQL on the host's bridge address. A cluster started by
// `make cluster-up` is reused (and left running).
type Local struct{}

func (Local) Name() string { return "local" }

func (Local) Unavailable() string {
	if err := localcluster.Check(); err != nil {
		return err.Error()
	}
	if _, err := testenv.FindPostgres(); err != nil {
		return err.Error()
	}
	return ""
}

func (Local) Up(t testing.TestingT, ctx context.Context, o UpOptions) (*Cluster, error) {
	opts := localcluster.Options{Log: o.Log, ArtifactsDir: filepath.Join(o.ArtifactsDir, "cluster-logs")}
	lc, err := localcluster.Attach(opts)
	attached := err == nil
	if errors.Is(err, localcluster.ErrNotRunning) {
		lc, err = localcluster.Up(ctx, opts)
	}
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		Provider:   "local",
		Kubeconfig: lc.Kubeconfig,
		PathDirs:   []string{lc.BinDir},
		LogDir:     lc.LogDir(),
		loadImage:  lc.LoadImage,
	}
	if attached {
		fmt.Fprintf(o.Log, "e2e: using the cluster `make cluster-up` started (%s); it stays up\n", lc.Dir)
	} else {
		c.onDown(func() {
			if err := lc.Down(context.Background()); err != nil {
				fmt.Fprintf(o.Log, "e2e: local cluster down: %v\n", err)
			}
		})
	}
	if err := c.connect(); err != nil {
		c.Down()
		return nil, err
	}
	// The "managed database" of production: on the host, reached by the
	// pods through the bridge gateway with a password.
	if err := c.hostPostgres(ctx, lc.GatewayIP, lc.PodSubnet); err != nil {
		c.Down()
		return nil, err
	}
	return c, nil
}

// hostPostgres starts a throwaway PostgreSQL on the host listening on addr
// (the pods' gateway), with password logins from cidr, and sets the
// cluster's database URLs; Down stops it.
func (c *Cluster) hostPostgres(ctx context.Context, addr, cidr string) error {
	pg, err := testenv.StartPostgresWith(ctx, testenv.PostgresOptions{ListenAddr: addr, PasswordCIDRs: []string{cidr}})
	if err != nil {
		return fmt.Errorf("host PostgreSQL on %s: %w", addr, err)
	}
	c.onDown(pg.Close)
	url, _, err := pg.CreateRoleDatabase(ctx, "nova_auth")
	if err != nil {
		return fmt.Errorf("host PostgreSQL: %w", err)
	}
	c.DatabaseURL, c.HostDatabaseURL = url, url
	return nil
}
