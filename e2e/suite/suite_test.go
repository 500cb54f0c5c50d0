package suite

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gruntwork-io/terratest/modules/helm"
	"github.com/gruntwork-io/terratest/modules/k8s"
	"github.com/gruntwork-io/terratest/modules/logger"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nova-auth/nova-auth/e2e/authimage"
	"github.com/nova-auth/nova-auth/e2e/ociimage"
)

const (
	release = "nova-auth"
	// ns is the release namespace, where every object goes: the suite
	// installs as the README says, `helm install -n nova-auth --create-namespace`.
	ns = "nova-auth"
	// previousNS is where the previous chart release was installed with
	// its defaults (`helm install` without -n); its objects went to ns.
	previousNS = "default"
	// keySecret is the Secret the chart's key Job makes: the JWT key pair.
	keySecret = release + "-jwt"
	// serverSelector picks the service pods (not the migration Job or the test pod).
	serverSelector = "app.kubernetes.io/instance=nova-auth,app.kubernetes.io/component=server"
	// loadtestRef is the load test's own image, for runs inside the cluster.
	loadtestRef = "localhost/nova-auth/loadtest:e2e"
	// probeRef is e2e/cmd/e2eprobe's image: HTTP checks and calls through
	// the clients pool from inside the cluster.
	probeRef = "localhost/nova-auth/e2eprobe:e2e"
)

// env is what every step of the suite shares.
type env struct {
	c        *Cluster
	root     string // repository root
	out      string // artifacts of this run
	chart    string
	bin      string // auth-service, extracted from the image the cluster runs
	loadtest string // the load test, built static
	values   string // values file with the database URL (kept out of command lines)
}

func (e *env) helmOptions(set map[string]string) *helm.Options {
	return &helm.Options{
		KubectlOptions: k8s.NewKubectlOptions("", e.c.Kubeconfig, ns),
		ValuesFiles:    []string{e.values},
		SetValues:      set,
		Logger:         logger.Terratest,
	}
}

// helm runs bin/helm through terratest and keeps its output as an artifact.
// install and upgrade get the options' values files and --set values
// (terratest adds them only in its own Install/Upgrade, which cannot pass
// --timeout without ExtraArgs).
func (e *env) helm(t *testing.T, opts *helm.Options, args ...string) (string, error) {
	if args[0] == "install" || args[0] == "upgrade" {
		for _, f := range opts.ValuesFiles {
			args = append(args, "-f", f)
		}
		keys := make([]string, 0, len(opts.SetValues))
		for k := range opts.SetValues {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			args = append(args, "--set", k+"="+opts.SetValues[k])
		}
	}
	out, err := helm.RunHelmCommandAndGetOutputE(t, opts, args[0], args[1:]...)
	appendFile(filepath.Join(e.out, "helm.log"), fmt.Sprintf("$ helm %s\n%s\n(err: %v)\n\n", strings.Join(args, " "), out, err))
	return out, err
}

// run runs a host command (the auth-service binary, the load test) with env.
func run(ctx context.Context, env []string, stdin string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s%s", filepath.Base(name), strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// writeArtifact keeps s as e.out/dir/name.
func writeArtifact(e *env, dir, name, s string) {
	os.MkdirAll(filepath.Join(e.out, dir), 0o755)                   //nolint:errcheck
	os.WriteFile(filepath.Join(e.out, dir, name), []byte(s), 0o644) //nolint:errcheck
}

func appendFile(path, s string) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	f.WriteString(s) //nolint:errcheck
}

// TestE2E is the whole suite, in order: each step builds on the one before.
func TestE2E(t *testing.T) {
	p, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if why := p.Unavailable(); why != "" {
		// kind is optional on a developer's machine, never in CI (CI=1):
		// make test runs it there, and a skip would pass without a test.
		if p.Name() == "kind" && os.Getenv("CI") == "" {
			t.Skipf("E2E_PROVIDER=kind skipped: %s", why)
		}
		t.Fatalf("provider %s cannot run here: %s", p.Name(), why)
	}
	ctx := context.Background()
	start := time.Now()
	e := setup(t, ctx, p)
	t.Logf("setup (cluster, database, images) took %s", time.Since(start).Round(time.Second))

	steps := []struct {
		name     string
		f        func(*testing.T, *env)
		critical bool // later steps need it
	}{
		{"install_without_database_fails", testInstallWithoutDatabase, false},
		{"install", testInstall, true},
		{"restricted", testRestricted, false},
		{"helm_test", testHelmTest, false},
		{"objects", testObjects, false},
		{"rbac", testRBAC, false},
		{"rpcs", testRPCs, false},
		{"network_policy", testNetworkPolicy, false},
		{"loadtest", testLoad, false},
		{"rolling_upgrade_under_load", testRollingUpgrade, false},
		{"pdb_eviction", testEviction, false},
		{"rollback", testRollback, false},
		{"hpa", testHPA, false},
		{"uninstall", testUninstall, false},
		{"upgrade_from_previous_release", testUpgradeFromPrevious, false},
		// Last: it stops a worker for good, which disturbs what runs after
		// (a rollout on the one worker left had failed calls).
		{"node_loss", testNodeLoss, false},
	}
	for _, s := range steps {
		st := time.Now()
		ok := t.Run(s.name, func(t *testing.T) { s.f(t, e) })
		appendFile(filepath.Join(e.out, "timings.txt"), fmt.Sprintf("%-32s %6.1fs %v\n", s.name, time.Since(st).Seconds(), ok))
		if !ok && s.critical {
			t.Fatalf("%s failed; the later steps need it", s.name)
		}
	}
	t.Logf("suite took %s; artifacts in %s", time.Since(start).Round(time.Second), e.out)
}

