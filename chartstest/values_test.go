package chartstest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const (
	dbURL  = "database.url=postgres://u:p@db:5432/nova"
	long63 = "a-very-long-full-name-that-is-exactly-sixty-three-characters-xy"
)

// TestValuesRejected: typos, wrong types, out-of-range numbers and
// impossible combinations fail the install with a message naming the value.
func TestValuesRejected(t *testing.T) {
	checkRejected(t, []rejectCase{
		{"no database", nil, []string{"set database.url", "or database.existingSecret"}},
		{"typo at top level", []string{dbURL, "replicaCout=3"}, []string{"additional properties 'replicaCout' not allowed"}},
		{"typo nested", []string{dbURL, "image.tagg=1"}, []string{"/image", "additional properties 'tagg' not allowed"}},
		{"replicas as string", []string{dbURL, "replicaCount=three"}, []string{"/replicaCount", "got string, want integer"}},
		{"name too long", []string{dbURL, "fullnameOverride=" + long63 + "z"}, []string{"/fullnameOverride", "maxLength: got 64, want 63"}},
		{"zero replicas", []string{dbURL, "replicaCount=0"}, []string{"/replicaCount", "minimum: got 0, want 1"}},
		{"too many replicas", []string{dbURL, "autoscaling.maxReplicas=5000"}, []string{"/autoscaling/maxReplicas", "maximum"}},
		{"bool as string", []string{dbURL, "autoscaling.enabled=yes"}, []string{"/autoscaling/enabled", "got string, want boolean"}},
		{"pull policy", []string{dbURL, "image.pullPolicy=Sometimes"}, []string{"/image/pullPolicy", "'Always', 'IfNotPresent', 'Never'"}},
		{"log level", []string{dbURL, "logLevel=verbose"}, []string{"/logLevel", "'debug', 'info', 'warn', 'error'"}},
		{"duration without unit", []string{dbURL, "grpc.keepaliveTime=30"}, []string{"/grpc/keepaliveTime", "got number, want string"}},
		{"bad duration", []string{dbURL, "lockout.duration=fifteen"}, []string{"/lockout/duration", "does not match pattern"}},
		{"port out of range", []string{dbURL, "ports.grpc=70000"}, []string{"/ports/grpc", "maximum"}},
		{"unknown algorithm", []string{dbURL, "jwt.algorithms={HS256}"}, []string{"/jwt/algorithms/0", "'RS256', 'ES256', 'EdDSA'"}},
		{"unknown key type", []string{dbURL, "jwt.generate.keyType=dsa"}, []string{"/jwt/generate/keyType"}},
		{"database url scheme", []string{"database.url=mysql://db/x"}, []string{"/database/url", "does not match pattern"}},
		{"lockout threshold", []string{dbURL, "lockout.threshold=0"}, []string{"/lockout/threshold", "minimum"}},
		{"service type", []string{dbURL, "service.external.type=ExternalName"}, []string{"/service/external/type"}},
		{"netpol port name", []string{dbURL, "networkPolicy.ingress.apiGateway.ports={ssh}"}, []string{"/networkPolicy/ingress/apiGateway/ports/0", "'http', 'grpc'"}},
		{"min above max conns", []string{dbURL, "database.minConns=30"}, []string{"database.minConns=30 must not exceed database.maxConns=20"}},
		{"same ports", []string{dbURL, "ports.http=9080"}, []string{"ports.http and ports.grpc are both 9080"}},
		{"grace period too short", []string{dbURL, "terminationGracePeriodSeconds=20"}, []string{"terminationGracePeriodSeconds=20 must exceed", "= 25"}},
		{"pdb blocks every eviction", []string{dbURL, "podDisruptionBudget.minAvailable=3"}, []string{"podDisruptionBudget.minAvailable=3 leaves no pod evictable with 3 replicas"}},
		{"hpa min above max", []string{dbURL, "autoscaling.minReplicas=11"}, []string{"autoscaling.minReplicas=11 must not exceed autoscaling.maxReplicas=10"}},
		{"both db url and secret", []string{dbURL, "database.existingSecret=db"}, []string{"either database.existingSecret or database.url"}},
		{"both jwt key and secret", []string{dbURL, "jwt.existingSecret=jwt", "jwt.publicKey=-----BEGIN PUBLIC KEY-----"}, []string{"either jwt.existingSecret or jwt.privateKey/jwt.publicKey"}},
	})
}

