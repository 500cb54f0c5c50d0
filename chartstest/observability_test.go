package chartstest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"

	"github.com/nova-auth/nova-auth/internal/testenv"
	"github.com/nova-auth/nova-auth/internal/tokens"
)

// Issue 12, beyond the anchors: the Grafana dashboard and the SLO alerts are
// checked against Prometheus' own rule parser and against the metrics the
// service really exports, read from a running service's /metrics.

// promql is Prometheus' own PromQL parser, with its default functions.
var promql = parser.NewParser(parser.Options{})

var (
	scrapeOnce sync.Once
	scraped    map[string]*dto.MetricFamily
	scrapeErr  error
)

// serviceMetrics starts `auth-service serve` (testenv's binary), makes one
// call through the REST gateway so the per-call histograms have series, and
// returns its /metrics by family name. No PostgreSQL is needed: every metric
// is registered at start, and VerifyToken does not read the database.
func serviceMetrics(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: builds and runs the service binary (make test runs it without -short)")
	}
	scrapeOnce.Do(func() { scraped, scrapeErr = scrape() })
	if scrapeErr != nil {
		t.Fatal(scrapeErr)
	}
	return scraped
}

func scrape() (map[string]*dto.MetricFamily, error) {
	bin, err := testenv.Binary()
	if err != nil {
		return nil, err
	}
	_, pub, err := tokens.GenerateEd25519PEM()
	if err != nil {
		return nil, err
	}
	dbPort, err := testenv.FreePort("127.0.0.1")
	if err != nil {
		return nil, err
	}
	p, err := testenv.Serve(bin, testenv.ServeOptions{Env: []string{
		"DATABASE_URL=" + fmt.Sprintf("postgres://nobody@127.0.0.1:%d/none?sslmode=disable", dbPort),
		"JWT_PUBLIC_KEY=" + string(pub),
		"SHUTDOWN_DELAY=0s",
		"PATH=" + os.Getenv("PATH"),
	}})
	if err != nil {
		return nil, err
	}
	defer p.Stop() //nolint:errcheck // the scrape is what matters
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.WaitHTTP(ctx, "/health"); err != nil {
		return nil, err
	}
	base := "http://" + p.HTTPAddr
	resp, err := http.Post(base+"/v1/auth/VerifyToken", "application/json", strings.NewReader(`{"token":"not-a-token"}`))
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	resp, err = http.Get(base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	tp := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := tp.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("parse /metrics: %w", err)
	}
	return fams, nil
}

// seriesNames are the names a query can select from the scrape: each family,
// and a histogram's _bucket, _sum and _count series.
func seriesNames(fams map[string]*dto.MetricFamily) map[string]bool {
	out := map[string]bool{}
	for name, f := range fams {
		out[name] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				out[name+s] = true
			}
		}
	}
	return out
}

// labelNames are the label names of a family's series (le for histograms).
func labelNames(fams map[string]*dto.MetricFamily) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for name, f := range fams {
		ls := map[string]bool{}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				ls[l.GetName()] = true
			}
		}
		if f.GetType() == dto.MetricType_HISTOGRAM {
			ls["le"] = true
		}
		for _, n := range []string{name, name + "_bucket", name + "_sum", name + "_count"} {
			out[n] = ls
		}
	}
	return out
}

// scrapeLabels are the labels Prometheus adds to every series of a target
// (the Prometheus Operator's, for a ServiceMonitor): queries may use them.
var scrapeLabels = map[string]bool{"job": true, "instance": true, "namespace": true, "service": true, "pod": true, "container": true, "endpoint": true}

