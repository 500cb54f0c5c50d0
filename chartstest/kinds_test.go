package chartstest

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func defaultScenario(t *testing.T) *rendered {
	t.Helper()
	return mustRender(t, values(t, filepath.Join(chartDir, "ci", "default-values.yaml")), renderOpts{})
}

// TestNineKinds: with only a database URL, the chart renders the spec's
// manifests (two Services, two NetworkPolicies, a ServiceAccount; the
// Namespace is opt-in and the service needs no Role), the key Job with its
// ServiceAccount, Role and RoleBinding, the migration hook and the test pod,
// all in the release namespace.
func TestNineKinds(t *testing.T) {
	r := defaultScenario(t)
	want := map[string]int{
		"Service": 2, "Deployment": 1, "ConfigMap": 1,
		"Secret":        2, // the release's, and the migration hook's
		"NetworkPolicy": 2, "HorizontalPodAutoscaler": 1,
		"ServiceAccount": 2,                   // the service's, and the key Job's
		"Role":           1, "RoleBinding": 1, // the key Job's
		"PodDisruptionBudget": 1,
		"Job":                 2, "Pod": 1,
	}
	got := map[string]int{}
	for _, o := range r.objs {
		got[o.GetKind()]++
		if o.GetKind() != "Namespace" && o.GetNamespace() != "nova-auth" {
			t.Errorf("%s %s: namespace %q, want nova-auth", o.GetKind(), o.GetName(), o.GetNamespace())
		}
		l := o.GetLabels()
		for _, k := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/managed-by", "helm.sh/chart"} {
			if l[k] == "" {
				t.Errorf("%s %s: no label %s", o.GetKind(), o.GetName(), k)
			}
		}
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%d %s, want %d", got[k], k, n)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected kind %s", k)
		}
	}
}

func TestDeployment(t *testing.T) {
	r := defaultScenario(t)
	var d appsv1.Deployment
	into(t, r.one(t, "Deployment", "nova-auth"), &d)

	if d.Spec.Replicas != nil {
		t.Errorf("replicas set to %d although the HPA owns the count", *d.Spec.Replicas)
	}
	ru := d.Spec.Strategy.RollingUpdate
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil ||
		*ru.MaxSurge != intstr.FromInt32(1) || *ru.MaxUnavailable != intstr.FromInt32(0) {
		t.Errorf("strategy = %+v, want RollingUpdate maxSurge 1 maxUnavailable 0", d.Spec.Strategy)
	}
	sel := d.Spec.Selector.MatchLabels
	if sel["app.kubernetes.io/component"] != "server" || sel["helm.sh/chart"] != "" || sel["app.kubernetes.io/version"] != "" {
		t.Errorf("selector %v: want component=server and no chart/version label", sel)
	}
	pod := d.Spec.Template
	for _, a := range []string{"checksum/config", "checksum/secret"} {
		if len(pod.Annotations[a]) != 64 {
			t.Errorf("pod annotation %s = %q, want a sha256", a, pod.Annotations[a])
		}
	}
	spec := pod.Spec
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("automountServiceAccountToken must be false: the service does not call the API")
	}
	if spec.ServiceAccountName != "nova-auth" {
		t.Errorf("serviceAccountName = %q", spec.ServiceAccountName)
	}
	// SHUTDOWN_DELAY 5s + SHUTDOWN_TIMEOUT 20s must fit in the grace period.
	if g := spec.TerminationGracePeriodSeconds; g == nil || *g <= 25 {
		t.Errorf("terminationGracePeriodSeconds = %v, want > 25", g)
	}
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext = %+v", psc)
	}
	aff := spec.Affinity
	if aff == nil || aff.PodAntiAffinity == nil || len(aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 1 ||
		aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.TopologyKey != "kubernetes.io/hostname" {
		t.Errorf("want preferred pod anti-affinity by hostname, got %+v", aff)
	}
	if aff != nil && aff.NodeAffinity != nil {
		t.Errorf("node affinity by default (backendTier is opt-in): %+v", aff.NodeAffinity)
	}

	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers", len(spec.Containers))
	}
	c := spec.Containers[0]
	if c.Image != "ghcr.io/nova-auth/auth-service:0.1.0" {
		t.Errorf("image = %q, want the chart's appVersion tag", c.Image)
	}
	if strings.Join(c.Args, " ") != "serve" {
		t.Errorf("args = %v", c.Args)
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["grpc"] != 9080 || ports["http"] != 8080 {
		t.Errorf("ports = %v", ports)
	}
	res := c.Resources
	for name, want := range map[string]string{"requests.memory": "256Mi", "requests.cpu": "250m", "limits.memory": "512Mi", "limits.cpu": "1"} {
		var q string
		switch name {
		case "requests.memory":
			q = res.Requests.Memory().String()
		case "requests.cpu":
			q = res.Requests.Cpu().String()
		case "limits.memory":
			q = res.Limits.Memory().String()
		case "limits.cpu":
			q = res.Limits.Cpu().String()
		}
		if q != want {
			t.Errorf("resources %s = %s, want %s", name, q, want)
		}
	}
	probe := func(name string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || p.HTTPGet.Port.String() != "http" {
			t.Errorf("%s probe = %+v, want GET %s on port http", name, p, path)
		}
	}
	probe("liveness", c.LivenessProbe, "/health")
	probe("readiness", c.ReadinessProbe, "/readiness")
	probe("startup", c.StartupProbe, "/health")
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot ||
		sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		t.Errorf("container securityContext = %+v", sc)
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].ConfigMapRef == nil || c.EnvFrom[0].ConfigMapRef.Name != "nova-auth" {
		t.Errorf("envFrom = %+v, want the ConfigMap", c.EnvFrom)
	}
	env := map[string]*corev1.EnvVarSource{}
	for _, e := range c.Env {
		env[e.Name] = e.ValueFrom
	}
	for name, secret := range map[string]string{"DATABASE_URL": "nova-auth", "JWT_PUBLIC_KEY": "nova-auth-jwt"} {
		if env[name] == nil || env[name].SecretKeyRef == nil || env[name].SecretKeyRef.Name != secret {
			t.Errorf("env %s = %+v, want from Secret %s", name, env[name], secret)
		}
	}
	if _, ok := env["JWT_PRIVATE_KEY"]; ok {
		t.Error("env JWT_PRIVATE_KEY: the serving pods must not hold the signing key")
	}

}

