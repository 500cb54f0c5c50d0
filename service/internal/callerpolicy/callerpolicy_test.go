package callerpolicy

import "testing"

var methods = []string{"VerifyToken", "ListUsers", "RecordFailedLogin", "GetUser"}

// TestAllows: which identity may call which method, under policies with and
// without a default rule.
func TestAllows(t *testing.T) {
	const (
		login = "spiffe://nova/ns/login/sa/login"
		admin = "spiffe://nova/ns/admin/sa/console"
	)
	for _, tc := range []struct {
		policy, method, caller string
		want                   bool
	}{
		{"RecordFailedLogin=" + login + ";*=*", "RecordFailedLogin", login, true},
		{"RecordFailedLogin=" + login + ";*=*", "RecordFailedLogin", admin, false},
		{"RecordFailedLogin=" + login + ";*=*", "GetUser", admin, true},
		{"RecordFailedLogin=" + login + ";*=*", "GetUser", "", false}, // no verified certificate
		{"RecordFailedLogin=" + login, "GetUser", login, false},       // no default rule: nobody
		{"ListUsers=" + admin + ",batch-job", "ListUsers", "batch-job", true},
		{"ListUsers=" + admin, "ListUsers", admin + "/x", false}, // exact, not prefix
		{"ListUsers=" + admin, "ListUsers", "SPIFFE://nova/ns/admin/sa/console", false},
		{"*=" + admin, "VerifyToken", admin, true},
		{"*=" + admin, "VerifyToken", login, false},
		{"VerifyToken=*;*=" + admin, "VerifyToken", login, true},
	} {
		p, err := Parse(tc.policy, methods)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Allows(tc.method, tc.caller); got != tc.want {
			t.Errorf("%q: %s by %q = %v, want %v", tc.policy, tc.method, tc.caller, got, tc.want)
		}
	}
	var nilPolicy *Policy
	if nilPolicy.Allows("VerifyToken", login) {
		t.Error("a nil policy allows")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"*=*", "ListUsers=a,b;VerifyToken=*", "=", ";;", "ListUsers=\n*=x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s, methods)
		if err == nil && p.String() != s {
			t.Fatalf("String() = %q, want %q", p.String(), s)
		}
	})
}
