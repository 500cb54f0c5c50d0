package chartstest

import (
	"testing"
)

// TestScenariosGolden renders each ci/ scenario and compares the whole output
// (objects, hooks, NOTES) with testdata/<scenario>.yaml.
func TestScenariosGolden(t *testing.T) {
	for _, s := range scenarios(t) {
		t.Run(s.name, func(t *testing.T) {
			// Every render is the same (TestRenderTwiceIdentical): nothing
			// generated to redact.
			r := mustRender(t, values(t, s.path), scenarioOpts(s))
			golden(t, s.name+".yaml", []byte(r.all()+"---\n# NOTES.txt\n"+commentLines(r.notes)))
		})
	}
}

func commentLines(s string) string {
	out := ""
	for _, l := range splitLines(s) {
		if l == "" {
			out += "#\n"
		} else {
			out += "# " + l + "\n"
		}
	}
	return out
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}
