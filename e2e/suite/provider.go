// Package suite is the e2e suite: it brings up a cluster (the local cluster
// here, kind where Docker runs), loads the image built by `make image`,
// installs charts/auth with helm through terratest, and checks what only a
// real cluster shows. The providers are here; the assertions are in the
// tests (suite_test.go).
package suite

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/gruntwork-io/terratest/modules/testing"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Cluster is what a provider gives the suite.
type Cluster struct {
	// Provider is "local" or "kind".
	Provider string
	// Kubeconfig is a cluster-admin kubeconfig file.
	Kubeconfig string
	Config     *rest.Config
	Client     kubernetes.Interface
	// PathDirs are put in front of PATH (kubectl, for terratest's k8s module).
	PathDirs []string
	// DatabaseURL is the chart's database.url: a PostgreSQL pods reach.
	DatabaseURL string
	// HostDatabaseURL is the same database as the host reaches it (seeding,
	// `auth-service users create`).
	HostDatabaseURL string
	// NetworkPolicies says whether the cluster's CNI enforces NetworkPolicy.
	NetworkPolicies bool
	// LogDir holds the cluster components' logs, when the provider has them.
	LogDir string

	loadImage func(ctx context.Context, tarball string) error
	stopNode  func(ctx context.Context, node string) error
	down      []func()
}

// StopNode stops a node's machine (`docker stop` of a kind node's
// container), as a host that goes away; nil when the provider cannot.
func (c *Cluster) StopNode(ctx context.Context, node string) error {
	if c.stopNode == nil {
		return fmt.Errorf("the %s provider cannot stop a node", c.Provider)
	}
	return c.stopNode(ctx, node)
}

// LoadImage makes the image tarball available to every node (as `kind load
// image-archive` does), so pods use it without a registry.
func (c *Cluster) LoadImage(ctx context.Context, tarball string) error {
	return c.loadImage(ctx, tarball)
}

// Down stops what the provider started, last first.
func (c *Cluster) Down() {
	for i := len(c.down) - 1; i >= 0; i-- {
		c.down[i]()
	}
	c.down = nil
}

func (c *Cluster) onDown(f func()) { c.down = append(c.down, f) }

func (c *Cluster) connect() error {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 50, 100
	cl, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	c.Config, c.Client = cfg, cl
	return nil
}

// UpOptions are what every provider's Up takes.
type UpOptions struct {
	// RepoRoot is the repository root (kind-config.yaml lives there).
	RepoRoot string
	// ArtifactsDir receives logs worth keeping.
	ArtifactsDir string
	// Log receives progress lines.
	Log io.Writer
}

// Provider brings up a cluster for the suite.
type Provider interface {
	Name() string
	// Unavailable says why the provider cannot run on this host, or "".
	Unavailable() string
	// Up starts a cluster with a database pods reach.
	Up(t testing.TestingT, ctx context.Context, o UpOptions) (*Cluster, error)
}

// FromEnv returns the provider E2E_PROVIDER names: local (default) or kind.
func FromEnv() (Provider, error) {
	switch p := os.Getenv("E2E_PROVIDER"); p {
	case "", "local":
		return Local{}, nil
	case "kind":
		return Kind{}, nil
	default:
		return nil, fmt.Errorf("E2E_PROVIDER=%q: want local or kind", p)
	}
}