// setup builds what the cluster runs, brings the cluster up and loads the
// images. Everything it starts is stopped by t.Cleanup.
func setup(t *testing.T, ctx context.Context, p Provider) *env {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	out := os.Getenv("E2E_OUT")
	if out == "" {
		out = filepath.Join(root, "e2e", "out")
	}
	out = filepath.Join(out, p.Name())
	os.RemoveAll(out)
	if err := os.MkdirAll(filepath.Join(out, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("artifacts: %s", out)
	e := &env{root: root, out: out, chart: filepath.Join(root, "charts", "auth")}

	// helm (bin/helm from the pinned helm.sh/helm/v3) is what terratest's
	// helm module runs: put it first on PATH.
	helmBin := os.Getenv("E2E_HELM")
	if helmBin == "" {
		helmBin = filepath.Join(root, "bin", "helm")
	}
	if _, err := os.Stat(helmBin); err != nil {
		t.Fatalf("helm not found at %s: run `make helm` (or set E2E_HELM)", helmBin)
	}

	// The images and host binaries build while the cluster starts.
	var wg sync.WaitGroup
	var imgErr, ltErr, probeErr error
	image := os.Getenv("E2E_IMAGE")
	wg.Add(3)
	go func() {
		defer wg.Done()
		if image == "" {
			image = filepath.Join(out, "auth-service.tar")
			if _, imgErr = authimage.Build(ctx, authimage.Options{RepoRoot: root, Out: image}); imgErr != nil {
				return
			}
		}
		img, err := authimage.Open(image)
		if err != nil {
			imgErr = err
			return
		}
		e.bin = filepath.Join(out, "bin", "auth-service")
		imgErr = authimage.ExtractFile(img, authimage.BinaryPath, e.bin)
	}()
	go func() {
		defer wg.Done()
		ltErr = buildLoadtest(ctx, e)
	}()
	go func() {
		defer wg.Done()
		probeErr = buildProbe(ctx, e)
	}()

	log := &testLog{t: t}
	c, err := p.Up(t, ctx, UpOptions{RepoRoot: root, ArtifactsDir: out, Log: log})
	wg.Wait()
	if err != nil {
		t.Fatalf("%s cluster: %v", p.Name(), err)
	}
	e.c = c
	t.Cleanup(c.Down)
	t.Cleanup(func() {
		if t.Failed() {
			diagnostics(e)
		}
		// The suite's own namespaces (a reused cluster keeps running).
		for _, n := range []string{clientNS, outsiderNS, monitoringNS, gatewayNS} {
			c.Client.CoreV1().Namespaces().Delete(context.Background(), n, metav1.DeleteOptions{}) //nolint:errcheck
		}
	})
	if imgErr != nil {
		t.Fatalf("auth-service image: %v", imgErr)
	}
	if ltErr != nil {
		t.Fatalf("loadtest: %v", ltErr)
	}
	if probeErr != nil {
		t.Fatalf("e2eprobe: %v", probeErr)
	}
	os.Setenv("PATH", strings.Join(append([]string{filepath.Dir(helmBin)}, append(c.PathDirs, os.Getenv("PATH"))...), string(os.PathListSeparator)))
	for _, tar := range []string{image, filepath.Join(out, "loadtest.tar"), filepath.Join(out, "e2eprobe.tar")} {
		st := time.Now()
		if err := c.LoadImage(ctx, tar); err != nil {
			t.Fatalf("load %s: %v", tar, err)
		}
		t.Logf("loaded %s in %s", filepath.Base(tar), time.Since(st).Round(100*time.Millisecond))
	}
	// A reused cluster may hold a release an interrupted run left, of this
	// chart or of the previous one.
	for _, n := range []string{ns, previousNS} {
		e.helm(t, &helm.Options{KubectlOptions: k8s.NewKubectlOptions("", c.Kubeconfig, n), Logger: logger.Discard}, //nolint:errcheck
			"uninstall", release, "--ignore-not-found", "--wait", "--timeout", "2m")
	}
	e.values = filepath.Join(out, "values-database.yaml")
	if err := os.WriteFile(e.values, []byte(fmt.Sprintf("database:\n  url: %q\n", c.DatabaseURL)), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// buildLoadtest builds the load test (its own module, loadtest/) as a static binary, for
// the host and for an image that runs it inside the cluster.
func buildLoadtest(ctx context.Context, e *env) error {
	e.loadtest = filepath.Join(e.out, "bin", "loadtest")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", e.loadtest, ".")
	cmd.Dir = filepath.Join(e.root, "loadtest")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build loadtest: %w\n%s", err, b)
	}
	return toolImage(e.loadtest, "/usr/local/bin/loadtest", loadtestRef, "nova-auth loadtest (e2e)", filepath.Join(e.out, "loadtest.tar"))
}

// buildProbe builds e2e/cmd/e2eprobe and its image.
func buildProbe(ctx context.Context, e *env) error {
	bin := filepath.Join(e.out, "bin", "e2eprobe")
	if err := ociimage.GoBuild(ctx, filepath.Join(e.root, "e2e"), "./cmd/e2eprobe", bin); err != nil {
		return err
	}
	return toolImage(bin, "/usr/local/bin/e2eprobe", probeRef, "nova-auth e2e probe", filepath.Join(e.out, "e2eprobe.tar"))
}

// toolImage writes an image tarball of one static binary, run as the
// service's user (so its pods pass Pod Security "restricted").
func toolImage(bin, path, ref, title, tarball string) error {
	data, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	img, err := ociimage.Build(ociimage.Config{
		Entrypoint: []string{path},
		User:       authimage.User,
		Labels:     map[string]string{"org.opencontainers.image.title": title},
	}, ociimage.File{Path: path, Mode: 0o755, Data: data})
	if err != nil {
		return err
	}
	return ociimage.WriteTarball(tarball, ref, img)
}

// testLog sends progress lines to the test log.
type testLog struct{ t *testing.T }

func (l *testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// diagnostics keeps what explains a failure: pods, events, logs.
func diagnostics(e *env) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := filepath.Join(e.out, "diagnostics")
	os.MkdirAll(dir, 0o755) //nolint:errcheck
	var b strings.Builder
	for _, n := range []string{ns, clientNS, outsiderNS, monitoringNS, gatewayNS, previousNS} {
		pods, err := e.c.Client.CoreV1().Pods(n).List(ctx, metav1.ListOptions{})
		if err != nil {
			continue
		}
		for _, p := range pods.Items {
			fmt.Fprintf(&b, "pod %s/%s phase %s ready %v\n", n, p.Name, p.Status.Phase, podReady(&p))
			for _, c := range p.Status.ContainerStatuses {
				lg, _ := e.c.Client.CoreV1().Pods(n).GetLogs(p.Name, &corev1.PodLogOptions{Container: c.Name}).DoRaw(ctx)
				os.WriteFile(filepath.Join(dir, p.Name+"-"+c.Name+".log"), lg, 0o644) //nolint:errcheck
			}
		}
		ev, err := e.c.Client.CoreV1().Events(n).List(ctx, metav1.ListOptions{})
		if err == nil {
			sort.Slice(ev.Items, func(i, j int) bool { return ev.Items[i].LastTimestamp.Before(&ev.Items[j].LastTimestamp) })
			for _, x := range ev.Items {
				fmt.Fprintf(&b, "event %s %s %s/%s %s: %s\n", x.LastTimestamp.Format(time.TimeOnly), x.Type, x.InvolvedObject.Kind, x.InvolvedObject.Name, x.Reason, x.Message)
			}
		}
	}
	os.WriteFile(filepath.Join(dir, "cluster.txt"), []byte(b.String()), 0o644) //nolint:errcheck
	if e.c.LogDir != "" {
		copyDir(e.c.LogDir, filepath.Join(dir, "components"))
	}
}

func copyDir(from, to string) {
	os.MkdirAll(to, 0o755) //nolint:errcheck
	entries, _ := os.ReadDir(from)
	for _, x := range entries {
		if b, err := os.ReadFile(filepath.Join(from, x.Name())); err == nil && !x.IsDir() {
			os.WriteFile(filepath.Join(to, x.Name()), b, 0o644) //nolint:errcheck
		}
	}
}
