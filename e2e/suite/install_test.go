package suite

import (
	"context"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gruntwork-io/terratest/modules/helm"
	"github.com/gruntwork-io/terratest/modules/k8s"
	"github.com/gruntwork-io/terratest/modules/logger"
	appsv1 "k8s.io/api/apps/v1"
	authzv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
)

// The chart's message when neither database value is set (_helpers.tpl).
const noDatabaseMessage = "nova-auth needs a PostgreSQL database: set database.url"

func testInstallWithoutDatabase(t *testing.T, e *env) {
	const nodbNS = "nova-auth-nodb"
	opts := &helm.Options{KubectlOptions: k8s.NewKubectlOptions("", e.c.Kubeconfig, nodbNS), Logger: logger.Discard}
	e.c.Client.CoreV1().Namespaces().Delete(context.Background(), nodbNS, metav1.DeleteOptions{}) //nolint:errcheck // a run's leftover
	out, err := e.helm(t, opts, "install", "nova-auth-nodb", e.chart, "--create-namespace")
	if err == nil {
		t.Fatalf("install without a database succeeded:\n%s", out)
	}
	if !strings.Contains(out, noDatabaseMessage) {
		t.Fatalf("install without a database failed without the chart's message %q:\n%s", noDatabaseMessage, out)
	}
	// Nothing was created: no release, and not even the namespace
	// (--create-namespace acts only once the chart has rendered).
	if _, err := e.helm(t, opts, "status", "nova-auth-nodb"); err == nil {
		t.Error("a release nova-auth-nodb exists after the failed install")
	}
	if n, err := e.c.Client.CoreV1().Namespaces().Get(context.Background(), nodbNS, metav1.GetOptions{}); err == nil && n.DeletionTimestamp == nil {
		t.Errorf("namespace %s exists after the failed install", nodbNS)
	}
}

// createNamespace makes the release namespace from the chart's own opt-in
// Namespace (namespace.create: Pod Security "restricted", and the spec's
// environment label, which is a value with a neutral default), rendered without a cluster as a GitOps tool would, so that its
// labels hold before the first pod; then `helm install --create-namespace`
// finds it.
func createNamespace(t *testing.T, e *env) {
	t.Helper()
	ctx := context.Background()
	v, err := e.c.Client.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	out, err := helm.RunHelmCommandAndGetStdOutE(t, e.helmOptions(nil), "template", release, e.chart, "-f", e.values,
		"--set", "namespace.create=true", "--set", "namespace.labels.environment=production",
		"--show-only", "templates/namespace.yaml", "--kube-version", v.GitVersion)
	if err != nil {
		t.Fatalf("helm template --show-only templates/namespace.yaml: %v\n%s", err, out)
	}
	var want corev1.Namespace
	if err := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(out), 4096).Decode(&want); err != nil || want.Kind != "Namespace" || want.Name != ns {
		t.Fatalf("the chart's Namespace: %v\n%s", err, out)
	}
	nss := e.c.Client.CoreV1().Namespaces()
	if _, err := nss.Create(ctx, &want, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		cur, err := nss.Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Labels, cur.Annotations = want.Labels, want.Annotations
		_, err = nss.Update(ctx, cur, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	} else if err != nil {
		t.Fatal(err)
	}
}

// hookOrder records, while helm installs, when the migration Job completed
// and when the first service pod appeared, as this process saw them.
type hookOrder struct {
	mu            sync.Mutex
	jobComplete   time.Time
	jobCompleted  metav1.Time // the Job's own completionTime
	firstPod      time.Time
	firstPodMade  metav1.Time
	firstPodName  string
	jobName       string
	jobSeen       bool
	jobFailedText string
}

