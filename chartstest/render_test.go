// Package chartstest tests the Helm chart charts/auth without a cluster: it
// renders every ci/ scenario with the Helm SDK and checks the result against
// golden files, `helm lint --strict`, Pod Security "restricted", kube-score,
// the values schema, the service's own list of settings and the README.
package chartstest

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/strvals"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite golden files and the chart README instead of comparing")

const (
	chartDir    = "../charts/auth"
	releaseName = "nova-auth"
	// releaseNamespace is where the README installs (`helm install -n
	// nova-auth --create-namespace`); the objects follow it.
	releaseNamespace = "nova-auth"
	kubeVersion      = "v1.33.0"
)

// loadChart loads charts/auth from disk, once per call (cheap: a few files).
func loadChart(t testing.TB) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	return c
}

// scenario is one charts/auth/ci/*-values.yaml file.
type scenario struct {
	name string // file name without -values.yaml
	path string
}

func scenarios(t testing.TB) []scenario {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no ci/*-values.yaml scenarios (%v)", err)
	}
	var out []scenario
	for _, f := range files {
		out = append(out, scenario{name: strings.TrimSuffix(filepath.Base(f), "-values.yaml"), path: f})
	}
	return out
}

// values reads a values file and applies --set style overrides.
func values(t testing.TB, file string, sets ...string) map[string]any {
	t.Helper()
	vals := map[string]any{}
	if file != "" {
		v, err := chartutil.ReadValuesFile(file)
		if err != nil {
			t.Fatalf("read %s: %v", file, err)
		}
		vals = v.AsMap()
	}
	for _, s := range sets {
		if err := strvals.ParseInto(s, vals); err != nil {
			t.Fatalf("--set %s: %v", s, err)
		}
	}
	return vals
}

// renderOpts adjusts a render.
type renderOpts struct {
	apiVersions []string // extra capabilities, e.g. monitoring.coreos.com/v1/ServiceMonitor
	namespace   string   // release namespace; default releaseNamespace
}

// rendered is the output of one `helm template`-like render.
type rendered struct {
	manifest string   // the release's own objects, in install order
	hooks    []string // hook objects (key Job, migration Job, test pod), by path
	notes    string
	objs     []*unstructured.Unstructured
}

// all is the whole output as one YAML stream: the manifest, then the hooks.
func (r *rendered) all() string {
	var b strings.Builder
	b.WriteString(r.manifest)
	for _, h := range r.hooks {
		b.WriteString("---\n")
		b.WriteString(h)
		b.WriteString("\n")
	}
	return b.String()
}

// find returns the objects of a kind, optionally by name.
func (r *rendered) find(kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range r.objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// one returns the only object of kind and name (name "" matches any), failing otherwise.
func (r *rendered) one(t testing.TB, kind, name string) *unstructured.Unstructured {
	t.Helper()
	var found []*unstructured.Unstructured
	for _, o := range r.find(kind) {
		if name == "" || o.GetName() == name {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one %s %q, got %d", kind, name, len(found))
	}
	return found[0]
}

// into converts an object into a typed Kubernetes struct (corev1.Pod, …).
func into(t testing.TB, o *unstructured.Unstructured, dst any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, dst, true); err != nil {
		t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
	}
}

// render runs the SDK's install action in client-only dry-run mode, as
// `helm template` does: schema validation, templates, hooks and NOTES.
func render(t testing.TB, vals map[string]any, o renderOpts) (*rendered, error) {
	t.Helper()
	cfg := &action.Configuration{Log: func(string, ...any) {}}
	inst := action.NewInstall(cfg)
	inst.DryRun = true
	inst.ClientOnly = true
	inst.Replace = true
	inst.ReleaseName = releaseName
	inst.Namespace = releaseNamespace
	if o.namespace != "" {
		inst.Namespace = o.namespace
	}
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	inst.KubeVersion = kv
	inst.APIVersions = o.apiVersions
	rel, err := inst.RunWithContext(context.Background(), loadChart(t), vals)
	if err != nil {
		return nil, err
	}
	r := &rendered{manifest: rel.Manifest, notes: rel.Info.Notes}
	sort.SliceStable(rel.Hooks, func(i, j int) bool {
		if rel.Hooks[i].Path != rel.Hooks[j].Path {
			return rel.Hooks[i].Path < rel.Hooks[j].Path
		}
		return rel.Hooks[i].Name < rel.Hooks[j].Name
	})
	for _, h := range rel.Hooks {
		r.hooks = append(r.hooks, "# Source: "+h.Path+"\n"+strings.TrimSpace(h.Manifest))
	}
	r.objs, err = decodeAll(r.all())
	if err != nil {
		t.Fatalf("rendered YAML does not parse: %v\n%s", err, r.all())
	}
	return r, nil
}

// mustRender renders or fails the test.
func mustRender(t testing.TB, vals map[string]any, o renderOpts) *rendered {
	t.Helper()
	r, err := render(t, vals, o)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return r
}

// decodeAll splits a YAML stream into objects, skipping empty documents.
func decodeAll(stream string) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for i, doc := range splitDocs(stream) {
		m := map[string]any{}
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	return out, nil
}

func splitDocs(stream string) []string {
	var docs []string
	for _, d := range strings.Split("\n"+stream, "\n---") {
		if strings.TrimSpace(d) != "" {
			docs = append(docs, d)
		}
	}
	return docs
}

// scenarioOpts gives a scenario the capabilities it is meant for: the
// "full" scenario runs where the Prometheus Operator's CRDs exist.
func scenarioOpts(s scenario) renderOpts {
	if s.name == "full" {
		return renderOpts{apiVersions: []string{"monitoring.coreos.com/v1/ServiceMonitor"}}
	}
	return renderOpts{}
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run `go test -run %s -update` to create it)", err, t.Name())
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs from the render (review, then `go test -run %s -update`):\n%s", path, t.Name(), diff(string(want), string(got)))
	}
}

// diff is a small line diff: enough to see what moved in a golden file.
func diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	i, j, shown := 0, 0, 0
	for (i < len(w) || j < len(g)) && shown < 40 {
		switch {
		case i < len(w) && j < len(g) && w[i] == g[j]:
			i++
			j++
		case j < len(g) && (i >= len(w) || !contains(w[i:], g[j])):
			fmt.Fprintf(&b, "+%d: %s\n", j+1, g[j])
			j++
			shown++
		default:
			fmt.Fprintf(&b, "-%d: %s\n", i+1, w[i])
			i++
			shown++
		}
	}
	return b.String()
}

func contains(lines []string, l string) bool {
	for _, x := range lines {
		if x == l {
			return true
		}
	}
	return false
}

// TestPackageContents: .helmignore keeps the ci/ scenarios and the README
// template out of the package, and the helm test pod in it.
func TestPackageContents(t *testing.T) {
	c := loadChart(t)
	var names []string
	for _, f := range c.Raw {
		names = append(names, f.Name)
	}
	hasTest := false
	for _, n := range names {
		if strings.HasPrefix(n, "ci/") || n == "README.md.gotmpl" {
			t.Errorf("%s is packaged", n)
		}
		if n == "templates/tests/test-grpc-health.yaml" {
			hasTest = true
		}
	}
	if !hasTest {
		t.Errorf("the helm test pod is not packaged: %v", names)
	}
}
