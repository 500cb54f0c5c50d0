package store

import (
	"regexp"
	"strconv"
	"testing"
)

// TestLimitsMatchSchema: the limits the handlers and commands check are the
// ones the schema's CHECK constraints enforce.
func TestLimitsMatchSchema(t *testing.T) {
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	check := regexp.MustCompile(`CHECK \(length\((\w+)\) BETWEEN \d+ AND (\d+)\)`)
	got := map[string]int{}
	for _, m := range ms {
		for _, c := range check.FindAllStringSubmatch(m.sql, -1) {
			n, _ := strconv.Atoi(c[2])
			got[c[1]] = n
		}
	}
	for _, tc := range []struct {
		column string
		limit  int
	}{
		{"email", MaxEmailLen},
		{"username", MaxUsernameLen},
		{"permission", MaxPermissionLen},
	} {
		if got[tc.column] != tc.limit {
			t.Errorf("%s: schema allows up to %d, the constant says %d", tc.column, got[tc.column], tc.limit)
		}
	}
}
