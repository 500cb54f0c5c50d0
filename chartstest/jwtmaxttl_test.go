package chartstest

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestJWTMaxTTL: jwt.maxTTL reaches the service as JWT_MAX_TTL (24h by
// default), and a value that is not a duration fails the install naming it.
func TestJWTMaxTTL(t *testing.T) {
	for _, tc := range []struct {
		sets []string
		want string
	}{
		{nil, "24h"},
		{[]string{"jwt.maxTTL=1h"}, "1h"},
	} {
		r := mustRender(t, values(t, "", append([]string{dbURL}, tc.sets...)...), renderOpts{})
		var cm corev1.ConfigMap
		into(t, r.one(t, "ConfigMap", "nova-auth"), &cm)
		if got := cm.Data["JWT_MAX_TTL"]; got != tc.want {
			t.Errorf("%v: JWT_MAX_TTL=%q, want %q", tc.sets, got, tc.want)
		}
	}
	checkRejected(t, []rejectCase{
		{"not a duration", []string{dbURL, "jwt.maxTTL=a day"}, []string{"/jwt/maxTTL", "does not match pattern"}},
		{"a number", []string{dbURL, "jwt.maxTTL=24"}, []string{"/jwt/maxTTL", "want string"}},
	})
}
