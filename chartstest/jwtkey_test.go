package chartstest

import (
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

// renderUpgrade renders like `helm upgrade --dry-run` or Argo CD: an
// upgrade, with no cluster to ask (lookup finds nothing), every template
// by path.
func renderUpgrade(t *testing.T, vals map[string]any) map[string]string {
	t.Helper()
	c := loadChart(t)
	caps := chartutil.DefaultCapabilities.Copy()
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	caps.KubeVersion = *kv
	rv, err := chartutil.ToRenderValuesWithSchemaValidation(c, vals, chartutil.ReleaseOptions{
		Name: releaseName, Namespace: releaseNamespace, Revision: 2, IsUpgrade: true,
	}, caps, false)
	if err != nil {
		t.Fatal(err)
	}
	out, err := engine.Render(c, rv)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return out
}

// TestRenderTwiceIdentical: without cluster access (helm template, Argo CD,
// helm diff) two renders of the same values are byte-identical, as an
// install and as an upgrade. A generated key or a lookup in a template
// would make every sync OutOfSync, rotate the signing key and roll the pods.
func TestRenderTwiceIdentical(t *testing.T) {
	for _, s := range scenarios(t) {
		t.Run(s.name, func(t *testing.T) {
			for _, sets := range [][]string{nil, {"namespace.create=true"}} {
				vals := func() map[string]any { return values(t, s.path, sets...) }
				a, b := mustRender(t, vals(), scenarioOpts(s)), mustRender(t, vals(), scenarioOpts(s))
				if a.all()+a.notes != b.all()+b.notes {
					t.Errorf("%v: two installs render differently:\n%s", sets, diff(a.all()+a.notes, b.all()+b.notes))
				}
				ua, ub := renderUpgrade(t, vals()), renderUpgrade(t, vals())
				for path, x := range ua {
					if x != ub[path] {
						t.Errorf("%v: two upgrades render %s differently:\n%s", sets, path, diff(x, ub[path]))
					}
				}
			}
		})
	}
}

// privateKeyAt is where a scenario's private key lives, as secret name →
// key; the whole Secret counts too (envFrom, a volume).
func privateKeyAt(vals map[string]any) map[string]string {
	jwt, _ := vals["jwt"].(map[string]any)
	switch {
	case jwt["existingSecret"] != nil && jwt["existingSecret"] != "":
		k, _ := jwt["existingSecretPrivateKeyKey"].(string)
		if k == "" {
			k = "JWT_PRIVATE_KEY"
		}
		return map[string]string{jwt["existingSecret"].(string): k}
	case jwt["privateKey"] != nil && jwt["privateKey"] != "":
		return map[string]string{"nova-auth": "JWT_PRIVATE_KEY"}
	}
	return map[string]string{"nova-auth-jwt": "JWT_PRIVATE_KEY"}
}

// TestNoPrivateKeyInPods: no pod the release runs (the serving Deployment
// above all, but also the migration Job and the test pod) gets the signing
// key: not as JWT_PRIVATE_KEY, not by reference to its Secret key, not by
// envFrom or a volume of the Secret that holds it. A pod that holds the key
// can mint tokens for anyone; VerifyToken needs the public key only.
func TestNoPrivateKeyInPods(t *testing.T) {
	for _, s := range scenarios(t) {
		t.Run(s.name, func(t *testing.T) {
			vals := values(t, s.path)
			at := privateKeyAt(vals)
			r := mustRender(t, vals, scenarioOpts(s))
			for id, p := range podTemplates(t, r) {
				for _, c := range slices.Concat(p.Spec.InitContainers, p.Spec.Containers) {
					for _, e := range c.Env {
						if strings.HasPrefix(e.Name, "JWT_PRIVATE_KEY") {
							t.Errorf("%s container %s: env %s", id, c.Name, e.Name)
						}
						if ref := e.ValueFrom; ref != nil && ref.SecretKeyRef != nil && at[ref.SecretKeyRef.Name] == ref.SecretKeyRef.Key {
							t.Errorf("%s container %s: env %s reads the private key %s/%s", id, c.Name, e.Name, ref.SecretKeyRef.Name, ref.SecretKeyRef.Key)
						}
					}
					for _, e := range c.EnvFrom {
						if e.SecretRef != nil {
							if _, ok := at[e.SecretRef.Name]; ok {
								t.Errorf("%s container %s: envFrom Secret %s, which holds the private key", id, c.Name, e.SecretRef.Name)
							}
						}
					}
				}
				for _, v := range p.Spec.Volumes {
					if v.Secret != nil {
						if _, ok := at[v.Secret.SecretName]; ok {
							t.Errorf("%s: volume %s mounts Secret %s, which holds the private key", id, v.Name, v.Secret.SecretName)
						}
					}
					if v.Projected != nil {
						for _, src := range v.Projected.Sources {
							if src.Secret != nil {
								if _, ok := at[src.Secret.Name]; ok {
									t.Errorf("%s: volume %s projects Secret %s, which holds the private key", id, v.Name, src.Secret.Name)
								}
							}
						}
					}
				}
			}
		})
	}
}

// TestServingPodsGetThePublicKey: the serving pods read JWT_PUBLIC_KEY from
// the key Secret, and not optionally (a missing public key stops the pod
// with a message naming Secret and key, instead of a pod that cannot verify).
func TestServingPodsGetThePublicKey(t *testing.T) {
	for _, tc := range []struct{ file, secret, key string }{
		{"default-values.yaml", "nova-auth-jwt", "JWT_PUBLIC_KEY"},
		{"clusterip-values.yaml", "nova-auth", "JWT_PUBLIC_KEY"},
		{"existing-secrets-values.yaml", "nova-auth-jwt", "tls.pub"},
	} {
		r := mustRender(t, values(t, filepath.Join(chartDir, "ci", tc.file)), renderOpts{})
		d := podTemplates(t, r)["Deployment/nova-auth"]
		var ref *corev1.SecretKeySelector
		for _, e := range d.Spec.Containers[0].Env {
			if e.Name == "JWT_PUBLIC_KEY" && e.ValueFrom != nil {
				ref = e.ValueFrom.SecretKeyRef
			}
		}
		if ref == nil || ref.Name != tc.secret || ref.Key != tc.key || (ref.Optional != nil && *ref.Optional) {
			t.Errorf("%s: JWT_PUBLIC_KEY from %+v, want required %s/%s", tc.file, ref, tc.secret, tc.key)
		}
	}
}

func weight(t *testing.T, annotations map[string]string) int {
	t.Helper()
	w, err := strconv.Atoi(annotations["helm.sh/hook-weight"])
	if err != nil {
		t.Fatalf("hook weight: %v", err)
	}
	return w
}

func hookOf(t *testing.T, r *rendered, kind, name string) map[string]string {
	t.Helper()
	a := r.one(t, kind, name).GetAnnotations()
	if a["helm.sh/hook"] != "pre-install,pre-upgrade" {
		t.Errorf("%s %s: hook %q, want pre-install,pre-upgrade", kind, name, a["helm.sh/hook"])
	}
	return a
}

// TestKeyJob: with no key given, a pre-install/pre-upgrade hook Job runs
// `auth-service keys ensure` with its own ServiceAccount, which may read
// only the key Secret and the chart's Secret (where earlier chart versions
// kept a generated key) and create Secrets; its RBAC is created before it
// and deleted after. No rendered object holds a key.
func TestKeyJob(t *testing.T) {
	r := defaultScenario(t)
	const name = "nova-auth-jwt-key"
	var job batchv1.Job
	into(t, r.one(t, "Job", name), &job)
	jobHook := hookOf(t, r, "Job", name)
	for _, kind := range []string{"ServiceAccount", "Role", "RoleBinding"} {
		a := hookOf(t, r, kind, name)
		if !strings.Contains(a["helm.sh/hook-delete-policy"], "hook-succeeded") {
			t.Errorf("%s %s: delete policy %q: it must be removed once the hooks ran", kind, name, a["helm.sh/hook-delete-policy"])
		}
		if w, jw := weight(t, a), weight(t, jobHook); w >= jw {
			t.Errorf("%s weight %s does not come before the Job's %s", kind, a["helm.sh/hook-weight"], jobHook["helm.sh/hook-weight"])
		}
	}
	spec := job.Spec.Template.Spec
	if spec.ServiceAccountName != name || spec.AutomountServiceAccountToken == nil || !*spec.AutomountServiceAccountToken {
		t.Errorf("key Job runs as %q with automount %v: want its own ServiceAccount and its token", spec.ServiceAccountName, spec.AutomountServiceAccountToken)
	}
	c := spec.Containers[0]
	if got := strings.Join(c.Args, " "); got != "keys ensure --secret nova-auth-jwt --adopt nova-auth --type ed25519" || c.Image != "ghcr.io/nova-auth/auth-service:0.1.0" {
		t.Errorf("key Job runs %s %q", c.Image, got)
	}
	if job.Spec.ActiveDeadlineSeconds == nil || job.Spec.BackoffLimit == nil {
		t.Error("key Job needs activeDeadlineSeconds and backoffLimit")
	}

	var role rbacv1.Role
	into(t, r.one(t, "Role", name), &role)
	var got []string
	for _, rule := range role.Rules {
		for _, v := range rule.Verbs {
			for _, res := range rule.Resources {
				got = append(got, strings.Join(rule.APIGroups, ",")+"/"+res+":"+v+":"+strings.Join(rule.ResourceNames, ","))
			}
		}
	}
	want := []string{"/secrets:get:nova-auth-jwt,nova-auth", "/secrets:create:"}
	if !slices.Equal(got, want) {
		t.Errorf("key Job Role grants %v, want %v", got, want)
	}
	var rb rbacv1.RoleBinding
	into(t, r.one(t, "RoleBinding", name), &rb)
	if rb.RoleRef.Name != name || len(rb.Subjects) != 1 || rb.Subjects[0].Name != name || rb.Subjects[0].Namespace != releaseNamespace {
		t.Errorf("key Job RoleBinding %+v %+v", rb.RoleRef, rb.Subjects)
	}

	// The key Secret is the Job's, never a render's; the chart's Secret
	// holds no key.
	if n := len(r.find("Secret")); n != 2 {
		t.Errorf("%d Secrets rendered, want the chart's and the migration hook's", n)
	}
	for _, o := range r.find("Secret") {
		if o.GetName() == "nova-auth-jwt" {
			t.Error("Secret nova-auth-jwt rendered: a render would replace the key")
		}
		data, _ := o.Object["data"].(map[string]any)
		for k := range data {
			if strings.HasPrefix(k, "JWT_") {
				t.Errorf("Secret %s holds %s with no key given", o.GetName(), k)
			}
		}
	}

	for _, f := range []string{"clusterip-values.yaml", "existing-secrets-values.yaml"} {
		x := mustRender(t, values(t, filepath.Join(chartDir, "ci", f)), renderOpts{})
		for _, o := range x.objs {
			if o.GetName() == name {
				t.Errorf("%s: %s %s rendered although the keys are given", f, o.GetKind(), o.GetName())
			}
		}
	}
	full := mustRender(t, values(t, filepath.Join(chartDir, "ci", "full-values.yaml")), renderOpts{})
	into(t, full.one(t, "Job", name), &job)
	if a := job.Spec.Template.Spec.Containers[0].Args; a[len(a)-1] != "ecdsa" {
		t.Errorf("jwt.generate.keyType=ecdsa: args %v", a)
	}
}

// TestKeysGivenAsValues: a key pair given as values is kept in the chart's
// Secret as given, for token issuers.
func TestKeysGivenAsValues(t *testing.T) {
	vals := values(t, filepath.Join(chartDir, "ci", "clusterip-values.yaml"))
	r := mustRender(t, vals, renderOpts{})
	var s corev1.Secret
	into(t, r.one(t, "Secret", "nova-auth"), &s)
	jwt := vals["jwt"].(map[string]any)
	if string(s.Data["JWT_PRIVATE_KEY"]) != jwt["privateKey"] || string(s.Data["JWT_PUBLIC_KEY"]) != jwt["publicKey"] {
		t.Errorf("Secret holds %q / %q, not the given pair", s.Data["JWT_PRIVATE_KEY"], s.Data["JWT_PUBLIC_KEY"])
	}
}

// TestJWTValuesRejected: a private key without its public key cannot work
// any more (the serving pods get only the public key): say what to set.
func TestJWTValuesRejected(t *testing.T) {
	_, err := render(t, values(t, "", dbURL, "jwt.privateKey=-----BEGIN PRIVATE KEY-----"), renderOpts{})
	if err == nil || !strings.Contains(err.Error(), "jwt.privateKey is set without jwt.publicKey") || !strings.Contains(err.Error(), "openssl pkey") {
		t.Errorf("private key alone: %v", err)
	}
	if _, err := render(t, values(t, "", dbURL, "jwt.publicKey=-----BEGIN PUBLIC KEY-----"), renderOpts{}); err != nil {
		t.Errorf("public key alone (verify only): %v", err)
	}
}
