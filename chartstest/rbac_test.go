package chartstest

import (
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

// TestServiceRBAC: the service calls no Kubernetes API, so its
// ServiceAccount is bound to nothing (not its Secret, where the signing key
// could be, not pods), and no pod but the key Job's gets an API token.
func TestServiceRBAC(t *testing.T) {
	for _, s := range scenarios(t) {
		t.Run(s.name, func(t *testing.T) {
			r := mustRender(t, values(t, s.path), scenarioOpts(s))
			for _, o := range r.find("RoleBinding") {
				var rb rbacv1.RoleBinding
				into(t, o, &rb)
				for _, sub := range rb.Subjects {
					if sub.Name != "nova-auth-jwt-key" {
						t.Errorf("RoleBinding %s grants Role %s to %s %s: the service uses no API", rb.Name, rb.RoleRef.Name, sub.Kind, sub.Name)
					}
				}
			}
			for _, o := range r.find("ClusterRoleBinding") {
				t.Errorf("ClusterRoleBinding %s rendered", o.GetName())
			}
			for _, o := range r.find("ServiceAccount") {
				var sa corev1.ServiceAccount
				into(t, o, &sa)
				if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
					t.Errorf("ServiceAccount %s: automountServiceAccountToken must be false", sa.Name)
				}
			}
			for id, p := range podTemplates(t, r) {
				mounts := p.Spec.AutomountServiceAccountToken == nil || *p.Spec.AutomountServiceAccountToken
				if mounts != (id == "Job/nova-auth-jwt-key") {
					t.Errorf("%s: automountServiceAccountToken %v; only the key Job calls the API", id, p.Spec.AutomountServiceAccountToken)
				}
			}
		})
	}
}

// TestServiceRBACExtraRules: rules the user adds (for a sidecar that calls
// the API) make a Role of exactly those rules, bound to the service's
// ServiceAccount; rbac.create=false drops it.
func TestServiceRBACExtraRules(t *testing.T) {
	file := filepath.Join(chartDir, "ci", "default-values.yaml")
	rule := `rbac.extraRules[0].apiGroups[0]=,rbac.extraRules[0].resources[0]=configmaps,rbac.extraRules[0].verbs[0]=get`
	r := mustRender(t, values(t, file, rule), renderOpts{})
	var role rbacv1.Role
	var rb rbacv1.RoleBinding
	into(t, r.one(t, "Role", "nova-auth"), &role)
	into(t, r.one(t, "RoleBinding", "nova-auth"), &rb)
	if len(role.Rules) != 1 || role.Rules[0].Resources[0] != "configmaps" || role.Rules[0].Verbs[0] != "get" {
		t.Errorf("Role rules %+v, want the one extra rule", role.Rules)
	}
	if len(rb.Subjects) != 1 || rb.Subjects[0].Name != "nova-auth" || rb.Subjects[0].Namespace != releaseNamespace {
		t.Errorf("RoleBinding subjects %+v", rb.Subjects)
	}
	off := mustRender(t, values(t, file, rule, "rbac.create=false"), renderOpts{})
	for _, o := range off.find("Role") {
		if o.GetName() == "nova-auth" {
			t.Error("rbac.create=false: the service's Role is rendered")
		}
	}
}
