// Package callerpolicy decides which verified clients may call which
// AuthService method (CALLER_POLICY).
//
// The policy is a list of rules separated by ';' (or new lines):
//
//	Method=caller[,caller…]
//
// Method is an AuthService method name (VerifyToken, ListUsers, …) or '*'
// for every method no rule names. A caller is the identity of a verified
// client certificate, compared exactly: its first URI SAN (a SPIFFE ID such
// as spiffe://nova/ns/login/sa/login), else its first DNS SAN, else its
// subject CN; or '*' for any client with a verified certificate. A method
// that no rule names, when there is no '*' rule, is refused to everyone.
// Example:
//
//	RecordFailedLogin=spiffe://nova/ns/login/sa/login;ListUsers=spiffe://nova/ns/admin/sa/console;*=*
package callerpolicy

import (
	"fmt"
	"slices"
	"strings"
)

// Any is the caller (and method) wildcard.
const Any = "*"

// Policy is a parsed CALLER_POLICY. The zero value refuses every call.
type Policy struct {
	rules map[string]rule // by method; Any for the default
	text  string
}

type rule struct {
	any     bool
	callers map[string]bool
}

// Parse reads a policy; methods are the names a rule may use. Every problem
// is reported with the rule it is in.
func Parse(s string, methods []string) (*Policy, error) {
	p := &Policy{rules: map[string]rule{}, text: s}
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == '\n' })
	for _, f := range fields {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		method, callers, ok := strings.Cut(f, "=")
		method = strings.TrimSpace(method)
		if !ok || method == "" {
			return nil, fmt.Errorf("rule %q: must be Method=caller[,caller…], e.g. ListUsers=spiffe://nova/ns/admin/sa/console", f)
		}
		if method != Any && !slices.Contains(methods, method) {
			return nil, fmt.Errorf("rule %q: %q is not a method; use one of %s, or * for the others", f, method, strings.Join(methods, ", "))
		}
		if _, dup := p.rules[method]; dup {
			return nil, fmt.Errorf("rule %q: %s has a rule already; list all its callers in one rule", f, method)
		}
		r := rule{callers: map[string]bool{}}
		for _, c := range strings.Split(callers, ",") {
			c = strings.TrimSpace(c)
			switch {
			case c == "":
				return nil, fmt.Errorf("rule %q: an empty caller; name each caller (a SPIFFE ID, a DNS name or a CN) or * for any verified client", f)
			case c == Any:
				r.any = true
			case strings.ContainsAny(c, " \t="):
				return nil, fmt.Errorf("rule %q: caller %q has a space or '='; rules are separated by ';'", f, c)
			default:
				r.callers[c] = true
			}
		}
		p.rules[method] = r
	}
	if len(p.rules) == 0 {
		return nil, fmt.Errorf("no rule: give Method=caller rules separated by ';', e.g. *=* for any verified client")
	}
	return p, nil
}

// Allows reports whether identity ("" when the client showed no verified
// certificate) may call method.
func (p *Policy) Allows(method, identity string) bool {
	if p == nil || identity == "" {
		return false
	}
	r, ok := p.rules[method]
	if !ok {
		if r, ok = p.rules[Any]; !ok {
			return false
		}
	}
	return r.any || r.callers[identity]
}

// String is the policy as it was given.
func (p *Policy) String() string { return p.text }