func watchHookOrder(ctx context.Context, e *env) (*hookOrder, error) {
	h := &hookOrder{}
	jw, err := e.c.Client.BatchV1().Jobs(ns).Watch(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=migrate"})
	if err != nil {
		return nil, err
	}
	pw, err := e.c.Client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: serverSelector})
	if err != nil {
		jw.Stop()
		return nil, err
	}
	go func() {
		defer jw.Stop()
		for ev := range jw.ResultChan() {
			j, ok := ev.Object.(*batchv1.Job)
			if !ok {
				continue
			}
			h.mu.Lock()
			h.jobSeen, h.jobName = true, j.Name
			for _, c := range j.Status.Conditions {
				if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue && h.jobComplete.IsZero() {
					h.jobComplete = time.Now()
					if j.Status.CompletionTime != nil {
						h.jobCompleted = *j.Status.CompletionTime
					}
				}
				if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
					h.jobFailedText = c.Message
				}
			}
			h.mu.Unlock()
		}
	}()
	go func() {
		defer pw.Stop()
		for ev := range pw.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok || ev.Type != watch.Added {
				continue
			}
			h.mu.Lock()
			if h.firstPod.IsZero() {
				h.firstPod, h.firstPodMade, h.firstPodName = time.Now(), p.CreationTimestamp, p.Name
			}
			h.mu.Unlock()
		}
	}()
	return h, nil
}

func testInstall(t *testing.T, e *env) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	order, err := watchHookOrder(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	createNamespace(t, e)
	st := time.Now()
	// No --wait: the pods are waited for below, with their own timing
	// report. Hooks are waited for by helm.
	if out, err := e.helm(t, e.helmOptions(nil), "install", release, e.chart, "--create-namespace", "--timeout", "5m"); err != nil {
		t.Fatalf("helm install: %v\n%s", err, out)
	}
	t.Logf("helm install (with the migration hook) took %s", time.Since(st).Round(100*time.Millisecond))
	// With autoscaling the Deployment starts one pod and the HPA raises it
	// to minReplicas (3), metrics or not.
	if err := waitDeploymentReady(ctx, e.c.Client, ns, release, 3, 4*time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("3 pods Ready %s after the install began", time.Since(st).Round(100*time.Millisecond))

	order.mu.Lock()
	defer order.mu.Unlock()
	switch {
	case !order.jobSeen:
		t.Error("the migration hook Job was never seen")
	case order.jobFailedText != "":
		t.Errorf("the migration Job failed: %s", order.jobFailedText)
	case order.jobComplete.IsZero():
		t.Error("the migration Job was not seen completing")
	case order.firstPod.IsZero():
		t.Error("no service pod was seen being created")
	case !order.jobComplete.Before(order.firstPod) || order.firstPodMade.Before(&order.jobCompleted):
		t.Errorf("service pod %s was created (%s) before the migration Job %s completed (%s)",
			order.firstPodName, order.firstPodMade, order.jobName, order.jobCompleted)
	default:
		t.Logf("migration Job %s completed %s before the first service pod %s was created",
			order.jobName, order.firstPod.Sub(order.jobComplete).Round(time.Millisecond), order.firstPodName)
	}
	// The hook Jobs and what they brought are gone once they succeeded:
	// the migration Job and its Secret, the key Job and its RBAC.
	for _, c := range []string{"migrate", "jwt-key"} {
		jobs, _ := e.c.Client.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=" + c})
		if jobs != nil && len(jobs.Items) > 0 {
			t.Errorf("the succeeded %s Job was kept: %s", c, jobs.Items[0].Name)
		}
	}
	if _, err := e.c.Client.RbacV1().Roles(ns).Get(ctx, release+"-jwt-key", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the key Job's Role is still there once it ran (err %v)", err)
	}
	if _, err := e.c.Client.CoreV1().ServiceAccounts(ns).Get(ctx, release+"-jwt-key", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the key Job's ServiceAccount is still there once it ran (err %v)", err)
	}
}

// testRestricted: the namespace enforces Pod Security "restricted", the
// three pods run under it, and a pod that breaks it is refused.
func testRestricted(t *testing.T, e *env) {
	ctx := context.Background()
	n, err := e.c.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"enforce", "audit", "warn"} {
		if v := n.Labels["pod-security.kubernetes.io/"+k]; v != "restricted" {
			t.Errorf("namespace label pod-security.kubernetes.io/%s=%q, want restricted", k, v)
		}
	}
	pods := readyServerPods(t, e)
	if len(pods) != 3 {
		t.Errorf("%d Ready service pods, want 3", len(pods))
	}
	for _, p := range pods {
		if p.Spec.SecurityContext == nil || !ptr.Deref(p.Spec.SecurityContext.RunAsNonRoot, false) {
			t.Errorf("pod %s: runAsNonRoot not set", p.Name)
		}
	}
	// The admission is live: a root, privileged pod is refused (dry run).
	bad := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-privileged"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "x", Image: "ghcr.io/nova-auth/auth-service:0.1.0",
			SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
		}}},
	}
	_, err = e.c.Client.CoreV1().Pods(ns).Create(ctx, bad, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err == nil || !strings.Contains(err.Error(), "violates PodSecurity") {
		t.Errorf("a privileged pod was not refused by Pod Security admission: %v", err)
	}
}

