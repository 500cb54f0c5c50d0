package chartstest

import (
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

// TestNamespaceFollowsRelease: every object, hooks included, goes to the
// release namespace (`helm install -n`), or to namespaceOverride; so two
// releases of one name in two namespaces do not collide, and the hooks
// always find their namespace.
func TestNamespaceFollowsRelease(t *testing.T) {
	for _, tc := range []struct {
		name, releaseNS string
		sets            []string
		want            string
	}{
		{"release namespace", "team-a", nil, "team-a"},
		{"another release namespace", "team-b", nil, "team-b"},
		{"namespaceOverride", "default", []string{"namespaceOverride=nova-auth"}, "nova-auth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(chartDir, "ci", "default-values.yaml")
			r := mustRender(t, values(t, file, tc.sets...), renderOpts{namespace: tc.releaseNS})
			if len(r.objs) < 10 {
				t.Fatalf("only %d objects rendered", len(r.objs))
			}
			for _, o := range r.objs {
				if o.GetKind() == "Namespace" {
					t.Errorf("Namespace %s rendered without namespace.create", o.GetName())
				} else if o.GetNamespace() != tc.want {
					t.Errorf("%s %s in namespace %q, want %q", o.GetKind(), o.GetName(), o.GetNamespace(), tc.want)
				}
			}
			for _, o := range r.find("RoleBinding") {
				var rb rbacv1.RoleBinding
				into(t, o, &rb)
				for _, s := range rb.Subjects {
					if s.Namespace != tc.want {
						t.Errorf("RoleBinding %s binds %s/%s, want namespace %s", rb.Name, s.Namespace, s.Name, tc.want)
					}
				}
			}
			var p corev1.Pod
			into(t, r.one(t, "Pod", "nova-auth-test"), &p)
			if addr := p.Spec.Containers[0].Args[2]; addr != "nova-auth-grpc."+tc.want+".svc:9080" {
				t.Errorf("test pod checks %s, not the Service in %s", addr, tc.want)
			}
			if !strings.Contains(r.notes, "namespace "+tc.want) {
				t.Errorf("NOTES do not name namespace %s:\n%s", tc.want, r.notes)
			}
		})
	}
}

// TestNoNamespaceHook: no scenario renders a Namespace as a hook (Argo CD
// runs hooks on every sync and deletes and recreates them: a sync could
// delete the namespace and everything in it), and none renders one at all
// unless namespace.create asks for it.
func TestNoNamespaceHook(t *testing.T) {
	for _, s := range scenarios(t) {
		t.Run(s.name, func(t *testing.T) {
			for _, sets := range [][]string{nil, {"namespace.create=true"}} {
				r := mustRender(t, values(t, s.path, sets...), scenarioOpts(s))
				ns := r.find("Namespace")
				if len(ns) != len(sets) {
					t.Errorf("%v: %d Namespaces rendered, want %d", sets, len(ns), len(sets))
				}
				for _, o := range ns {
					for k, v := range o.GetAnnotations() {
						if strings.HasPrefix(k, "helm.sh/hook") {
							t.Errorf("%v: Namespace %s is a hook (%s: %s)", sets, o.GetName(), k, v)
						}
					}
				}
			}
		})
	}
}

// TestNamespaceOptIn: namespace.create renders the spec's Namespace, with
// its Pod Security and environment labels, as a plain object of the
// release, named after the release namespace or namespaceOverride; Helm and
// Argo CD keep it when the release or application goes.
func TestNamespaceOptIn(t *testing.T) {
	file := filepath.Join(chartDir, "ci", "default-values.yaml")
	for _, tc := range []struct {
		releaseNS string
		sets      []string
		want      string
	}{
		{"nova-auth", []string{"namespace.create=true", "namespace.labels.environment=production"}, "nova-auth"},
		{"default", []string{"namespace.create=true", "namespaceOverride=auth-prod", "namespace.labels.environment=production"}, "auth-prod"},
	} {
		r := mustRender(t, values(t, file, tc.sets...), renderOpts{namespace: tc.releaseNS})
		var ns corev1.Namespace
		into(t, r.one(t, "Namespace", tc.want), &ns)
		if !strings.Contains(r.manifest, "kind: Namespace") {
			t.Errorf("%v: the Namespace is not among the release's own objects", tc.sets)
		}
		for k, v := range map[string]string{
			"environment":                                "production",
			"pod-security.kubernetes.io/enforce":         "restricted",
			"pod-security.kubernetes.io/enforce-version": "latest",
			"pod-security.kubernetes.io/audit":           "restricted",
			"pod-security.kubernetes.io/warn":            "restricted",
		} {
			if ns.Labels[k] != v {
				t.Errorf("%v: Namespace label %s=%q, want %q", tc.sets, k, ns.Labels[k], v)
			}
		}
		if ns.Annotations["helm.sh/resource-policy"] != "keep" || ns.Annotations["argocd.argoproj.io/sync-options"] != "Prune=false,Delete=false" {
			t.Errorf("%v: Namespace annotations %v: helm uninstall and Argo CD must keep it", tc.sets, ns.Annotations)
		}
	}
}