// TestChecksums: the checksum annotations are the sha256 of the ConfigMap and
// Secret rendered in the same run, generated key included.
func TestChecksums(t *testing.T) {
	for _, file := range []string{"default-values.yaml", "clusterip-values.yaml"} {
		out := renderUpgrade(t, values(t, filepath.Join(chartDir, "ci", file)))
		objs, err := decodeAll(out["auth/templates/deployment.yaml"])
		if err != nil {
			t.Fatal(err)
		}
		var d appsv1.Deployment
		into(t, objs[0], &d)
		for a, tpl := range map[string]string{"checksum/config": "configmap.yaml", "checksum/secret": "secret.yaml"} {
			sum := sha256.Sum256([]byte(out["auth/templates/"+tpl]))
			if got := d.Spec.Template.Annotations[a]; got != hex.EncodeToString(sum[:]) {
				t.Errorf("%s: %s = %s, not the sha256 of the rendered %s", file, a, got, tpl)
			}
		}
	}
}

func TestServices(t *testing.T) {
	r := defaultScenario(t)
	var h, lb corev1.Service
	into(t, r.one(t, "Service", "nova-auth-grpc"), &h)
	into(t, r.one(t, "Service", "nova-auth"), &lb)
	if h.Spec.ClusterIP != "None" || h.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("gRPC Service: type %s clusterIP %q, want headless ClusterIP", h.Spec.Type, h.Spec.ClusterIP)
	}
	grpc := h.Spec.Ports[0]
	if grpc.Name != "grpc" || grpc.Port != 9080 || grpc.AppProtocol == nil || *grpc.AppProtocol != "kubernetes.io/h2c" {
		t.Errorf("headless gRPC port = %+v", grpc)
	}
	if lb.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("external Service type %s, want ClusterIP", lb.Spec.Type)
	}
	ports := map[string]int32{}
	for _, p := range lb.Spec.Ports {
		ports[p.Name] = p.Port
	}
	if ports["http"] != 8080 || ports["grpc"] != 9080 {
		t.Errorf("external ports = %v", ports)
	}
	for _, s := range []corev1.Service{h, lb} {
		if s.Spec.Selector["app.kubernetes.io/component"] != "server" {
			t.Errorf("Service %s selects %v: must select the server pods only", s.Name, s.Spec.Selector)
		}
	}

	ci := mustRender(t, values(t, filepath.Join(chartDir, "ci", "clusterip-values.yaml")), renderOpts{})
	var c corev1.Service
	into(t, ci.one(t, "Service", "nova-auth"), &c)
	if c.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("clusterip scenario: type %s", c.Spec.Type)
	}
}

