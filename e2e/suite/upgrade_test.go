package suite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gruntwork-io/terratest/modules/helm"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

const (
	// clientNS is a Nova service namespace (nova.io/service=true): the
	// chart's ingress policy admits it to gRPC.
	clientNS = "nova-auth-e2e-client"
	// outsiderNS is any other namespace: the policy refuses it.
	outsiderNS = "nova-auth-e2e-outsider"
	// grpcAddr is the external Service by its cluster DNS name.
	grpcAddr = release + "." + ns + ".svc.cluster.local:9080"
)

// ensureNamespace creates a namespace enforcing "restricted" (idempotent).
func ensureNamespace(t *testing.T, e *env, name string, labels map[string]string) {
	t.Helper()
	l := map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}
	for k, v := range labels {
		l[k] = v
	}
	_, err := e.c.Client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// restrictedPod is a one-shot pod that passes Pod Security "restricted".
func restrictedPod(name string, c corev1.Container, vols ...corev1.Volume) *corev1.Pod {
	c.ImagePullPolicy = corev1.PullIfNotPresent
	c.SecurityContext = &corev1.SecurityContext{
		RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532), RunAsGroup: ptr.To[int64](65532),
		AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
		Capabilities:   &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	if c.Resources.Requests == nil {
		c.Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app.kubernetes.io/part-of": "nova-auth-e2e"}},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			AutomountServiceAccountToken:  ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			Containers:                    []corev1.Container{c},
			Volumes:                       vols,
		},
	}
}

// startPod creates the pod (replacing one of the same name).
func startPod(t *testing.T, e *env, namespace string, p *corev1.Pod) {
	t.Helper()
	ctx := context.Background()
	pods := e.c.Client.CoreV1().Pods(namespace)
	pods.Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})                                    //nolint:errcheck
	wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) { //nolint:errcheck
		_, err := pods.Get(ctx, p.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitPod waits for the pod to finish and returns its phase and log.
func waitPod(t *testing.T, e *env, namespace, name string, timeout time.Duration) (corev1.PodPhase, string) {
	t.Helper()
	ctx := context.Background()
	var phase corev1.PodPhase
	wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) { //nolint:errcheck
		p, err := e.c.Client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		phase = p.Status.Phase
		return phase == corev1.PodSucceeded || phase == corev1.PodFailed, nil
	})
	lg, _ := e.c.Client.CoreV1().Pods(namespace).GetLogs(name, &corev1.PodLogOptions{}).DoRaw(ctx)
	return phase, string(lg)
}

// startLoadtest runs the load test from its own image in a Nova service
// namespace against the Service by DNS, with the data set, at rps for d,
// failing on any failed call, and returns its pod once it runs.
func startLoadtest(t *testing.T, e *env, name string, dataset []byte, rps, concurrency, connections int, d time.Duration) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	ensureNamespace(t, e, clientNS, map[string]string{"nova.io/service": "true"})
	cms := e.c.Client.CoreV1().ConfigMaps(clientNS)
	cm := name + "-data"
	cms.Delete(ctx, cm, metav1.DeleteOptions{}) //nolint:errcheck
	if _, err := cms.Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: cm},
		Data:       map[string]string{"data.json": string(dataset)},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := restrictedPod(name, corev1.Container{
		Name: "loadtest", Image: loadtestRef,
		Args: []string{"--addr", grpcAddr, "--data", "/data/data.json", "--scenario", "mix", "--rps", fmt.Sprint(rps), "--concurrency", fmt.Sprint(concurrency),
			"--connections", fmt.Sprint(connections), "--duration", d.String(), "--warmup", "0", "--warmup-time", "0s", "--timeout", "10s",
			// Zero failed calls; latency is not what these steps measure. A
			// draining pod's GOAWAY makes the connection reconnect through the
			// Service; --wait-for-ready lets a call made in that moment wait
			// for the new connection (within --timeout), as a caller that
			// retries UNAVAILABLE (the clients pool) sees it, instead of
			// failing at once when kube-proxy still routes the first attempt
			// to the pod that just closed its listener.
			"--wait-for-ready",
			"--max-error-rate", "0", "--p95", "0", "--p99", "0", "--min-rps", "0", "--progress", "10s", "--out", "/out"},
		// grpc-go says in the pod's log (an artifact of the step) what each
		// connection did: dials and their errors, GOAWAYs, state changes,
		// backoff. A call that fails during an upgrade is explained there.
		Env:          []corev1.EnvVar{{Name: "GRPC_GO_LOG_SEVERITY_LEVEL", Value: "info"}},
		Resources:    corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")}},
		VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data", ReadOnly: true}, {Name: "out", MountPath: "/out"}},
	},
		corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: cm}}}},
		corev1.Volume{Name: "out", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	)
	startPod(t, e, clientNS, p)
	waitRunning(t, e, clientNS, p.Name)
	return p
}