func readyServerPods(t *testing.T, e *env) []corev1.Pod {
	t.Helper()
	list, err := e.c.Client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: serverSelector})
	if err != nil {
		t.Fatal(err)
	}
	var ready []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && podReady(&p) {
			ready = append(ready, p)
		}
	}
	sort.Slice(ready, func(i, j int) bool { return ready[i].Name < ready[j].Name })
	return ready
}

func testHelmTest(t *testing.T, e *env) {
	out, err := e.helm(t, e.helmOptions(nil), "test", release, "--timeout", "3m")
	if err != nil {
		t.Fatalf("helm test: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Phase:          Succeeded") && !strings.Contains(out, "Succeeded") {
		t.Errorf("helm test output has no Succeeded phase:\n%s", out)
	}
	// A passed test pod is deleted (hook-succeeded).
	err = wait.PollUntilContextTimeout(context.Background(), time.Second, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := e.c.Client.CoreV1().Pods(ns).Get(ctx, release+"-test", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Errorf("the passed test pod %s-test was not deleted", release)
	}
}

// testObjects: every object of the nine kinds is there with the spec the
// chart promises (README "What gets installed").
func testObjects(t *testing.T, e *env) {
	ctx := context.Background()
	cl := e.c.Client
	sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + release}

	// 1 Namespace: labels checked in testRestricted; environment label here.
	if n, err := cl.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil || n.Labels["environment"] != "production" {
		t.Errorf("namespace %s: labels %v, err %v", ns, n.GetLabels(), err)
	}
	// 2 Services.
	h, err := cl.CoreV1().Services(ns).Get(ctx, release+"-grpc", metav1.GetOptions{})
	if err != nil {
		t.Error(err)
	} else {
		if h.Spec.ClusterIP != "None" {
			t.Errorf("headless Service clusterIP %q", h.Spec.ClusterIP)
		}
		if p := portByName(h.Spec.Ports, "grpc"); p == nil || p.Port != 9080 || ptr.Deref(p.AppProtocol, "") != "kubernetes.io/h2c" {
			t.Errorf("headless Service grpc port %+v", p)
		}
		if !reflect.DeepEqual(h.Spec.Selector, map[string]string{"app.kubernetes.io/name": "auth", "app.kubernetes.io/instance": release, "app.kubernetes.io/component": "server"}) {
			t.Errorf("headless Service selector %v", h.Spec.Selector)
		}
	}
	x, err := cl.CoreV1().Services(ns).Get(ctx, release, metav1.GetOptions{})
	if err != nil {
		t.Error(err)
	} else {
		if x.Spec.Type != corev1.ServiceTypeClusterIP {
			t.Errorf("external Service type %s, want ClusterIP (LoadBalancer is opt-in)", x.Spec.Type)
		}
		// REST and gRPC only: /metrics has a port of its own that stays off it.
		if g, hp := portByName(x.Spec.Ports, "grpc"), portByName(x.Spec.Ports, "http"); g == nil || g.Port != 9080 || hp == nil || hp.Port != 8080 || len(x.Spec.Ports) != 2 {
			t.Errorf("external Service ports %+v", x.Spec.Ports)
		}
	}
	// Endpoints: the three Ready pods behind the headless Service.
	if eps, err := cl.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + release + "-grpc"}); err == nil {
		ready := 0
		for _, s := range eps.Items {
			for _, ep := range s.Endpoints {
				if ptr.Deref(ep.Conditions.Ready, false) {
					ready++
				}
			}
		}
		if ready != 3 {
			t.Errorf("headless Service has %d ready endpoints, want 3", ready)
		}
	}
	// 3 Deployment.
	d, err := cl.AppsV1().Deployments(ns).Get(ctx, release, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkDeployment(t, d)
	// 4 ConfigMap.
	cm, err := cl.CoreV1().ConfigMaps(ns).Get(ctx, release, metav1.GetOptions{})
	if err != nil {
		t.Error(err)
	} else {
		want := map[string]string{"GRPC_PORT": "9080", "HTTP_PORT": "8080", "LOCKOUT_THRESHOLD": "5", "LOCKOUT_DURATION": "15m",
			"REQUEST_TIMEOUT": "5s", "SHUTDOWN_DELAY": "5s", "SHUTDOWN_TIMEOUT": "20s", "JWT_ALGORITHMS": "RS256,ES256,EdDSA", "LOG_LEVEL": "info"}
		for k, v := range want {
			if cm.Data[k] != v {
				t.Errorf("ConfigMap %s=%q, want %q", k, cm.Data[k], v)
			}
		}
		for k := range cm.Data {
			if strings.Contains(k, "DATABASE_URL") || strings.Contains(k, "PRIVATE_KEY") {
				t.Errorf("secret key %s in the ConfigMap", k)
			}
		}
	}
	// 5 Secrets: the chart's (the database URL, no key), and the key
	// Secret the key Job made: a pair, not an object of the release.
	s, err := cl.CoreV1().Secrets(ns).Get(ctx, release, metav1.GetOptions{})
	if err != nil {
		t.Error(err)
	} else {
		if string(s.Data["DATABASE_URL"]) != e.c.DatabaseURL {
			t.Error("Secret DATABASE_URL is not the database.url given")
		}
		if _, ok := s.Data["JWT_PRIVATE_KEY"]; ok {
			t.Errorf("Secret %s holds JWT_PRIVATE_KEY: the generated key belongs in %s", release, keySecret)
		}
	}
	if k, err := cl.CoreV1().Secrets(ns).Get(ctx, keySecret, metav1.GetOptions{}); err != nil {
		t.Errorf("the key Job's Secret: %v", err)
	} else {
		checkKeyPair(t, k.Data)
		if k.Labels["app.kubernetes.io/instance"] != "" || k.Annotations["meta.helm.sh/release-name"] != "" {
			t.Errorf("Secret %s is labelled as the release's (%v %v): helm or Argo CD would delete it", keySecret, k.Labels, k.Annotations)
		}
	}
	// 6 NetworkPolicies.
	nps, err := cl.NetworkingV1().NetworkPolicies(ns).List(ctx, sel)
	if err != nil {
		t.Error(err)
	} else {
		var types []string
		for _, np := range nps.Items {
			for _, pt := range np.Spec.PolicyTypes {
				types = append(types, string(pt))
			}
		}
		sort.Strings(types)
		if len(nps.Items) != 2 || !reflect.DeepEqual(types, []string{"Egress", "Ingress"}) {
			t.Errorf("%d NetworkPolicies with types %v, want 2 (Ingress, Egress)", len(nps.Items), types)
		}
	}
	// 7 HPA.
	hpa, err := cl.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, release, metav1.GetOptions{})
	if err != nil {
		t.Error(err)
	} else {
		if ptr.Deref(hpa.Spec.MinReplicas, 0) != 3 || hpa.Spec.MaxReplicas != 10 || hpa.Spec.ScaleTargetRef.Name != release || len(hpa.Spec.Metrics) != 1 {
			t.Errorf("HPA spec min %v max %d target %s metrics %d", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas, hpa.Spec.ScaleTargetRef.Name, len(hpa.Spec.Metrics))
		}
		for _, m := range hpa.Spec.Metrics {
			if m.Resource == nil {
				continue
			}
			want := map[corev1.ResourceName]int32{corev1.ResourceCPU: 70}[m.Resource.Name] // memory is opt-in
			if ptr.Deref(m.Resource.Target.AverageUtilization, 0) != want {
				t.Errorf("HPA %s target %v, want %d%%", m.Resource.Name, m.Resource.Target.AverageUtilization, want)
			}
		}
	}
	// 8 ServiceAccount, without a token and without a Role (what it may
	// do, nothing: testRBAC).
	sa, err := cl.CoreV1().ServiceAccounts(ns).Get(ctx, release, metav1.GetOptions{})
	if err != nil || ptr.Deref(sa.AutomountServiceAccountToken, true) {
		t.Errorf("ServiceAccount %s: automountServiceAccountToken %v, err %v", release, sa.GetName(), err)
	}
	if rbs, err := cl.RbacV1().RoleBindings(ns).List(ctx, sel); err != nil || len(rbs.Items) > 0 {
		t.Errorf("the release made RoleBindings (%v): the service calls no API", err)
	}
	if crbs, err := cl.RbacV1().ClusterRoleBindings().List(ctx, sel); err == nil && len(crbs.Items) > 0 {
		t.Errorf("the release made ClusterRoleBindings: %s", crbs.Items[0].Name)
	}
	// 9 PodDisruptionBudget.
	pdb, err := cl.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, release, metav1.GetOptions{})
	if err != nil {
		t.Error(err)
	} else if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 2 || pdb.Status.ExpectedPods != 3 {
		t.Errorf("PDB minAvailable %v expectedPods %d, want 2 and 3", pdb.Spec.MinAvailable, pdb.Status.ExpectedPods)
	}
	// The pods: no API token, the image loaded. With several nodes (kind),
	// the soft anti-affinity spreads them.
	nodes := map[string]bool{}
	for _, p := range readyServerPods(t, e) {
		nodes[p.Spec.NodeName] = true
		checkNoPrivateKey(t, &p)
		for _, v := range p.Spec.Volumes {
			if v.Projected != nil {
				t.Errorf("pod %s mounts a projected (token) volume %s", p.Name, v.Name)
			}
		}
		for _, cs := range p.Status.ContainerStatuses {
			if !strings.HasPrefix(cs.Image, "ghcr.io/nova-auth/auth-service:") {
				t.Errorf("pod %s runs image %s", p.Name, cs.Image)
			}
		}
	}
	if e.c.Provider == "kind" && len(nodes) < 2 {
		t.Errorf("the 3 replicas run on %d node(s), want them spread over the workers", len(nodes))
	}
}