// rejectCase is a render that must fail, and what its error must say.
type rejectCase struct {
	name string
	sets []string
	want []string // all must appear in the error
}

// checkRejected renders each case and checks that it fails with every
// wanted phrase in the message.
func checkRejected(t *testing.T, cases []rejectCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, values(t, "", tc.sets...), renderOpts{})
			if err == nil {
				t.Fatalf("render accepted %v", tc.sets)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestValuesAccepted: the good neighbours of the rejected values render.
func TestValuesAccepted(t *testing.T) {
	for _, sets := range [][]string{
		{dbURL},
		{"database.existingSecret=db", "jwt.existingSecret=jwt"},
		{dbURL, "jwt.algorithms={EdDSA,ES256}", "grpc.keepaliveTime=1m30s"},
		{dbURL, "podDisruptionBudget.minAvailable=50%"},
		{dbURL, "autoscaling.enabled=false", "replicaCount=1", "podDisruptionBudget.enabled=false"},
		{dbURL, "terminationGracePeriodSeconds=26"},
		{dbURL, "namespaceOverride=team-a", "namespace.create=true"},
		{dbURL, "fullnameOverride=" + long63},
	} {
		if _, err := render(t, values(t, "", sets...), renderOpts{}); err != nil {
			t.Errorf("%v: %v", sets, err)
		}
	}
}

// TestNamesFit: every object name stays a valid 63-character label even with
// the longest full name.
func TestNamesFit(t *testing.T) {
	r := mustRender(t, values(t, "", dbURL, "fullnameOverride="+long63), renderOpts{})
	for _, o := range r.objs {
		if n := o.GetName(); len(n) > 63 || strings.HasSuffix(n, "-") {
			t.Errorf("%s name %q (%d characters)", o.GetKind(), n, len(n))
		}
	}
}

// TestSchemaMatchesValues: values.schema.json describes exactly the keys of
// values.yaml (zitadel-charts keeps theirs in sync the same way), so a value
// added to one and not the other fails here.
func TestSchemaMatchesValues(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var vals map[string]any
	if err := yaml.Unmarshal(raw, &vals); err != nil {
		t.Fatal(err)
	}
	raw, err = os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	if s, _ := schema["$schema"].(string); !strings.Contains(s, "draft-07") {
		t.Errorf("$schema = %q, want draft-07", s)
	}
	inValues := map[string]bool{}
	var walkValues func(prefix string, m map[string]any)
	walkValues = func(prefix string, m map[string]any) {
		for k, v := range m {
			inValues[prefix+k] = true
			if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
				walkValues(prefix+k+".", sub)
			}
		}
	}
	walkValues("", vals)
	inSchema := map[string]bool{}
	var walkSchema func(prefix string, s map[string]any)
	walkSchema = func(prefix string, s map[string]any) {
		props, _ := s["properties"].(map[string]any)
		for k, v := range props {
			inSchema[prefix+k] = true
			walkSchema(prefix+k+".", v.(map[string]any))
		}
		// Maps of named rules (networkPolicy.ingress.*) are described once.
		if ap, ok := s["additionalProperties"].(map[string]any); ok && prefix != "" {
			for k := range inValues {
				rest, found := strings.CutPrefix(k, prefix)
				if found && !strings.Contains(rest, ".") {
					inSchema[k] = true
					walkSchema(k+".", ap)
				}
			}
		}
	}
	walkSchema("", schema)
	var missing, extra []string
	for k := range inValues {
		if !inSchema[k] && !freeForm(k) {
			missing = append(missing, k)
		}
	}
	for k := range inSchema {
		if !inValues[k] && k != "global" {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("in values.yaml, not in values.schema.json: %v", missing)
	}
	if len(extra) > 0 {
		t.Errorf("in values.schema.json, not in values.yaml: %v", extra)
	}
}

// freeForm keys hold Kubernetes objects (probes, resources, securityContext,
// behavior, labels…) whose own fields the schema leaves to the API server.
func freeForm(k string) bool {
	for _, p := range []string{"strategy.", "resources.", "livenessProbe.", "readinessProbe.", "startupProbe.",
		"podSecurityContext.", "securityContext.", "autoscaling.behavior.", "migration.resources.", "tests.resources.",
		"namespace.labels.", "affinity.", "jwt.generate.resources."} {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}
