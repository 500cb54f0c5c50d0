package suite

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/gruntwork-io/terratest/modules/k8s"
	"github.com/gruntwork-io/terratest/modules/testing"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"

	"github.com/nova-auth/nova-auth/e2e/dockerd"
	"github.com/nova-auth/nova-auth/e2e/kindcluster"
	"github.com/nova-auth/nova-auth/e2e/localcluster"
	"github.com/nova-auth/nova-auth/internal/testenv"
)

// Kind is the provider for users' Docker-based CI: a kind cluster from
// kind-config.yaml (sigs.k8s.io/kind pinned in go.mod), the image loaded
// into every node, and PostgreSQL deployed in the cluster. kindnet enforces
// NetworkPolicy, so the suite checks the chart's policies there. Where no
// Docker engine runs (this repository's CI), it starts its own engine with a
// node image built here and kube-router as the policy-enforcing CNI
// (e2e/kindcluster), and PostgreSQL runs on the host.
type Kind struct{}

// KindClusterName is the kind cluster the suite creates and deletes.
const KindClusterName = "nova-auth-e2e"

// kindPostgresImage is the one image the kind provider pulls (from Docker
// Hub, through the node): the in-cluster database.
const kindPostgresImage = "postgres:17-alpine"

func (Kind) Name() string { return "kind" }

func (Kind) Unavailable() string {
	if userDocker() == "" {
		return ""
	}
	// No engine runs: the suite starts its own (e2e/kindcluster) where
	// Debian's dockerd and a PostgreSQL for the host are installed.
	if err := dockerd.Check(); err != nil {
		return fmt.Sprintf("the kind provider needs a running Docker engine (docker info: %s) or the private one (%v); on this machine use the local provider: make e2e",
			userDocker(), err)
	}
	if _, err := testenv.FindPostgres(); err != nil {
		return err.Error()
	}
	return ""
}

