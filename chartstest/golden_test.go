package chartstest

import (
	"regexp"
	"testing"
)

// Generated values differ on every render: the JWT private key and the
// checksum of the Secret that holds it. Golden files show a placeholder;
// TestGeneratedKey and TestKeyKeptAcrossUpgrade check the real values.
var (
	generatedKey   = regexp.MustCompile(`(JWT_PRIVATE_KEY: )"LS0tLS1CRUdJTi[A-Za-z0-9+/=]*"`)
	secretChecksum = regexp.MustCompile(`(checksum/secret: )[0-9a-f]{64}`)
)

func redact(s string) string {
	s = generatedKey.ReplaceAllString(s, `${1}"<generated>"`)
	return secretChecksum.ReplaceAllString(s, `${1}<sha256 of the Secret>`)
}

// TestScenariosGolden renders each ci/ scenario and compares the whole output
// (objects, hooks, NOTES) with testdata/<scenario>.yaml.
func TestScenariosGolden(t *testing.T) {
	for _, s := range scenarios(t) {
		t.Run(s.name, func(t *testing.T) {
			vals := values(t, s.path)
			r := mustRender(t, vals, scenarioOpts(s))
			out := redact(r.all()) + "---\n# NOTES.txt\n" + commentLines(r.notes)
			if s.name == "clusterip" {
				// Keys given as values are not generated: nothing to redact.
				out = r.all() + "---\n# NOTES.txt\n" + commentLines(r.notes)
			}
			golden(t, s.name+".yaml", []byte(out))
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
