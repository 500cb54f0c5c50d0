package chartstest

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

// TestLintStrict runs `helm lint --strict` (the SDK's lint action) on each
// scenario: warnings fail too.
func TestLintStrict(t *testing.T) {
	for _, s := range scenarios(t) {
		t.Run(s.name, func(t *testing.T) {
			l := action.NewLint()
			l.Strict = true
			l.Namespace = releaseNamespace
			kv, _ := chartutil.ParseKubeVersion(kubeVersion)
			l.KubeVersion = kv
			res := l.Run([]string{chartDir}, values(t, s.path))
			for _, err := range res.Errors {
				t.Errorf("lint: %v", err)
			}
			for _, m := range res.Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("lint: %s", m)
				}
			}
		})
	}
}

// podTemplates returns every pod the release can create: the Deployment's,
// the migration Job's and the test pod.
func podTemplates(t *testing.T, r *rendered) map[string]corev1.PodTemplateSpec {
	t.Helper()
	out := map[string]corev1.PodTemplateSpec{}
	for _, o := range r.objs {
		id := o.GetKind() + "/" + o.GetName()
		switch o.GetKind() {
		case "Deployment":
			var d appsv1.Deployment
			into(t, o, &d)
			out[id] = d.Spec.Template
		case "Job":
			var j batchv1.Job
			into(t, o, &j)
			out[id] = j.Spec.Template
		case "Pod":
			var p corev1.Pod
			into(t, o, &p)
			out[id] = corev1.PodTemplateSpec{ObjectMeta: p.ObjectMeta, Spec: p.Spec}
		}
	}
	return out
}

// TestPodSecurityRestricted evaluates every rendered pod against the Pod
// Security "restricted" level with the same code the admission plugin runs.
func TestPodSecurityRestricted(t *testing.T) {
	eval, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	lv := psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}
	for _, s := range scenarios(t) {
		t.Run(s.name, func(t *testing.T) {
			r := mustRender(t, values(t, s.path), scenarioOpts(s))
			pods := podTemplates(t, r)
			if len(pods) == 0 {
				t.Fatal("no pods rendered")
			}
			for id, p := range pods {
				meta := metav1.ObjectMeta{Labels: p.Labels, Annotations: p.Annotations}
				spec := p.Spec
				res := policy.AggregateCheckResults(eval.EvaluatePod(lv, &meta, &spec))
				if !res.Allowed {
					t.Errorf("%s violates Pod Security restricted: %s: %s", id, res.ForbiddenReason(), res.ForbiddenDetail())
				}
			}
		})
	}
}

// kubeScoreIgnores are the checks a scenario turns off on purpose.
var kubeScoreIgnores = map[string][]string{
	// Everything optional off: no NetworkPolicy, PDB or anti-affinity is the
	// point of that scenario.
	"minimal": {"pod-networkpolicy", "deployment-has-poddisruptionbudget", "deployment-has-host-podantiaffinity"},
}

// kubeScoreAlwaysIgnored are checks the chart disagrees with, each for a reason.
var kubeScoreAlwaysIgnored = map[string]string{
	// Tags are immutable versions (or a digest): Always adds a registry round
	// trip to every pod start and breaks images loaded into nodes (kind, the
	// e2e cluster). Users who rely on imagePullSecrets re-validation set
	// image.pullPolicy=Always (the full scenario does).
	"container-image-pull-policy": "immutable tags; IfNotPresent by design",
}

// kubeScoreOptional are optional checks the chart passes and keeps passing.
var kubeScoreOptional = []string{"container-seccomp-profile", "container-ports-check"}

// TestKubeScore runs kube-score (pinned in tools/go.mod) on each
// scenario's full output, objects and hooks, and fails on any CRITICAL.
func TestKubeScore(t *testing.T) {
	bin := tool(t, "../tools", "github.com/zegl/kube-score/cmd/kube-score")
	for _, s := range scenarios(t) {
		t.Run(s.name, func(t *testing.T) {
			r := mustRender(t, values(t, s.path), scenarioOpts(s))
			file := filepath.Join(t.TempDir(), s.name+".yaml")
			if err := os.WriteFile(file, []byte(r.all()), 0o644); err != nil {
				t.Fatal(err)
			}
			args := []string{"score", "--output-format", "json", "--kubernetes-version", "v1.33",
				"--disable-ignore-checks-annotations"} // nothing may be silenced from inside the chart
			for id := range kubeScoreAlwaysIgnored {
				args = append(args, "--ignore-test", id)
			}
			for _, id := range kubeScoreIgnores[s.name] {
				args = append(args, "--ignore-test", id)
			}
			for _, id := range kubeScoreOptional {
				args = append(args, "--enable-optional-test", id)
			}
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(bin, append(args, file)...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run() // exits 1 on CRITICAL: the JSON says which
			var objects []struct {
				ObjectName string `json:"object_name"`
				Checks     []struct {
					Check struct {
						ID string `json:"id"`
					} `json:"check"`
					Grade    int  `json:"grade"`
					Skipped  bool `json:"skipped"`
					Comments []struct {
						Path        string `json:"path"`
						Summary     string `json:"summary"`
						Description string `json:"description"`
					} `json:"comments"`
				} `json:"checks"`
			}
			if jerr := json.Unmarshal(stdout.Bytes(), &objects); jerr != nil {
				t.Fatalf("kube-score: %v / %v\n%s%s", err, jerr, stdout.String(), stderr.String())
			}
			if len(objects) == 0 {
				t.Fatal("kube-score scored no object")
			}
			const critical = 1
			for _, o := range objects {
				for _, c := range o.Checks {
					if c.Skipped || c.Grade > critical {
						continue
					}
					var why []string
					for _, com := range c.Comments {
						why = append(why, strings.TrimSpace(com.Path+" "+com.Summary))
					}
					t.Errorf("kube-score CRITICAL %s on %s: %s", c.Check.ID, o.ObjectName, strings.Join(why, "; "))
				}
			}
			if err != nil && !t.Failed() {
				t.Errorf("kube-score failed without a CRITICAL: %v\n%s", err, stderr.String())
			}
		})
	}
}