func TestHPA(t *testing.T) {
	r := defaultScenario(t)
	var h autoscalingv2.HorizontalPodAutoscaler
	into(t, r.one(t, "HorizontalPodAutoscaler", "nova-auth"), &h)
	if *h.Spec.MinReplicas != 3 || h.Spec.MaxReplicas != 10 || h.Spec.ScaleTargetRef.Name != "nova-auth" {
		t.Errorf("HPA %d..%d on %s", *h.Spec.MinReplicas, h.Spec.MaxReplicas, h.Spec.ScaleTargetRef.Name)
	}
	targets := map[corev1.ResourceName]int32{}
	for _, m := range h.Spec.Metrics {
		targets[m.Resource.Name] = *m.Resource.Target.AverageUtilization
	}
	if targets[corev1.ResourceCPU] != 70 || len(targets) != 1 {
		t.Errorf("targets = %v, want cpu 70 only (memory is opt-in)", targets)
	}
	up, down := h.Spec.Behavior.ScaleUp, h.Spec.Behavior.ScaleDown
	if len(up.Policies) != 2 || up.Policies[0].Value != 100 || up.Policies[0].PeriodSeconds != 15 ||
		up.Policies[1].Type != autoscalingv2.PodsScalingPolicy || up.Policies[1].Value != 2 || up.Policies[1].PeriodSeconds != 15 ||
		*up.SelectPolicy != autoscalingv2.MaxChangePolicySelect {
		t.Errorf("scaleUp = %+v", up)
	}
	if len(down.Policies) != 1 || down.Policies[0].Value != 50 || down.Policies[0].PeriodSeconds != 60 || *down.StabilizationWindowSeconds != 300 {
		t.Errorf("scaleDown = %+v", down)
	}
}

func TestPDB(t *testing.T) {
	r := defaultScenario(t)
	var p policyv1.PodDisruptionBudget
	into(t, r.one(t, "PodDisruptionBudget", "nova-auth"), &p)
	if p.Spec.MinAvailable == nil || p.Spec.MinAvailable.IntValue() != 2 || p.Spec.MaxUnavailable != nil {
		t.Errorf("PDB = %+v, want minAvailable 2", p.Spec)
	}
	full := mustRender(t, values(t, filepath.Join(chartDir, "ci", "full-values.yaml")), renderOpts{})
	into(t, full.one(t, "PodDisruptionBudget", "nova-auth"), &p)
	if p.Spec.MaxUnavailable == nil || p.Spec.MaxUnavailable.IntValue() != 1 || p.Spec.MinAvailable != nil {
		t.Errorf("full scenario PDB = %+v, want maxUnavailable 1", p.Spec)
	}
}

func TestNetworkPolicies(t *testing.T) {
	r := defaultScenario(t)
	var in, eg networkingv1.NetworkPolicy
	into(t, r.one(t, "NetworkPolicy", "nova-auth-ingress"), &in)
	into(t, r.one(t, "NetworkPolicy", "nova-auth-egress"), &eg)
	// Each ingress peer's namespace, with the ports it may reach.
	got := map[string][]int32{}
	for _, rule := range in.Spec.Ingress {
		for _, from := range rule.From {
			key := "pods"
			if from.NamespaceSelector != nil {
				for k, v := range from.NamespaceSelector.MatchLabels {
					key = k + "=" + v
				}
			}
			for _, p := range rule.Ports {
				got[key] = append(got[key], p.Port.IntVal)
			}
		}
	}
	want := map[string][]int32{
		"kubernetes.io/metadata.name=ingress-nginx": {8080, 9080},
		"kubernetes.io/metadata.name=api-gateway":   {8080, 9080},
		"nova.io/service=true":                      {9080},
		"kubernetes.io/metadata.name=monitoring":    {9090}, // the metrics port
		"pods":                                      {9080}, // helm test
	}
	for k, w := range want {
		if !equalInt32(got[k], w) {
			t.Errorf("ingress from %s: ports %v, want %v", k, got[k], w)
		}
	}
	egress := map[string]bool{}
	for _, rule := range eg.Spec.Egress {
		for _, p := range rule.Ports {
			egress[string(*p.Protocol)+"/"+p.Port.String()] = true
		}
	}
	for _, w := range []string{"TCP/5432", "UDP/53", "TCP/53"} {
		if !egress[w] {
			t.Errorf("egress %s not allowed (got %v)", w, egress)
		}
	}
	full := mustRender(t, values(t, filepath.Join(chartDir, "ci", "full-values.yaml")), renderOpts{})
	into(t, full.one(t, "NetworkPolicy", "nova-auth-egress"), &eg)
	egress = map[string]bool{}
	for _, rule := range eg.Spec.Egress {
		for _, p := range rule.Ports {
			egress[string(*p.Protocol)+"/"+p.Port.String()] = true
		}
	}
	for _, w := range []string{"TCP/6432", "UDP/53", "TCP/53", "TCP/6379", "TCP/9092", "TCP/443"} { // PgBouncer on 6432
		if !egress[w] {
			t.Errorf("full scenario: egress %s not allowed (got %v)", w, egress)
		}
	}
}