// checkSelectors fails for each selector of expr that names a series the
// service does not export, or filters on a label those series never carry.
// Recording rules of the same file count as exported.
func checkSelectors(t *testing.T, where, expr string, fams map[string]*dto.MetricFamily, recorded map[string]bool) {
	t.Helper()
	e, err := promql.ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: %v\n%s", where, err, expr)
		return
	}
	names, labels := seriesNames(fams), labelNames(fams)
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		switch {
		case recorded[vs.Name]:
			return nil
		case !names[vs.Name]:
			t.Errorf("%s: %s is not a metric the service exports\n%s", where, vs.Name, expr)
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if m.Name != model.MetricNameLabel && !labels[vs.Name][m.Name] && !scrapeLabels[m.Name] {
				t.Errorf("%s: %s has no label %q", where, vs.Name, m.Name)
			}
		}
		return nil
	})
}

// TestPrometheusRule: with prometheusRule.enabled the rules pass Prometheus'
// own rule parser (promtool's checks: PromQL, names, templates), every
// series they read is one the service exports, and every SLO has the four
// multi-window burn-rate alerts of the SRE workbook.
func TestPrometheusRule(t *testing.T) {
	fams := serviceMetrics(t)
	for _, sets := range []string{
		`prometheusRule: {enabled: true}`,
		`prometheusRule: {enabled: true, latency: {thresholdSeconds: 1}, availability: {objective: 99.95},
		  selector: 'job="auth"', alertLabels: {team: identity}}`,
	} {
		vals := yamlValues(t, sets)
		vals["database"] = map[string]any{"url": "postgres://u:p@db:5432/nova"}
		r := mustRender(t, vals, renderOpts{})
		pr := r.one(t, "PrometheusRule", "")
		spec, err := yaml.Marshal(pr.Object["spec"])
		if err != nil {
			t.Fatal(err)
		}
		groups, errs := rulefmt.Parse(spec, false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
		for _, err := range errs {
			t.Errorf("%v: rulefmt: %v", sets, err)
		}
		if groups == nil {
			continue
		}
		recorded := map[string]bool{}
		for _, g := range groups.Groups {
			for _, rule := range g.Rules {
				if rule.Record != "" {
					recorded[rule.Record] = true
				}
			}
		}
		burns := map[string][]string{} // slo → "severity long/short"
		for _, g := range groups.Groups {
			for _, rule := range g.Rules {
				name := rule.Record + rule.Alert
				checkSelectors(t, fmt.Sprintf("%v %s", sets, name), rule.Expr, fams, recorded)
				if rule.Alert != "" && rule.Labels["slo"] != "" {
					windows := regexp.MustCompile(`ratio_rate(\w+)\{`).FindAllStringSubmatch(rule.Expr, -1)
					if len(windows) != 2 {
						t.Errorf("%s: %d windows, want a long and a short one: %s", name, len(windows), rule.Expr)
						continue
					}
					burns[rule.Labels["slo"]] = append(burns[rule.Labels["slo"]], rule.Labels["severity"]+" "+windows[0][1]+"/"+windows[1][1])
				}
				if rule.Alert != "" && strings.Contains(sets, "team: identity") && rule.Labels["team"] != "identity" {
					t.Errorf("%s: alertLabels not applied: %v", name, rule.Labels)
				}
			}
		}
		want := []string{"critical 1h/5m", "critical 6h/30m", "warning 1d/2h", "warning 3d/6h"}
		for _, slo := range []string{"availability", "latency"} {
			got := burns[slo]
			sort.Strings(got)
			if !slices.Equal(got, want) {
				t.Errorf("%v: %s burn-rate alerts %v, want %v", sets, slo, got, want)
			}
		}
	}
	// Off by default, like every object that needs a CRD.
	if n := len(defaultScenario(t).find("PrometheusRule")); n != 0 {
		t.Errorf("%d PrometheusRules by default", n)
	}
}

// TestLatencyThresholdIsABucket: the schema's choices for
// prometheusRule.latency.thresholdSeconds are exactly the service's
// histogram buckets (a threshold between buckets would match no series),
// and a value off the list is refused by name.
func TestLatencyThresholdIsABucket(t *testing.T) {
	fams := serviceMetrics(t)
	h := fams["grpc_server_handling_seconds"]
	if h == nil || len(h.GetMetric()) == 0 {
		t.Fatal("no grpc_server_handling_seconds series after a call")
	}
	var buckets []float64
	for _, b := range h.GetMetric()[0].GetHistogram().GetBucket() {
		if !math.IsInf(b.GetUpperBound(), 1) {
			buckets = append(buckets, b.GetUpperBound())
		}
	}
	raw, err := os.ReadFile(chartDir + "/values.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties struct {
			PrometheusRule struct {
				Properties struct {
					Latency struct {
						Properties struct {
							ThresholdSeconds struct {
								Enum []float64 `json:"enum"`
							} `json:"thresholdSeconds"`
						} `json:"properties"`
					} `json:"latency"`
				} `json:"properties"`
			} `json:"prometheusRule"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	if enum := schema.Properties.PrometheusRule.Properties.Latency.Properties.ThresholdSeconds.Enum; !slices.Equal(enum, buckets) {
		t.Errorf("schema thresholds %v, service buckets %v", enum, buckets)
	}
	_, err = render(t, values(t, "", dbURL, "prometheusRule.latency.thresholdSeconds=0.3"), renderOpts{})
	if err == nil || !strings.Contains(err.Error(), "/prometheusRule/latency/thresholdSeconds") {
		t.Errorf("threshold 0.3 (no bucket): %v", err)
	}
}

// grafanaVars stand in for the dashboard's variables so that its queries
// parse as PromQL.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "5m", "$__range", "1h", "$__interval", "1m",
	"$namespace", "nova-auth", "$service", "nova-auth-grpc", "$threshold", "0.25",
)

// TestGrafanaDashboard: with grafanaDashboard.enabled a ConfigMap carries the
// sidecar's label and a dashboard whose every query parses as PromQL and
// reads only series the service exports, by labels they carry.
func TestGrafanaDashboard(t *testing.T) {
	fams := serviceMetrics(t)
	r := mustRender(t, values(t, "", dbURL, "grafanaDashboard.enabled=true", "grafanaDashboard.annotations.grafana_folder=Nova"), renderOpts{})
	cm := r.one(t, "ConfigMap", "nova-auth-dashboard")
	if cm.GetLabels()["grafana_dashboard"] != "1" || cm.GetAnnotations()["grafana_folder"] != "Nova" {
		t.Errorf("dashboard ConfigMap labels %v annotations %v", cm.GetLabels(), cm.GetAnnotations())
	}
	raw, _, _ := unstructuredString(cm.Object, "data", "nova-auth.json")
	var dash struct {
		UID        string `json:"uid"`
		Title      string `json:"title"`
		Templating struct {
			List []struct {
				Name    string `json:"name"`
				Current struct {
					Value string `json:"value"`
				} `json:"current"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(raw), &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if dash.UID == "" || len(dash.UID) > 40 || strings.Contains(raw, "@@") {
		t.Errorf("uid %q (Grafana allows 40 characters), placeholders left: %v", dash.UID, strings.Contains(raw, "@@"))
	}
	ns := r.one(t, "Deployment", "").GetNamespace()
	for _, v := range dash.Templating.List {
		want := map[string]string{"namespace": ns, "service": "nova-auth-grpc", "threshold": "0.25"}[v.Name]
		if want != "" && v.Current.Value != want {
			t.Errorf("variable %s defaults to %q, want this release's %q", v.Name, v.Current.Value, want)
		}
	}
	queries := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			queries++
			checkSelectors(t, "panel "+strconv.Quote(p.Title), grafanaVars.Replace(tg.Expr), fams, nil)
		}
	}
	if queries < 10 {
		t.Errorf("only %d queries in the dashboard", queries)
	}
	for _, must := range []string{"nova_auth_ready", "nova_auth_database_up", "grpc_server_handled_total", "grpc_server_handling_seconds_bucket"} {
		if !strings.Contains(raw, must) {
			t.Errorf("the dashboard does not show %s", must)
		}
	}
	if n := len(defaultScenario(t).find("ConfigMap")); n != 1 {
		t.Errorf("%d ConfigMaps by default: the dashboard must be opt-in", n)
	}
}
