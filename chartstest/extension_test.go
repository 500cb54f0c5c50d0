package chartstest

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// Issue 12, item 8: the extension points users expect, the database CA,
// global image settings, and pod labels that can never break the selector.

// yamlValues parses a values document written in the test.
func yamlValues(t testing.TB, doc string) map[string]any {
	t.Helper()
	vals := map[string]any{}
	if err := yaml.Unmarshal([]byte(doc), &vals); err != nil {
		t.Fatalf("values: %v\n%s", err, doc)
	}
	return vals
}

// deployment renders vals and returns the service's Deployment.
func deployment(t *testing.T, vals map[string]any) (*rendered, appsv1.Deployment) {
	t.Helper()
	r := mustRender(t, vals, renderOpts{})
	var d appsv1.Deployment
	into(t, r.one(t, "Deployment", ""), &d)
	return r, d
}

func container(t testing.TB, spec corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q", name)
	return corev1.Container{}
}

// TestExtensionPoints: extraVolumes, extraVolumeMounts, extraEnvFrom,
// initContainers, sidecars and extraObjects reach the rendered objects, the
// ones documented as such rendered with tpl.
func TestExtensionPoints(t *testing.T) {
	r, d := deployment(t, yamlValues(t, `
database: {url: "postgres://u:p@db:5432/nova"}
priorityClassName: nova-critical
extraVolumes:
  - name: plugins
    configMap: {name: "{{ .Release.Name }}-plugins"}
extraVolumeMounts:
  - {name: plugins, mountPath: /etc/plugins, readOnly: true}
extraEnvFrom:
  - secretRef: {name: vendor-settings}
initContainers:
  - name: wait
    image: "{{ .Values.image.repository }}:tools"
    args: [version]
sidecars:
  - name: proxy
    image: envoyproxy/envoy:v1.31.0
extraObjects:
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: '{{ include "auth.fullname" . }}-plugins'}
    data: {release: "{{ .Release.Name }}"}
  - |
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: {{ .Release.Name }}-from-string
`))
	spec := d.Spec.Template.Spec
	if spec.PriorityClassName != "nova-critical" {
		t.Errorf("priorityClassName = %q", spec.PriorityClassName)
	}
	vols := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		vols[v.Name] = v
	}
	if v, ok := vols["plugins"]; !ok || v.ConfigMap == nil || v.ConfigMap.Name != "nova-auth-plugins" {
		t.Errorf("extraVolumes (tpl) = %+v", spec.Volumes)
	}
	svc := container(t, spec, "auth-service")
	if len(svc.VolumeMounts) != 1 || svc.VolumeMounts[0].MountPath != "/etc/plugins" || !svc.VolumeMounts[0].ReadOnly {
		t.Errorf("extraVolumeMounts = %+v", svc.VolumeMounts)
	}
	if len(svc.EnvFrom) != 2 || svc.EnvFrom[0].ConfigMapRef == nil || svc.EnvFrom[1].SecretRef == nil || svc.EnvFrom[1].SecretRef.Name != "vendor-settings" {
		t.Errorf("envFrom = %+v, want the chart's ConfigMap then extraEnvFrom", svc.EnvFrom)
	}
	if len(spec.InitContainers) != 1 || spec.InitContainers[0].Image != "ghcr.io/nova-auth/auth-service:tools" {
		t.Errorf("initContainers (tpl) = %+v", spec.InitContainers)
	}
	if len(spec.Containers) != 2 || spec.Containers[0].Name != "auth-service" || spec.Containers[1].Name != "proxy" {
		t.Errorf("containers = %v, want auth-service then the sidecar", names(spec.Containers))
	}
	cm := r.one(t, "ConfigMap", "nova-auth-plugins")
	if data, _, _ := unstructuredString(cm.Object, "data", "release"); data != "nova-auth" {
		t.Errorf("extraObjects map not rendered with tpl: %v", cm.Object)
	}
	r.one(t, "ConfigMap", "nova-auth-from-string")
}

func names(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func unstructuredString(obj map[string]any, path ...string) (string, bool, error) {
	var cur any = obj
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return "", false, nil
		}
		cur = m[p]
	}
	s, ok := cur.(string)
	return s, ok, nil
}