func checkDeployment(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	s := d.Spec
	if s.Strategy.RollingUpdate == nil || s.Strategy.RollingUpdate.MaxSurge.IntValue() != 1 || s.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 {
		t.Errorf("strategy %+v, want RollingUpdate maxSurge 1 maxUnavailable 0", s.Strategy)
	}
	pod := s.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.Image != "ghcr.io/nova-auth/auth-service:0.1.0" || c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("image %s pull %s", c.Image, c.ImagePullPolicy)
	}
	req, lim := c.Resources.Requests, c.Resources.Limits
	if req.Cpu().String() != "250m" || req.Memory().String() != "256Mi" || lim.Cpu().String() != "1" || lim.Memory().String() != "512Mi" {
		t.Errorf("resources requests %s/%s limits %s/%s, want 250m/256Mi and 1/512Mi", req.Cpu(), req.Memory(), lim.Cpu(), lim.Memory())
	}
	sc := c.SecurityContext
	if sc == nil || !ptr.Deref(sc.ReadOnlyRootFilesystem, false) || ptr.Deref(sc.AllowPrivilegeEscalation, true) ||
		ptr.Deref(sc.RunAsUser, 0) != 65532 || sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		t.Errorf("container securityContext %+v", sc)
	}
	probe := func(name string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path {
			t.Errorf("%s probe %+v, want HTTP %s", name, p, path)
		}
	}
	probe("liveness", c.LivenessProbe, "/health")
	probe("readiness", c.ReadinessProbe, "/readiness")
	probe("startup", c.StartupProbe, "/health")
	if ptr.Deref(pod.TerminationGracePeriodSeconds, 0) != 30 {
		t.Errorf("terminationGracePeriodSeconds %v, want 30", pod.TerminationGracePeriodSeconds)
	}
	if pod.ServiceAccountName != release || ptr.Deref(pod.AutomountServiceAccountToken, true) {
		t.Errorf("serviceAccountName %s automount %v", pod.ServiceAccountName, pod.AutomountServiceAccountToken)
	}
	if d.Spec.Template.Annotations["checksum/config"] == "" || d.Spec.Template.Annotations["checksum/secret"] == "" {
		t.Errorf("checksum annotations missing: %v", d.Spec.Template.Annotations)
	}
}