// waitRunning waits until the pod runs; it fails the test if the pod ended.
func waitRunning(t *testing.T, e *env, namespace, name string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		pod, err := e.c.Client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		if pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded {
			return false, fmt.Errorf("it ended (%s)", pod.Status.Phase)
		}
		return pod.Status.Phase == corev1.PodRunning, nil
	})
	if err != nil {
		_, lg := waitPod(t, e, namespace, name, time.Second)
		t.Fatalf("pod %s/%s did not run: %v\n%s", namespace, name, err, lg)
	}
}

// serverPodHashes maps each live service pod to its pod-template-hash.
func serverPodHashes(t *testing.T, e *env) map[string]string {
	t.Helper()
	list, err := e.c.Client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: serverSelector})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, p := range list.Items {
		m[p.Name] = p.Labels["pod-template-hash"]
	}
	return m
}

// testRollingUpgrade: `helm upgrade` with a changed setting while the load
// test runs in the cluster against the Service: a new ReplicaSet rolls out
// and not one call fails. The JWT key is kept: a token issued before the
// upgrade verifies after it.
func testRollingUpgrade(t *testing.T, e *env) {
	ctx := context.Background()
	env := hostEnv(t, e)
	keyBefore := env[1]
	id := createUser(t, e, env, "e2e-upgrade-"+fmt.Sprint(time.Now().UnixNano())+"@nova.test")
	token := issueToken(t, e, env, id)

	upgradeUnderLoad(t, e, loadDataset(t, e, 300), "rolling-upgrade",
		e.helmOptions(map[string]string{"requestTimeout": "6s"}), "upgrade", release, e.chart, "--timeout", "5m")

	// The generated key survived the upgrade, and so does the token.
	if hostEnv(t, e)[1] != keyBefore {
		t.Error("helm upgrade replaced the generated JWT private key")
	}
	c := authClient(t, portForward(t, e, 9080))
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := c.VerifyToken(cctx, &authpb.VerifyTokenRequest{Token: token})
	if err != nil || !v.GetValid() || v.GetUserId() != id {
		t.Errorf("a token issued before the upgrade does not verify after it: %v %v", v, err)
	}
	cm, err := e.c.Client.CoreV1().ConfigMaps(ns).Get(ctx, release, metav1.GetOptions{})
	if err != nil || cm.Data["REQUEST_TIMEOUT"] != "6s" {
		t.Errorf("ConfigMap REQUEST_TIMEOUT after the upgrade: %q %v", cm.Data["REQUEST_TIMEOUT"], err)
	}
}

// upgradeUnderLoad runs helm (an upgrade: args) while the load test, from
// its own image in a Nova service namespace, calls the Service by DNS with
// the data set: a port-forward would end with the one pod it is bound to.
// It waits until a new ReplicaSet of 3 pods has replaced every old pod and
// fails on any failed call; the load test's log goes to e.out/dir.
func upgradeUnderLoad(t *testing.T, e *env, dataset []byte, dir string, opts *helm.Options, args ...string) {
	t.Helper()
	ctx := context.Background()
	before := serverPodHashes(t, e)
	const loadFor = 75 * time.Second
	p := startLoadtest(t, e, "e2e-loadtest", dataset, 100, 16, 1, loadFor)
	loadStart := time.Now()
	time.Sleep(8 * time.Second)

	st := time.Now()
	out, err := e.helm(t, opts, args...)
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", args[0], err, out)
	}
	if err := waitDeploymentReady(ctx, e.c.Client, ns, release, 3, 4*time.Minute); err != nil {
		t.Fatal(err)
	}
	// The rollout is over when the old pods are gone (they drain first).
	var after map[string]string
	wait.PollUntilContextTimeout(ctx, time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) { //nolint:errcheck
		after = serverPodHashes(t, e)
		for name := range after {
			if _, old := before[name]; old {
				return false, nil
			}
		}
		return true, nil
	})
	rolled := time.Since(loadStart)
	t.Logf("helm %s and rollout (old pods gone) took %s", args[0], time.Since(st).Round(100*time.Millisecond))
	oldHashes, newHashes := map[string]bool{}, map[string]bool{}
	for _, h := range before {
		oldHashes[h] = true
	}
	for name, h := range after {
		newHashes[h] = true
		if _, old := before[name]; old || oldHashes[h] {
			t.Errorf("pod %s (hash %s) survived the upgrade", name, h)
		}
	}
	if len(newHashes) != 1 || len(after) != 3 {
		t.Errorf("after the upgrade: pods %v, want 3 of one new ReplicaSet", after)
	}
	if rolled > loadFor-5*time.Second {
		t.Errorf("the rollout (%s after the load began) outlasted the load (%s): raise loadFor", rolled.Round(time.Second), loadFor)
	}

	finishLoadtest(t, e, p.Name, loadFor+2*time.Minute, dir, "the upgrade")
}