// TestPodLabelsSelectorWins: a podLabels key that repeats a selector label
// used to render twice (a duplicate YAML key: the install failed); now the
// selector's value wins and the pods stay selected, the other podLabels kept.
func TestPodLabelsSelectorWins(t *testing.T) {
	r, d := deployment(t, values(t, "", dbURL,
		"podLabels.app\\.kubernetes\\.io/name=other",
		"podLabels.app\\.kubernetes\\.io/component=worker",
		"podLabels.team=identity"))
	// The API server (and kubectl, Helm's apply) refuse a repeated key.
	for i, doc := range splitDocs(r.all()) {
		var m map[string]any
		if err := yaml.UnmarshalStrict([]byte(doc), &m); err != nil {
			t.Errorf("document %d: %v", i, err)
		}
	}
	got := d.Spec.Template.Labels
	for k, v := range d.Spec.Selector.MatchLabels {
		if got[k] != v {
			t.Errorf("pod label %s=%q, but the selector wants %q", k, got[k], v)
		}
	}
	if got["team"] != "identity" {
		t.Errorf("podLabels.team lost: %v", got)
	}
}

// TestDatabaseCA: database.caSecret mounts the CA read-only into the service
// and the migration Job and names it with PGSSLROOTCERT (pgx reads it as
// libpq does), the file path being where the mount puts the key.
func TestDatabaseCA(t *testing.T) {
	r, d := deployment(t, values(t, "", dbURL, "database.caSecret.name=pg-ca", "database.caSecret.key=root.pem"))
	var j batchv1.Job
	into(t, r.one(t, "Job", "nova-auth-migrate"), &j)
	for what, spec := range map[string]corev1.PodSpec{"Deployment": d.Spec.Template.Spec, "migration Job": j.Spec.Template.Spec} {
		c := spec.Containers[0]
		var path string
		for _, e := range c.Env {
			if e.Name == "PGSSLROOTCERT" {
				path = e.Value
			}
		}
		if path == "" {
			t.Errorf("%s: no PGSSLROOTCERT", what)
			continue
		}
		var mount *corev1.VolumeMount
		for i, m := range c.VolumeMounts {
			if strings.HasPrefix(path, m.MountPath+"/") {
				mount = &c.VolumeMounts[i]
			}
		}
		if mount == nil || !mount.ReadOnly {
			t.Errorf("%s: PGSSLROOTCERT=%s is not under a read-only mount: %+v", what, path, c.VolumeMounts)
			continue
		}
		var vol *corev1.Volume
		for i, v := range spec.Volumes {
			if v.Name == mount.Name {
				vol = &spec.Volumes[i]
			}
		}
		if vol == nil || vol.Secret == nil || vol.Secret.SecretName != "pg-ca" || len(vol.Secret.Items) != 1 ||
			vol.Secret.Items[0].Key != "root.pem" || mount.MountPath+"/"+vol.Secret.Items[0].Path != path {
			t.Errorf("%s: volume %+v does not put key root.pem of Secret pg-ca at %s", what, vol, path)
		}
	}
	// Without it, nothing of it is rendered.
	_, d = deployment(t, values(t, "", dbURL))
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "PGSSLROOTCERT" {
			t.Error("PGSSLROOTCERT set without database.caSecret")
		}
	}
}