func equalInt32(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestMigrationHook: the Job runs `auth-service migrate` before install and
// upgrade, with what exists at that time (a hook Secret, no ServiceAccount).
func TestMigrationHook(t *testing.T) {
	r := defaultScenario(t)
	var j batchv1.Job
	into(t, r.one(t, "Job", "nova-auth-migrate"), &j)
	if j.Annotations["helm.sh/hook"] != "pre-install,pre-upgrade" {
		t.Errorf("Job hook = %q", j.Annotations["helm.sh/hook"])
	}
	if j.Spec.ActiveDeadlineSeconds == nil || j.Spec.BackoffLimit == nil {
		t.Error("Job needs activeDeadlineSeconds and backoffLimit")
	}
	c := j.Spec.Template.Spec.Containers[0]
	if strings.Join(c.Args, " ") != "migrate" {
		t.Errorf("Job args = %v", c.Args)
	}
	if j.Spec.Template.Spec.ServiceAccountName != "" {
		t.Errorf("Job runs as %q, which does not exist before install", j.Spec.Template.Spec.ServiceAccountName)
	}
	var hookSecret corev1.Secret
	into(t, r.one(t, "Secret", "nova-auth-migrate"), &hookSecret)
	if w := hookSecret.Annotations["helm.sh/hook-weight"]; w != "-10" {
		t.Errorf("hook Secret weight %q: must come before the Job", w)
	}
	if c.Env[0].Name != "DATABASE_URL" || c.Env[0].ValueFrom.SecretKeyRef.Name != "nova-auth-migrate" {
		t.Errorf("Job DATABASE_URL from %+v", c.Env[0].ValueFrom)
	}
	if c.SecurityContext == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Error("Job container must have the service's securityContext")
	}

	ex := mustRender(t, values(t, filepath.Join(chartDir, "ci", "existing-secrets-values.yaml")), renderOpts{})
	into(t, ex.one(t, "Job", "nova-auth-migrate"), &j)
	ref := j.Spec.Template.Spec.Containers[0].Env[0].ValueFrom.SecretKeyRef
	if ref.Name != "nova-auth-db" || ref.Key != "url" {
		t.Errorf("existing secret: Job DATABASE_URL from %s/%s", ref.Name, ref.Key)
	}
	if n := len(ex.find("Secret")); n != 0 {
		t.Errorf("existing secrets: %d Secrets rendered, want 0", n)
	}
}

func TestTestPod(t *testing.T) {
	r := defaultScenario(t)
	var p corev1.Pod
	into(t, r.one(t, "Pod", "nova-auth-test"), &p)
	if p.Annotations["helm.sh/hook"] != "test" || p.Annotations["helm.sh/hook-delete-policy"] != "before-hook-creation,hook-succeeded" {
		t.Errorf("test pod hook annotations = %v: it must run on `helm test` and leave nothing after passing", p.Annotations)
	}
	args := strings.Join(p.Spec.Containers[0].Args, " ")
	if args != "healthcheck --addr nova-auth-grpc.nova-auth.svc:9080 --service nova.auth_service.AuthService --timeout 5s" {
		t.Errorf("test pod args = %q", args)
	}
	if p.Spec.Containers[0].Image != "ghcr.io/nova-auth/auth-service:0.1.0" {
		t.Errorf("test pod image = %q, want the service's own", p.Spec.Containers[0].Image)
	}
	// Without cluster DNS: Kubernetes expands $(VAR) from the Service links.
	r = mustRender(t, values(t, "", dbURL, "tests.address=$(NOVA_AUTH_SERVICE_HOST):$(NOVA_AUTH_SERVICE_PORT_GRPC)"), renderOpts{})
	into(t, r.one(t, "Pod", "nova-auth-test"), &p)
	if got := p.Spec.Containers[0].Args[2]; got != "$(NOVA_AUTH_SERVICE_HOST):$(NOVA_AUTH_SERVICE_PORT_GRPC)" {
		t.Errorf("tests.address: --addr %q", got)
	}
}

