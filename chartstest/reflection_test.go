package chartstest

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestReflectionOffByDefault: the chart serves no gRPC reflection unless
// grpc.reflection is set (issue 13); `make run` turns it on through
// internal/devstack's environment instead.
func TestReflectionOffByDefault(t *testing.T) {
	for _, tc := range []struct {
		sets []string
		want string
	}{
		{nil, "false"},
		{[]string{"grpc.reflection=true"}, "true"},
		{[]string{"grpc.reflection=false"}, "false"},
	} {
		r := mustRender(t, values(t, "", append([]string{dbURL}, tc.sets...)...), renderOpts{})
		var cm corev1.ConfigMap
		into(t, r.one(t, "ConfigMap", "nova-auth"), &cm)
		if got := cm.Data["GRPC_REFLECTION"]; got != tc.want {
			t.Errorf("%v: GRPC_REFLECTION=%q; want %q", tc.sets, got, tc.want)
		}
	}
	if _, err := render(t, values(t, "", dbURL, "grpc.reflection=yes"), renderOpts{}); err == nil {
		t.Error("grpc.reflection=yes (a string) accepted")
	}
}
