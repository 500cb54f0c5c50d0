package chartstest

import (
	"context"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// Issue 12, item 9: disruption budgets that block every drain, the
// Kubernetes versions the chart needs, the migration deadline against
// Helm's timeout, the HPA's default targets, the image in NOTES, and
// platform-specific defaults made neutral.

// TestDisruptionBudgetNeverBlocksDrains: a PodDisruptionBudget that leaves
// no pod evictable at the fewest replicas the release runs is refused,
// percentages too (the disruption controller rounds minAvailable up).
func TestDisruptionBudgetNeverBlocksDrains(t *testing.T) {
	noHPA := []string{dbURL, "autoscaling.enabled=false"}
	for _, tc := range []struct {
		sets []string
		want string // "" = accepted
	}{
		{append(noHPA, "replicaCount=1", "podDisruptionBudget.minAvailable=100%"), "podDisruptionBudget.minAvailable=100% of 1 replicas rounds up to 1"},
		{append(noHPA, "replicaCount=1", "podDisruptionBudget.minAvailable=1%"), "minAvailable=1% of 1 replicas rounds up to 1"},
		{append(noHPA, "replicaCount=3", "podDisruptionBudget.minAvailable=67%"), "minAvailable=67% of 3 replicas rounds up to 3: no pod is evictable, so every node drain blocks. Lower it (at most 66% with 3 replicas)"},
		{append(noHPA, "replicaCount=3", "podDisruptionBudget.minAvailable=66%"), ""},
		{append(noHPA, "replicaCount=1", "podDisruptionBudget.minAvailable=0%"), ""},
		{[]string{dbURL, "autoscaling.minReplicas=2", "podDisruptionBudget.minAvailable=60%"}, "minAvailable=60% of 2 replicas rounds up to 2"},
		{[]string{dbURL, "autoscaling.minReplicas=2", "podDisruptionBudget.minAvailable=50%"}, ""},
		{append(noHPA, "podDisruptionBudget.maxUnavailable=0"), "at '/podDisruptionBudget/maxUnavailable'"},
		{append(noHPA, "podDisruptionBudget.maxUnavailable=0%"), "podDisruptionBudget.maxUnavailable=0% lets no pod be evicted"},
		{append(noHPA, "podDisruptionBudget.maxUnavailable=10%"), ""},
		{append(noHPA, "replicaCount=1", "podDisruptionBudget.enabled=false", "podDisruptionBudget.minAvailable=100%"), ""},
	} {
		_, err := render(t, values(t, "", tc.sets...), renderOpts{})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.sets, err)
		case tc.want != "" && err == nil:
			t.Errorf("%v: accepted, want %q", tc.sets, tc.want)
		case tc.want != "" && !strings.Contains(err.Error(), tc.want):
			t.Errorf("%v: error does not say %q:\n%v", tc.sets, tc.want, err)
		}
	}
}

// TestKubeVersionRequired: Chart.yaml's kubeVersion refuses clusters older
// than 1.27, where the PDB's unhealthyPodEvictionPolicy is not GA, with
// Helm's own message, before anything is applied.
func TestKubeVersionRequired(t *testing.T) {
	c := loadChart(t)
	if c.Metadata.KubeVersion == "" {
		t.Fatal("Chart.yaml has no kubeVersion")
	}
	for kube, ok := range map[string]bool{"v1.26.9": false, "v1.27.0": true, "v1.30.0-gke.1": true} {
		kv, err := chartutil.ParseKubeVersion(kube)
		if err != nil {
			t.Fatal(err)
		}
		inst := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
		inst.DryRun, inst.ClientOnly, inst.Replace = true, true, true
		inst.ReleaseName, inst.Namespace, inst.KubeVersion = releaseName, releaseNamespace, kv
		_, err = inst.RunWithContext(context.Background(), c, values(t, "", dbURL))
		switch {
		case ok && err != nil:
			t.Errorf("Kubernetes %s: %v", kube, err)
		case !ok && (err == nil || !strings.Contains(err.Error(), "requires kubeVersion: "+c.Metadata.KubeVersion)):
			t.Errorf("Kubernetes %s: err = %v, want the chart's kubeVersion named", kube, err)
		}
	}
}