func portByName(ports []corev1.ServicePort, name string) *corev1.ServicePort {
	for i := range ports {
		if ports[i].Name == name {
			return &ports[i]
		}
	}
	return nil
}

// testRBAC asks the API server (SubjectAccessReview) what the service's
// ServiceAccount may do: nothing, since the service calls no API. Above all
// it cannot read the key Secret, whose private key mints tokens.
func testRBAC(t *testing.T, e *env) {
	user := "system:serviceaccount:" + ns + ":" + release
	groups := []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
	cases := []struct {
		verb, group, resource, sub, name, namespace string
		allowed                                     bool
	}{
		{"get", "", "secrets", "", keySecret, ns, false},
		{"get", "", "secrets", "", release, ns, false},
		{"get", "", "configmaps", "", release, ns, false},
		{"get", "", "pods", "", "", ns, false},
		{"list", "", "pods", "", "", ns, false},
		{"watch", "", "pods", "", "", ns, false},
		{"create", "", "secrets", "", "", ns, false},
		{"get", "", "configmaps", "", "other", ns, false},
		{"list", "", "configmaps", "", "", ns, false},
		{"get", "", "secrets", "", "other", ns, false},
		{"list", "", "secrets", "", "", ns, false},
		{"update", "", "configmaps", "", release, ns, false},
		{"update", "", "secrets", "", release, ns, false},
		{"create", "", "pods", "", "", ns, false},
		{"delete", "", "pods", "", "", ns, false},
		{"create", "", "pods", "exec", "", ns, false},
		{"create", "", "pods", "eviction", "", ns, false},
		{"create", "", "serviceaccounts", "token", release, ns, false},
		{"patch", "apps", "deployments", "", release, ns, false},
		{"update", "apps", "deployments", "scale", release, ns, false},
		{"get", "", "pods", "", "", "default", false},
		{"get", "", "secrets", "", "", "kube-system", false},
		{"list", "", "nodes", "", "", "", false},
		{"create", "rbac.authorization.k8s.io", "rolebindings", "", "", ns, false},
		{"escalate", "rbac.authorization.k8s.io", "roles", "", release, ns, false},
	}
	ctx := context.Background()
	for _, c := range cases {
		sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
			User: user, Groups: groups,
			ResourceAttributes: &authzv1.ResourceAttributes{
				Namespace: c.namespace, Verb: c.verb, Group: c.group, Resource: c.resource, Subresource: c.sub, Name: c.name,
			},
		}}
		res, err := e.c.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status.Allowed != c.allowed {
			t.Errorf("%s %s/%s/%s name=%q ns=%q: allowed=%v, want %v (%s)", c.verb, c.group, c.resource, c.sub, c.name, c.namespace,
				res.Status.Allowed, c.allowed, res.Status.Reason)
		}
	}
}