// finishLoadtest waits for startLoadtest's pod to end, keeps its log in
// e.out/dir and fails the test unless every call succeeded.
func finishLoadtest(t *testing.T, e *env, name string, timeout time.Duration, dir, during string) {
	t.Helper()
	phase, lg := waitPod(t, e, clientNS, name, timeout)
	os.MkdirAll(filepath.Join(e.out, dir), 0o755)                           //nolint:errcheck
	os.WriteFile(filepath.Join(e.out, dir, name+".log"), []byte(lg), 0o644) //nolint:errcheck
	t.Logf("load test %s during %s:\n%s", name, during, withoutGRPCLog(lg))
	if phase != corev1.PodSucceeded || !strings.Contains(lg, "PASS") {
		t.Errorf("calls failed during %s (load test pod %s %s); see %s", during, name, phase, filepath.Join(e.out, dir))
	}
}

// withoutGRPCLog drops grpc-go's own log lines (kept in the artifact) from
// the load test's output.
func withoutGRPCLog(lg string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(lg, "\n") {
		if !grpcLogLine.MatchString(l) {
			b.WriteString(l)
		}
	}
	return b.String()
}

// grpcLogLine is how grpc-go's default logger starts a line.
var grpcLogLine = regexp.MustCompile(`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (INFO|WARNING|ERROR|FATAL): `)

// testEviction: evicting every service pod at once through the Eviction API
// stops at the PodDisruptionBudget (minAvailable 2 of 3: one goes).
func testEviction(t *testing.T, e *env) {
	ctx := context.Background()
	cl := e.c.Client
	if err := waitDeploymentReady(ctx, cl, ns, release, 3, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		pdb, err := cl.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, release, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		return pdb.Status.ObservedGeneration >= pdb.Generation && pdb.Status.CurrentHealthy == 3 && pdb.Status.DisruptionsAllowed == 1, nil
	})
	if err != nil {
		t.Fatal("the PDB never showed 3 healthy pods and 1 disruption allowed")
	}
	pods := readyServerPods(t, e)
	evicted, refused := 0, 0
	for _, p := range pods {
		err := cl.PolicyV1().Evictions(ns).Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: ns}})
		switch {
		case err == nil:
			evicted++
		case apierrors.IsTooManyRequests(err):
			refused++
		default:
			t.Errorf("evict %s: %v", p.Name, err)
		}
	}
	if evicted != 1 || refused != len(pods)-1 {
		t.Errorf("evicting %d pods: %d evicted, %d refused by the budget; want 1 and %d", len(pods), evicted, refused, len(pods)-1)
	}
	if err := waitDeploymentReady(ctx, cl, ns, release, 3, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
}

// testRollback: `helm rollback` to the install's revision brings its
// setting back and the pods roll again.
func testRollback(t *testing.T, e *env) {
	ctx := context.Background()
	before := serverPodHashes(t, e)
	if out, err := e.helm(t, e.helmOptions(nil), "rollback", release, "1", "--timeout", "5m"); err != nil {
		t.Fatalf("helm rollback: %v\n%s", err, out)
	}
	if err := waitDeploymentReady(ctx, e.c.Client, ns, release, 3, 4*time.Minute); err != nil {
		t.Fatal(err)
	}
	cm, err := e.c.Client.CoreV1().ConfigMaps(ns).Get(ctx, release, metav1.GetOptions{})
	if err != nil || cm.Data["REQUEST_TIMEOUT"] != "5s" {
		t.Errorf("ConfigMap REQUEST_TIMEOUT after the rollback: %q %v", cm.Data["REQUEST_TIMEOUT"], err)
	}
	for name := range serverPodHashes(t, e) {
		if _, old := before[name]; old {
			// Old pods may still be draining; only Ready ones count.
			for _, p := range readyServerPods(t, e) {
				if p.Name == name {
					t.Errorf("pod %s of the upgraded revision still serves after the rollback", name)
				}
			}
		}
	}
	out, err := e.helm(t, e.helmOptions(nil), "history", release)
	if err != nil || !strings.Contains(out, "Rollback to 1") {
		t.Errorf("helm history after the rollback:\n%s", out)
	}
	// Still serving, with the key the install generated.
	v, err := authClient(t, portForward(t, e, 9080)).VerifyToken(ctx, &authpb.VerifyTokenRequest{Token: issueToken(t, e, hostEnv(t, e), createUser(t, e, hostEnv(t, e), "e2e-rollback-"+fmt.Sprint(time.Now().UnixNano())+"@nova.test"))})
	if err != nil || !v.GetValid() {
		t.Errorf("VerifyToken after the rollback: %v %v", v, err)
	}
}
