package suite

import (
	"archive/tar"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gruntwork-io/terratest/modules/helm"
	"github.com/gruntwork-io/terratest/modules/k8s"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

// previousChartCommit holds the previous chart release: objects in
// namespace.name whatever -n says, a Namespace hook, and a JWT key
// generated into the chart's Secret by the templates (lookup).
const previousChartCommit = "35a2effec9205abf57875a3100ceff32b6ee57ef"

// testUpgradeFromPrevious: a release of the previous chart, installed with
// its defaults (release in default, objects in nova-auth, a generated key),
// upgraded to this chart under load as the README's Upgrading section says
// (`--set namespaceOverride=nova-auth`): not one call fails, the key Job
// adopts the old key, and every token issued before verifies on every new
// pod, which holds only the public key.
func testUpgradeFromPrevious(t *testing.T, e *env) {
	ctx := context.Background()
	prev := previousChart(t, e)
	secrets := e.c.Client.CoreV1().Secrets(ns)
	opts := func(set map[string]string) *helm.Options {
		o := e.helmOptions(set)
		o.KubectlOptions = k8s.NewKubectlOptions("", e.c.Kubeconfig, previousNS)
		return o
	}
	// As on a cluster that never ran this chart: no key Secret yet (the
	// release uninstalled before kept its own).
	if err := deleteKeySecret(ctx, e); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.helm(t, opts(nil), "uninstall", release, "--ignore-not-found", "--wait", "--timeout", "3m") //nolint:errcheck
		deleteKeySecret(context.Background(), e)                                                      //nolint:errcheck
	})

	// The previous chart's egress rule admits PostgreSQL on port 5432 only
	// (this chart takes the port from database.url): a user with another
	// port set it, as here, where the database may listen elsewhere. Without
	// it the old pods reach the database only before the policy engine
	// applies their egress rule, a race on a cluster that enforces policy.
	dbPort, err := databasePort(e.c.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := e.helm(t, opts(map[string]string{"networkPolicy.egress.postgresql.ports[0].port": dbPort}),
		"install", release, prev, "--timeout", "5m"); err != nil {
		t.Fatalf("helm install (previous chart %.7s): %v\n%s", previousChartCommit, err, out)
	}
	if err := waitDeploymentReady(ctx, e.c.Client, ns, release, 3, 4*time.Minute); err != nil {
		t.Fatal(err)
	}
	legacy, err := secrets.Get(ctx, release, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	oldKey := legacy.Data["JWT_PRIVATE_KEY"]
	if !strings.Contains(string(oldKey), "PRIVATE KEY") {
		t.Fatalf("the previous chart generated no key into Secret %s", release)
	}

	// Tokens issued before the upgrade: with the CLI, and the load test's
	// whole data set (which the load calls VerifyToken with throughout).
	issued := map[string]string{} // token → user id
	env := hostEnvFrom(t, e, release)
	for i := range 3 {
		id := createUser(t, e, env, fmt.Sprintf("e2e-previous-%d-%d@nova.test", i, time.Now().UnixNano()))
		issued[issueToken(t, e, env, id)] = id
	}
	dataset := seedWithKey(t, e, 300, oldKey, issued)
	verifyOnEveryPod(t, e, issued, "before the upgrade")

	upgradeUnderLoad(t, e, dataset, "upgrade-from-previous", opts(map[string]string{"namespaceOverride": ns}),
		"upgrade", release, e.chart, "--timeout", "5m")

	k, err := secrets.Get(ctx, keySecret, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the key Job made no %s: %v", keySecret, err)
	}
	if string(k.Data["JWT_PRIVATE_KEY"]) != string(oldKey) {
		t.Errorf("%s holds another private key than the previous chart's: the key was not adopted", keySecret)
	}
	checkKeyPair(t, k.Data)
	t.Logf("Secret %s: %s", keySecret, k.Annotations["nova-auth/key-origin"])
	if s, err := secrets.Get(ctx, release, metav1.GetOptions{}); err != nil || len(s.Data["JWT_PRIVATE_KEY"]) > 0 {
		t.Errorf("the chart's Secret %s after the upgrade: JWT_PRIVATE_KEY still there (%v)", release, err)
	}
	if _, err := e.c.Client.RbacV1().Roles(ns).Get(ctx, release, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the previous chart's Role %s survived the upgrade (err %v)", release, err)
	}
	for _, p := range readyServerPods(t, e) {
		checkNoPrivateKey(t, &p)
	}
	verifyOnEveryPod(t, e, issued, "after the upgrade")
	// Issuers now sign with the key from the key Secret.
	env = hostEnv(t, e)
	id := createUser(t, e, env, fmt.Sprintf("e2e-previous-after-%d@nova.test", time.Now().UnixNano()))
	verifyOnEveryPod(t, e, map[string]string{issueToken(t, e, env, id): id}, "signed with the key Secret's key")
}

// databasePort is the port of a PostgreSQL URL, 5432 when it names none.
func databasePort(dbURL string) (string, error) {
	u, err := url.Parse(dbURL)
	if err != nil {
		// Not err itself: url.Error quotes the URL, password and all.
		return "", errors.New("the database URL does not parse")
	}
	if p := u.Port(); p != "" {
		return p, nil
	}
	return "5432", nil
}

// previousChart extracts charts/auth at previousChartCommit into the run's
// artifacts (git archive), fetching that one commit when the clone is
// shallow, and returns the chart's folder.
func previousChart(t *testing.T, e *env) string {
	t.Helper()
	dir := filepath.Join(e.out, "previous-chart")
	os.RemoveAll(dir) //nolint:errcheck
	err := gitArchive(e.root, previousChartCommit, "charts/auth", dir)
	if err != nil {
		// A shallow checkout (CI) lacks the commit: fetch just it.
		if out, ferr := exec.Command("git", "-C", e.root, "fetch", "--depth=1", "origin", previousChartCommit).CombinedOutput(); ferr != nil {
			t.Fatalf("the previous chart (commit %s) is not in this clone (%v) and cannot be fetched: %v\n%s", previousChartCommit, err, ferr, out)
		}
		err = gitArchive(e.root, previousChartCommit, "charts/auth", dir)
	}
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "charts", "auth")
}

