package config

import (
	"strings"
	"testing"
)

// TestPprofAddrLoopbackOnly: PPROF_ADDR must be a loopback address unless
// PPROF_ALLOW_REMOTE=true; the refusal names the variable and the way out.
func TestPprofAddrLoopbackOnly(t *testing.T) {
	for _, tc := range []struct {
		addr, allow string
		err         string // "" accepted
	}{
		{"127.0.0.1:6060", "", ""},
		{"[::1]:6060", "", ""},
		{"localhost:6060", "", ""},
		{"127.0.0.2:6060", "", ""},
		{"0.0.0.0:6060", "", "PPROF_ADDR=0.0.0.0:6060: profiles would be reachable from the network"},
		{":6060", "", "PPROF_ADDR=:6060: profiles would be reachable"},
		{"[::]:6060", "", "set PPROF_ALLOW_REMOTE=true"},
		{"10.1.2.3:6060", "", "use a loopback address such as 127.0.0.1:6060"},
		{"pod.example:6060", "", "PPROF_ADDR=pod.example:6060"},
		{"0.0.0.0:6060", "true", ""},
		{"10.1.2.3:6060", "true", ""},
		{"0.0.0.0:6060", "false", "profiles would be reachable"},
		{"127.0.0.1:6060", "maybe", `PPROF_ALLOW_REMOTE="maybe": must be true or false`},
		{"", "", ""},
	} {
		c, err := Load(env(map[string]string{"PPROF_ADDR": tc.addr, "PPROF_ALLOW_REMOTE": tc.allow}))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("PPROF_ADDR=%q PPROF_ALLOW_REMOTE=%q refused: %v", tc.addr, tc.allow, err)
		case tc.err == "" && c.PprofAddr != tc.addr:
			t.Errorf("PPROF_ADDR=%q read as %q", tc.addr, c.PprofAddr)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("PPROF_ADDR=%q PPROF_ALLOW_REMOTE=%q: error %v; want one containing %q", tc.addr, tc.allow, err, tc.err)
		}
	}
}

// TestHTTPAllowedHosts: a comma-separated list of host names; a URL or a
// path is refused by name.
func TestHTTPAllowedHosts(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want []string
		err  string
	}{
		{"", nil, ""},
		{"auth.example.com", []string{"auth.example.com"}, ""},
		{" auth.example.com , auth ,", []string{"auth.example.com", "auth"}, ""},
		{"auth:8080,[::1]", []string{"auth:8080", "[::1]"}, ""},
		{"https://auth.example.com", nil, `HTTP_ALLOWED_HOSTS="https://auth.example.com": "https://auth.example.com" is not a host name`},
		{"auth.example.com/v1", nil, "without scheme or path"},
		{"user@auth", nil, "is not a host name"},
	} {
		c, err := Load(env(map[string]string{"HTTP_ALLOWED_HOSTS": tc.v}))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("HTTP_ALLOWED_HOSTS=%q: error %v; want %q", tc.v, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("HTTP_ALLOWED_HOSTS=%q refused: %v", tc.v, err)
			continue
		}
		if strings.Join(c.HTTPAllowedHosts, "|") != strings.Join(tc.want, "|") {
			t.Errorf("HTTP_ALLOWED_HOSTS=%q read as %q; want %q", tc.v, c.HTTPAllowedHosts, tc.want)
		}
	}
}
