package config

import (
	"strings"
	"testing"
)

// TestTLSSettings: the TLS and caller-policy variables, good beside bad;
// each mistake names the variable and what to do.
func TestTLSSettings(t *testing.T) {
	const policy = "RecordFailedLogin=spiffe://nova/ns/login/sa/login;ListUsers=spiffe://nova/ns/admin/sa/console;*=*"
	mtls := map[string]string{"TLS_CERT_FILE": "/tls/tls.crt", "TLS_KEY_FILE": "/tls/tls.key", "TLS_CLIENT_CA_FILE": "/tls/ca.crt"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range mtls {
			m[k] = v
		}
		for k, v := range extra {
			if v == "" {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{name: "plaintext", env: nil},
		{name: "TLS", env: with(map[string]string{"TLS_CLIENT_CA_FILE": ""})},
		{name: "mutual TLS", env: mtls},
		{name: "mutual TLS with policy", env: with(map[string]string{"CALLER_POLICY": policy})},
		{name: "policy over lines", env: with(map[string]string{"CALLER_POLICY": "VerifyToken = *\n ListUsers = a.example, b.example \n"})},
		{name: "cert without key", env: map[string]string{"TLS_CERT_FILE": "/tls/tls.crt"},
			wantErr: "TLS_CERT_FILE and TLS_KEY_FILE go together"},
		{name: "key without cert", env: map[string]string{"TLS_KEY_FILE": "/tls/tls.key"},
			wantErr: "TLS_CERT_FILE and TLS_KEY_FILE go together"},
		{name: "client CA without cert", env: map[string]string{"TLS_CLIENT_CA_FILE": "/tls/ca.crt"},
			wantErr: "TLS_CLIENT_CA_FILE is set without TLS_CERT_FILE"},
		{name: "policy without client CA", env: with(map[string]string{"TLS_CLIENT_CA_FILE": "", "CALLER_POLICY": "*=*"}),
			wantErr: "CALLER_POLICY is set without TLS_CLIENT_CA_FILE"},
		{name: "unknown method", env: with(map[string]string{"CALLER_POLICY": "ListUser=spiffe://x"}),
			wantErr: `CALLER_POLICY="ListUser=spiffe://x": rule "ListUser=spiffe://x": "ListUser" is not a method; use one of GetUser, `},
		{name: "rule without =", env: with(map[string]string{"CALLER_POLICY": "ListUsers"}),
			wantErr: "must be Method=caller[,caller…]"},
		{name: "empty caller", env: with(map[string]string{"CALLER_POLICY": "ListUsers=a,,b"}),
			wantErr: "an empty caller"},
		{name: "method twice", env: with(map[string]string{"CALLER_POLICY": "ListUsers=a;ListUsers=b"}),
			wantErr: "ListUsers has a rule already"},
		{name: "comma instead of semicolon", env: with(map[string]string{"CALLER_POLICY": "ListUsers=a,VerifyToken=*"}),
			wantErr: `caller "VerifyToken=*" has a space or '='`},
		{name: "only separators", env: with(map[string]string{"CALLER_POLICY": " ; ;"}),
			wantErr: "no rule"},
		{name: "reload interval too short", env: with(map[string]string{"TLS_RELOAD_INTERVAL": "1ms"}),
			wantErr: `TLS_RELOAD_INTERVAL="1ms": must be a duration`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(env(tc.env))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if (c.CallerPolicy != nil) != (tc.env["CALLER_POLICY"] != "") {
					t.Fatalf("policy %v for %q", c.CallerPolicy, tc.env["CALLER_POLICY"])
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}