// TestMigrationFailsBeforeHelmTimeout: the Job's deadline is below Helm's
// default --timeout (5m), so a stuck migration fails as the Job's own error
// (DeadlineExceeded, pod logs kept) rather than Helm's "timed out".
func TestMigrationFailsBeforeHelmTimeout(t *testing.T) {
	const helmDefaultTimeout = 300
	var j batchv1.Job
	into(t, defaultScenario(t).one(t, "Job", "nova-auth-migrate"), &j)
	if d := j.Spec.ActiveDeadlineSeconds; d == nil || *d >= helmDefaultTimeout {
		t.Errorf("activeDeadlineSeconds = %v, want below Helm's default --timeout of %ds", d, helmDefaultTimeout)
	}
	if _, err := render(t, values(t, "", dbURL, "migration.activeDeadlineSeconds=10"), renderOpts{}); err == nil ||
		!strings.Contains(err.Error(), "/migration/activeDeadlineSeconds") {
		t.Errorf("a 10 s deadline (no room for a database to answer) was accepted: %v", err)
	}
}

// TestHPACPUByDefault: the HPA scales on CPU only unless a memory target is
// asked for (Go gives memory back slowly: a memory target scales up readily
// and seldom back down); an HPA with no target at all is refused.
func TestHPACPUByDefault(t *testing.T) {
	targets := func(r *rendered) []corev1.ResourceName {
		var h autoscalingv2.HorizontalPodAutoscaler
		into(t, r.one(t, "HorizontalPodAutoscaler", ""), &h)
		var out []corev1.ResourceName
		for _, m := range h.Spec.Metrics {
			out = append(out, m.Resource.Name)
		}
		return out
	}
	if got := targets(defaultScenario(t)); len(got) != 1 || got[0] != corev1.ResourceCPU {
		t.Errorf("default HPA targets %v, want cpu only", got)
	}
	r := mustRender(t, values(t, "", dbURL, "autoscaling.targetMemoryUtilizationPercentage=80"), renderOpts{})
	if got := targets(r); len(got) != 2 || got[1] != corev1.ResourceMemory {
		t.Errorf("with a memory target: %v", got)
	}
	_, err := render(t, values(t, "", dbURL, "autoscaling.targetCPUUtilizationPercentage=null"), renderOpts{})
	if err == nil || !strings.Contains(err.Error(), "autoscaling.enabled needs a target") {
		t.Errorf("an HPA without targets: %v", err)
	}
}

// TestNotesShowDeployedImage: NOTES print the image the pods really run, as
// rendered (registry override, tag, digest), not the chart's appVersion.
func TestNotesShowDeployedImage(t *testing.T) {
	for _, sets := range [][]string{
		{dbURL},
		{dbURL, "image.tag=1.4.2"},
		{dbURL, "image.tag=1.4.2", "image.digest=sha256:" + strings.Repeat("0f", 32), "global.imageRegistry=mirror.example.com"},
	} {
		r, d := deployment(t, values(t, "", sets...))
		image := d.Spec.Template.Spec.Containers[0].Image
		if !strings.Contains(r.notes, "Image: "+image+"\n") {
			t.Errorf("%v: NOTES do not show the image %s:\n%s", sets, image, r.notes)
		}
	}
}

// TestNeutralPlatformDefaults: the platform's own conventions are values
// now, off by default: no app.kubernetes.io/part-of label, no preference for
// nodes labelled tier=backend, no environment label on the Namespace; each
// comes back when asked for.
func TestNeutralPlatformDefaults(t *testing.T) {
	r, d := deployment(t, values(t, "", dbURL))
	for _, o := range r.objs {
		if v, ok := o.GetLabels()["app.kubernetes.io/part-of"]; ok {
			t.Errorf("%s %s: part-of=%q by default", o.GetKind(), o.GetName(), v)
		}
	}
	if a := d.Spec.Template.Spec.Affinity; a != nil && a.NodeAffinity != nil {
		t.Errorf("node affinity by default: %+v", a.NodeAffinity)
	}
	ns := mustRender(t, values(t, "", dbURL, "namespace.create=true"), renderOpts{}).one(t, "Namespace", "")
	if v, ok := ns.GetLabels()["environment"]; ok {
		t.Errorf("the rendered Namespace has environment=%q by default", v)
	}

	r, d = deployment(t, values(t, "", dbURL, "partOf=nova", "backendTier.enabled=true"))
	for _, o := range r.objs {
		if o.GetLabels()["app.kubernetes.io/part-of"] != "nova" {
			t.Errorf("%s %s: no part-of=nova with partOf=nova", o.GetKind(), o.GetName())
		}
	}
	a := d.Spec.Template.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || len(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 1 ||
		a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].Preference.MatchExpressions[0].Key != "tier" {
		t.Errorf("backendTier.enabled: affinity %+v", a)
	}
}