func TestMinimalScenario(t *testing.T) {
	r := mustRender(t, values(t, filepath.Join(chartDir, "ci", "minimal-values.yaml")), renderOpts{})
	got := map[string]int{}
	for _, o := range r.objs {
		got[o.GetKind()]++
		if o.GetNamespace() != releaseNamespace {
			t.Errorf("%s %s in %q, want the release namespace", o.GetKind(), o.GetName(), o.GetNamespace())
		}
	}
	want := map[string]int{"Deployment": 1, "Service": 1, "ConfigMap": 1, "Secret": 1,
		"Job": 1, "ServiceAccount": 1, "Role": 1, "RoleBinding": 1} // the key Job
	if len(got) != len(want) {
		t.Errorf("kinds = %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s: %d, want %d", k, got[k], n)
		}
	}
	var d appsv1.Deployment
	into(t, r.one(t, "Deployment", ""), &d)
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas = %v, want 2 (no HPA)", d.Spec.Replicas)
	}
	if d.Spec.Template.Spec.Affinity != nil {
		t.Errorf("affinity = %+v, want none", d.Spec.Template.Spec.Affinity)
	}
	if d.Spec.Template.Spec.ServiceAccountName != "default" {
		t.Errorf("serviceAccountName = %q", d.Spec.Template.Spec.ServiceAccountName)
	}
}

func TestFullScenario(t *testing.T) {
	s := scenario{name: "full", path: filepath.Join(chartDir, "ci", "full-values.yaml")}
	r := mustRender(t, values(t, s.path), scenarioOpts(s))
	var d appsv1.Deployment
	into(t, r.one(t, "Deployment", ""), &d)
	spec := d.Spec.Template.Spec
	if spec.Containers[0].Image != "registry.example.com/nova/auth-service:0.1.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" {
		t.Errorf("image = %q, want pinned by digest (the tag shown)", spec.Containers[0].Image)
	}
	if len(spec.TopologySpreadConstraints) != 1 || spec.TopologySpreadConstraints[0].LabelSelector == nil ||
		spec.TopologySpreadConstraints[0].LabelSelector.MatchLabels["app.kubernetes.io/component"] != "server" {
		t.Errorf("topologySpreadConstraints = %+v, want the pods' selector filled in", spec.TopologySpreadConstraints)
	}
	if spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		t.Error("hard anti-affinity not required")
	}
	if *spec.TerminationGracePeriodSeconds != 60 {
		t.Errorf("terminationGracePeriodSeconds = %d", *spec.TerminationGracePeriodSeconds)
	}
	sm := r.one(t, "ServiceMonitor", "nova-auth")
	sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	for _, svc := range r.find("Service") {
		matches := true
		for k, v := range sel {
			if svc.GetLabels()[k] != v {
				matches = false
			}
		}
		if matches != (svc.GetName() == "nova-auth-grpc") {
			t.Errorf("ServiceMonitor selector %v matches Service %s: %v (want the headless one only)", sel, svc.GetName(), matches)
		}
	}
	// GitOps renders have no cluster to ask for the CRD: rendered all the same.
	without := mustRender(t, values(t, s.path), renderOpts{})
	if len(without.find("ServiceMonitor")) != 1 {
		t.Error("ServiceMonitor not rendered without its CRD")
	}
}

// TestObjectsStrictlyTyped decodes every rendered object of every scenario
// into its Kubernetes Go type, rejecting unknown or misplaced fields (a typo
// in a template that the API server would drop or refuse).
func TestObjectsStrictlyTyped(t *testing.T) {
	sch := typedScheme(t) // Kubernetes', the Gateway API's and the Prometheus Operator's types
	for _, s := range scenarios(t) {
		t.Run(s.name, func(t *testing.T) {
			r := mustRender(t, values(t, s.path), scenarioOpts(s))
			for _, o := range r.objs {
				gvk := o.GroupVersionKind()
				if gvk.Group == "cert-manager.io" {
					strictCertificate(t, o) // tls_test.go: no cert-manager module here
					continue
				}
				obj, err := sch.New(gvk)
				if err != nil {
					t.Errorf("%s %s: %v", gvk, o.GetName(), err)
					continue
				}
				into(t, o, obj)
			}
		})
	}
}