// gitArchive writes path as of commit under dir.
func gitArchive(repo, commit, path, dir string) error {
	cmd := exec.Command("git", "-C", repo, "archive", "--format=tar", commit, path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	r, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	tr := tar.NewReader(r)
	var terr error
	for {
		h, err := tr.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				terr = err
			}
			break
		}
		name := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(name, dir+string(filepath.Separator)) {
			terr = fmt.Errorf("git archive: %q leaves %s", h.Name, dir)
			break
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			terr = err
			break
		}
		b, err := io.ReadAll(tr)
		if err == nil {
			err = os.WriteFile(name, b, 0o644)
		}
		if err != nil {
			terr = err
			break
		}
	}
	io.Copy(io.Discard, r) //nolint:errcheck
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("git archive %s %s: %w: %s", commit, path, err, stderr.String())
	}
	return terr
}

// deleteKeySecret deletes the key Secret and waits until it is gone.
func deleteKeySecret(ctx context.Context, e *env) error {
	secrets := e.c.Client.CoreV1().Secrets(ns)
	if err := secrets.Delete(ctx, keySecret, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := secrets.Get(ctx, keySecret, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

// seedWithKey has the load test seed n users with tokens signed by keyPEM
// (as `auth-service tokens issue` with that key signs them) and returns its
// data set; the tokens are added to issued. It checks the data set against
// the serving pods with a short VerifyToken run.
func seedWithKey(t *testing.T, e *env, n int, keyPEM []byte, issued map[string]string) []byte {
	t.Helper()
	dir := filepath.Join(e.out, "previous-seed")
	keyFile := filepath.Join(e.out, "previous-key.pem")
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(keyFile)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := []string{"--addr", portForward(t, e, 9080), "--seed", fmt.Sprint(n), "--database-url", e.c.HostDatabaseURL,
		"--jwt-private-key-file", keyFile, "--scenario", "VerifyToken", "--rps", "50", "--duration", "3s", "--warmup-time", "1s",
		"--warmup", "0", "--p95", "0", "--p99", "0", "--min-rps", "0", "--max-error-rate", "0", "--progress", "0", "--out", dir}
	if out, err := run(ctx, nil, "", e.loadtest, args...); err != nil {
		t.Fatalf("load test seed: %v\n%s", redact(err.Error(), e.c.HostDatabaseURL), out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "data.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Users []struct{ ID, Token string }
	}
	if err := json.Unmarshal(b, &d); err != nil || len(d.Users) != n {
		t.Fatalf("seeded data set: %v (%d users)", err, len(d.Users))
	}
	for _, u := range d.Users {
		issued[u.Token] = u.ID
	}
	return b
}

// verifyOnEveryPod calls VerifyToken on each Ready service pod, through a
// port-forward of its own, for every token (token → user id): each must be
// valid for its user. Each pod also reads every user with GetUser (a cache
// miss the first time, so from PostgreSQL): a pod its NetworkPolicy keeps
// from the database fails here, not only under load.
func verifyOnEveryPod(t *testing.T, e *env, issued map[string]string, when string) {
	t.Helper()
	pods := readyServerPods(t, e)
	if len(pods) == 0 {
		t.Fatalf("%s: no Ready service pod", when)
	}
	for _, p := range pods {
		tun := k8s.NewTunnel(k8s.NewKubectlOptions("", e.c.Kubeconfig, ns), k8s.ResourceTypePod, p.Name, 0, 9080)
		if err := tun.ForwardPortE(t); err != nil {
			t.Fatalf("port-forward to %s: %v", p.Name, err)
		}
		c := authClient(t, strings.Replace(tun.Endpoint(), "localhost", "127.0.0.1", 1))
		bad, first := 0, ""
		badRead, firstRead := 0, ""
		for tok, id := range issued {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			v, err := c.VerifyToken(ctx, &authpb.VerifyTokenRequest{Token: tok})
			cancel()
			if err != nil || !v.GetValid() || v.GetUserId() != id {
				if bad++; first == "" {
					first = fmt.Sprintf("%v %v", v, err)
				}
			}
			ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
			u, err := c.GetUser(ctx, &authpb.GetUserRequest{UserId: id})
			cancel()
			if err != nil || u.GetUser().GetId() != id {
				if badRead++; firstRead == "" {
					firstRead = fmt.Sprintf("GetUser %s: %v", id, err)
				}
			}
		}
		if badRead > 0 {
			t.Errorf("%s: pod %s fails to read %d of %d users from PostgreSQL (first: %s)", when, p.Name, badRead, len(issued), firstRead)
		}
		tun.Close()
		if bad > 0 {
			t.Errorf("%s: pod %s refuses %d of %d issued tokens (first: %s)", when, p.Name, bad, len(issued), first)
		}
	}
}

// checkKeyPair fails unless data holds a private key (PKCS#8, as the key
// Job and the previous chart write Ed25519 keys) and its public key.
func checkKeyPair(t *testing.T, data map[string][]byte) {
	t.Helper()
	pb, _ := pem.Decode(data["JWT_PRIVATE_KEY"])
	kb, _ := pem.Decode(data["JWT_PUBLIC_KEY"])
	if pb == nil || kb == nil {
		t.Errorf("key Secret: JWT_PRIVATE_KEY or JWT_PUBLIC_KEY is not PEM")
		return
	}
	priv, err := x509.ParsePKCS8PrivateKey(pb.Bytes)
	if err != nil {
		t.Errorf("key Secret JWT_PRIVATE_KEY: %v", err)
		return
	}
	pub, err := x509.ParsePKIXPublicKey(kb.Bytes)
	if err != nil {
		t.Errorf("key Secret JWT_PUBLIC_KEY: %v", err)
		return
	}
	if !pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(priv.(crypto.Signer).Public()) {
		t.Error("key Secret JWT_PUBLIC_KEY is not JWT_PRIVATE_KEY's public key")
	}
}

// checkNoPrivateKey fails when a service pod can read the private key: an
// env var of that name, or the key Secret by envFrom or volume.
func checkNoPrivateKey(t *testing.T, p *corev1.Pod) {
	t.Helper()
	for _, c := range append(p.Spec.InitContainers, p.Spec.Containers...) {
		for _, v := range c.Env {
			if strings.HasPrefix(v.Name, "JWT_PRIVATE_KEY") {
				t.Errorf("pod %s container %s has env %s", p.Name, c.Name, v.Name)
			}
		}
		for _, f := range c.EnvFrom {
			if f.SecretRef != nil && f.SecretRef.Name == keySecret {
				t.Errorf("pod %s container %s takes the key Secret as envFrom", p.Name, c.Name)
			}
		}
	}
	for _, v := range p.Spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == keySecret {
			t.Errorf("pod %s mounts the key Secret", p.Name)
		}
	}
}