// TestGlobalImageSettings: global.imageRegistry replaces the registry of the
// image every pod of the release runs (or prefixes a Docker Hub short name),
// and global.imagePullSecrets join imagePullSecrets without repeats.
func TestGlobalImageSettings(t *testing.T) {
	for _, tc := range []struct {
		sets []string
		want string
	}{
		{[]string{"global.imageRegistry=mirror.example.com"}, "mirror.example.com/nova-auth/auth-service:0.1.0"},
		{[]string{"global.imageRegistry=mirror.example:5000/ghcr"}, "mirror.example:5000/ghcr/nova-auth/auth-service:0.1.0"},
		{[]string{"global.imageRegistry=mirror.example.com", "image.repository=localhost:5000/auth"}, "mirror.example.com/auth:0.1.0"},
		{[]string{"global.imageRegistry=mirror.example.com", "image.repository=library/auth"}, "mirror.example.com/library/auth:0.1.0"},
		{[]string{"image.tag=1.2.3", "image.digest=sha256:" + strings.Repeat("ab", 32)}, "ghcr.io/nova-auth/auth-service:1.2.3@sha256:" + strings.Repeat("ab", 32)},
		{[]string{"image.digest=sha256:" + strings.Repeat("ab", 32)}, "ghcr.io/nova-auth/auth-service@sha256:" + strings.Repeat("ab", 32)},
	} {
		r, d := deployment(t, values(t, "", append([]string{dbURL}, tc.sets...)...))
		if got := d.Spec.Template.Spec.Containers[0].Image; got != tc.want {
			t.Errorf("%v: image %q, want %q", tc.sets, got, tc.want)
		}
		for id, pod := range podTemplates(t, r) {
			for _, c := range pod.Spec.Containers {
				if c.Image != tc.want {
					t.Errorf("%v: %s runs %q, want %q", tc.sets, id, c.Image, tc.want)
				}
			}
		}
	}

	r, _ := deployment(t, values(t, "", dbURL, "imagePullSecrets[0].name=a", "global.imagePullSecrets={a,b}"))
	for id, pod := range podTemplates(t, r) {
		var got []string
		for _, s := range pod.Spec.ImagePullSecrets {
			got = append(got, s.Name)
		}
		if strings.Join(got, ",") != "a,b" {
			t.Errorf("%s: imagePullSecrets = %v, want [a b]", id, got)
		}
	}
}

// TestExtensionValuesRejected: bad forms of the new values fail with a
// message naming the value.
func TestExtensionValuesRejected(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want []string
	}{
		{"registry with scheme", `global: {imageRegistry: "https://mirror.example.com"}`, []string{"/global/imageRegistry", "does not match pattern"}},
		{"pull secret without name", `global: {imagePullSecrets: [{secret: x}]}`, []string{"/global/imagePullSecrets/0"}},
		{"volume without name", `extraVolumes: [{emptyDir: {}}]`, []string{"/extraVolumes/0", "missing property 'name'"}},
		{"mount without path", `extraVolumeMounts: [{name: x}]`, []string{"/extraVolumeMounts/0", "missing property 'mountPath'"}},
		{"relative mount path", `extraVolumeMounts: [{name: x, mountPath: etc/x}]`, []string{"/extraVolumeMounts/0/mountPath", "does not match pattern"}},
		{"envFrom of nothing", `extraEnvFrom: [{prefix: X_}]`, []string{"/extraEnvFrom/0"}},
		{"sidecar as a string", `sidecars: [envoy]`, []string{"/sidecars/0", "want object"}},
		{"init container without name", `initContainers: [{image: busybox}]`, []string{"/initContainers/0", "missing property 'name'"}},
		{"extra object as a number", `extraObjects: [1]`, []string{"/extraObjects/0", "want string or object"}},
		{"CA secret key", `database: {caSecret: {name: pg-ca, key: "ca crt"}}`, []string{"/database/caSecret/key", "does not match pattern"}},
		{"CA secret typo", `database: {caSecret: {secret: pg-ca}}`, []string{"/database/caSecret", "additional properties 'secret' not allowed"}},
		{"pod label value", `podLabels: {team: "a b"}`, []string{"/podLabels/team", "does not match pattern"}},
		{"priority class", `priorityClassName: High`, []string{"/priorityClassName", "does not match pattern"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vals := yamlValues(t, tc.doc)
			vals["database"] = mergeMap(map[string]any{"url": "postgres://u:p@db:5432/nova"}, vals["database"])
			_, err := render(t, vals, renderOpts{})
			if err == nil {
				t.Fatalf("render accepted %s", tc.doc)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

// mergeMap returns base with the keys of over (a map or nil) set on it.
func mergeMap(base map[string]any, over any) map[string]any {
	if m, ok := over.(map[string]any); ok {
		for k, v := range m {
			base[k] = v
		}
	}
	return base
}