// userDocker says why no Docker engine of the user's answers, or "".
func userDocker() string {
	if _, err := exec.LookPath("docker"); err != nil {
		return "no docker command"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		return "no running Docker engine: " + firstLine(strings.TrimSpace(string(out)))
	}
	return ""
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func (Kind) Up(t testing.TestingT, ctx context.Context, o UpOptions) (*Cluster, error) {
	if userDocker() != "" {
		return privateKindUp(ctx, o)
	}
	p := cluster.NewProvider(cluster.ProviderWithDocker())
	kubeconfig := filepath.Join(o.ArtifactsDir, "kind-kubeconfig")
	// A cluster a killed run left behind goes first.
	if names, err := p.List(); err == nil {
		for _, n := range names {
			if n == KindClusterName {
				p.Delete(KindClusterName, kubeconfig) //nolint:errcheck
			}
		}
	}
	fmt.Fprintf(o.Log, "e2e: creating kind cluster %s from kind-config.yaml\n", KindClusterName)
	if err := p.Create(KindClusterName,
		cluster.CreateWithConfigFile(filepath.Join(o.RepoRoot, "kind-config.yaml")),
		cluster.CreateWithKubeconfigPath(kubeconfig),
		cluster.CreateWithWaitForReady(5*time.Minute),
		cluster.CreateWithDisplayUsage(false),
		cluster.CreateWithDisplaySalutation(false),
	); err != nil {
		return nil, fmt.Errorf("kind create cluster: %w", err)
	}
	c := &Cluster{Provider: "kind", Kubeconfig: kubeconfig, NetworkPolicies: true, stopNode: func(ctx context.Context, node string) error {
		if out, err := exec.CommandContext(ctx, "docker", "stop", node).CombinedOutput(); err != nil {
			return fmt.Errorf("docker stop %s: %w: %s", node, err, out)
		}
		return nil
	}}
	c.onDown(func() {
		logs := filepath.Join(o.ArtifactsDir, "kind-logs")
		p.CollectLogs(KindClusterName, logs) //nolint:errcheck
		if err := p.Delete(KindClusterName, kubeconfig); err != nil {
			fmt.Fprintf(o.Log, "e2e: kind delete cluster: %v\n", err)
		}
	})
	c.loadImage = kindLoader(p, KindClusterName)
	if err := c.connect(); err != nil {
		c.Down()
		return nil, err
	}
	if err := kindPostgres(t, ctx, c); err != nil {
		c.Down()
		return nil, fmt.Errorf("in-cluster PostgreSQL: %w", err)
	}
	return c, nil
}

// kindLoader loads an image tarball into every node of a kind cluster, as
// `kind load image-archive` does.
func kindLoader(p *cluster.Provider, name string) func(ctx context.Context, tarball string) error {
	return func(ctx context.Context, tarball string) error {
		nodes, err := p.ListInternalNodes(name)
		if err != nil {
			return err
		}
		for _, n := range nodes {
			f, err := os.Open(tarball)
			if err != nil {
				return err
			}
			err = nodeutils.LoadImageArchive(n, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("load %s into %s: %w", tarball, n.String(), err)
			}
		}
		return nil
	}
}

// privateKindUp is the kind provider where no Docker engine runs: the
// suite's own engine and node image built here (e2e/kindcluster), and
// PostgreSQL on the host at the nodes' network gateway, as the local provider
// has it on its bridge (no image of it can be pulled here).
func privateKindUp(ctx context.Context, o UpOptions) (*Cluster, error) {
	fmt.Fprintf(o.Log, "e2e: no Docker engine runs (%s): starting the suite's own for kind\n", userDocker())
	kc, err := kindcluster.Up(ctx, kindcluster.Options{Name: KindClusterName, ConfigFile: filepath.Join(o.RepoRoot, "kind-config.yaml"),
		Kubeconfig: filepath.Join(o.ArtifactsDir, "kind-kubeconfig"), Log: o.Log})
	if err != nil {
		return nil, err // Up stopped what it started
	}
	c := &Cluster{Provider: "kind", Kubeconfig: kc.Kubeconfig, NetworkPolicies: true, loadImage: kindLoader(kc.Provider, KindClusterName),
		stopNode: func(ctx context.Context, node string) error {
			_, err := kc.Engine.Docker(ctx, "stop", node)
			return err
		}}
	c.onDown(func() {
		kc.Provider.CollectLogs(KindClusterName, filepath.Join(o.ArtifactsDir, "kind-logs")) //nolint:errcheck
		if err := kc.Down(); err != nil {
			fmt.Fprintf(o.Log, "e2e: kind cluster down: %v\n", err)
		}
	})
	// kubectl for terratest: the one the node image ships, from the same cache.
	bin, err := localcluster.BuildComponents(ctx, localcluster.DefaultCacheDir(), o.Log)
	if err != nil {
		c.Down()
		return nil, err
	}
	c.PathDirs = []string{bin}
	if err := c.connect(); err != nil {
		c.Down()
		return nil, err
	}
	// Pod egress leaves a node masqueraded to the node's address.
	if err := c.hostPostgres(ctx, kindcluster.Gateway, kindcluster.Subnet); err != nil {
		c.Down()
		return nil, err
	}
	return c, nil
}

// kindPostgres deploys PostgreSQL in namespace nova-auth-db and reaches it
// from the host through a port-forward.
func kindPostgres(t testing.TestingT, ctx context.Context, c *Cluster) error {
	const ns, name = "nova-auth-db", "postgres"
	pw := make([]byte, 12)
	rand.Read(pw) //nolint:errcheck // crypto/rand does not fail
	password := hex.EncodeToString(pw)
	labels := map[string]string{"app.kubernetes.io/name": name}
	cl := c.Client
	if _, err := cl.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := cl.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		StringData: map[string]string{"POSTGRES_PASSWORD": password},
	}, metav1.CreateOptions{}); err != nil {
		return err
	}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{
						Name:  name,
						Image: kindPostgresImage,
						Env: []corev1.EnvVar{
							{Name: "POSTGRES_USER", Value: "nova_auth"},
							{Name: "POSTGRES_DB", Value: "nova_auth"},
							{Name: "POSTGRES_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
								LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: "POSTGRES_PASSWORD"}}},
						},
						Args:  []string{"-c", "max_connections=300", "-c", "fsync=off"},
						Ports: []corev1.ContainerPort{{Name: "postgres", ContainerPort: 5432}},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"pg_isready", "-U", "nova_auth", "-d", "nova_auth", "-h", "127.0.0.1"}}},
							PeriodSeconds: 2,
						},
						VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/postgresql/data"}},
					}},
					Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
				},
			},
		},
	}
	if _, err := cl.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := cl.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Name: "postgres", Port: 5432, TargetPort: intstr.FromInt32(5432)}},
		},
	}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if err := waitDeploymentReady(ctx, cl, ns, name, 1, 5*time.Minute); err != nil {
		return err
	}
	tun := k8s.NewTunnel(k8s.NewKubectlOptions("", c.Kubeconfig, ns), k8s.ResourceTypeService, name, 0, 5432)
	if err := tun.ForwardPortE(t); err != nil {
		return err
	}
	c.onDown(tun.Close)
	c.DatabaseURL = fmt.Sprintf("postgres://nova_auth:%s@%s.%s.svc.cluster.local:5432/nova_auth?sslmode=disable", password, name, ns)
	c.HostDatabaseURL = fmt.Sprintf("postgres://nova_auth:%s@%s/nova_auth?sslmode=disable", password, tun.Endpoint())
	return nil
}