// testUninstall: `helm uninstall` leaves no object of the release. The
// namespace stays (helm never deletes one: it would delete whatever else
// lives there), and so does the key Secret, which is not the release's: a
// re-install keeps verifying the tokens issued before.
func testUninstall(t *testing.T, e *env) {
	if out, err := e.helm(t, e.helmOptions(nil), "uninstall", release, "--wait", "--timeout", "3m"); err != nil {
		t.Fatalf("helm uninstall: %v\n%s", err, out)
	}
	ctx := context.Background()
	cl := e.c.Client
	sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + release}
	var left []string
	err := wait.PollUntilContextTimeout(ctx, 2*time.Second, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		left = nil
		add := func(kind string, n int, err error) {
			if err != nil {
				left = append(left, kind+": "+err.Error())
			} else if n > 0 {
				left = append(left, kind)
			}
		}
		if l, err := cl.AppsV1().Deployments(ns).List(ctx, sel); true {
			add("Deployment", len(l.Items), err)
		}
		if l, err := cl.AppsV1().ReplicaSets(ns).List(ctx, sel); true {
			add("ReplicaSet", len(l.Items), err)
		}
		if l, err := cl.CoreV1().Pods(ns).List(ctx, sel); true {
			add("Pod", len(l.Items), err)
		}
		if l, err := cl.CoreV1().Services(ns).List(ctx, sel); true {
			add("Service", len(l.Items), err)
		}
		if l, err := cl.CoreV1().ConfigMaps(ns).List(ctx, sel); true {
			add("ConfigMap", len(l.Items), err)
		}
		if l, err := cl.CoreV1().Secrets(ns).List(ctx, sel); true {
			add("Secret", len(l.Items), err)
		}
		if l, err := cl.CoreV1().ServiceAccounts(ns).List(ctx, sel); true {
			add("ServiceAccount", len(l.Items), err)
		}
		if l, err := cl.RbacV1().Roles(ns).List(ctx, sel); true {
			add("Role", len(l.Items), err)
		}
		if l, err := cl.RbacV1().RoleBindings(ns).List(ctx, sel); true {
			add("RoleBinding", len(l.Items), err)
		}
		if l, err := cl.NetworkingV1().NetworkPolicies(ns).List(ctx, sel); true {
			add("NetworkPolicy", len(l.Items), err)
		}
		if l, err := cl.AutoscalingV2().HorizontalPodAutoscalers(ns).List(ctx, sel); true {
			add("HorizontalPodAutoscaler", len(l.Items), err)
		}
		if l, err := cl.PolicyV1().PodDisruptionBudgets(ns).List(ctx, sel); true {
			add("PodDisruptionBudget", len(l.Items), err)
		}
		if l, err := cl.BatchV1().Jobs(ns).List(ctx, sel); true {
			add("Job", len(l.Items), err)
		}
		if l, err := cl.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{}); true {
			add("EndpointSlice", len(l.Items), err)
		}
		return len(left) == 0, nil
	})
	if err != nil {
		t.Errorf("objects of the release left after helm uninstall: %v", left)
	}
	if out, err := e.helm(t, e.helmOptions(nil), "status", release); err == nil {
		t.Errorf("helm still knows the release:\n%s", out)
	}
	if k, err := cl.CoreV1().Secrets(ns).Get(ctx, keySecret, metav1.GetOptions{}); err != nil {
		t.Errorf("the key Secret %s did not survive the uninstall: %v", keySecret, err)
	} else {
		checkKeyPair(t, k.Data)
	}
}
