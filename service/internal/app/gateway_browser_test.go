package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

// send makes one HTTP request to the service with the given headers (a
// "Host" entry sets the Host header) and returns status, headers and body.
func send(t *testing.T, method, url, body string, hdr map[string]string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(b, &m) //nolint:errcheck // some answers are not JSON
	return resp.StatusCode, resp.Header, m
}

// failedLogins is the user's failure count as the database holds it.
func failedLogins(t *testing.T, e *env, id string) int32 {
	t.Helper()
	u, err := e.client.GetUser(context.Background(), &authpb.GetUserRequest{UserId: id})
	if err != nil {
		t.Fatal(err)
	}
	return u.GetUser().GetFailedLoginAttempts()
}

// TestGatewayPOSTNeedsJSONContentType: a POST that any web page can send
// without a CORS preflight (text/plain, a form, no Content-Type) is refused
// with 415 and runs nothing: RecordFailedLogin from a hostile page must not
// count a failure and lock the account.
func TestGatewayPOSTNeedsJSONContentType(t *testing.T) {
	e := newEnv(t, nil, nil)
	id := e.user(t, "victim@example.com", "victim")
	body := `{"user_id":"` + id + `"}`
	var counted int32
	for _, tc := range []struct {
		ct   string // "" sends no Content-Type
		code int
		msg  string
	}{
		{"text/plain", 415, `Content-Type "text/plain" is not accepted: send the request as application/json`},
		{"text/plain;charset=UTF-8", 415, "is not accepted"},
		{"application/x-www-form-urlencoded", 415, "is not accepted"},
		{"multipart/form-data; boundary=x", 415, "is not accepted"},
		{"", 415, "Content-Type is missing"},
		{"application/jsonx", 415, "is not accepted"},
		{"application/json; charset=latin1", 415, `charset "latin1" is not accepted`},
		{"application/json;;", 415, "is not accepted"},
		{"application/json", 200, ""},
		{"application/json; charset=utf-8", 200, ""},
		{"Application/JSON;charset=UTF-8", 200, ""},
	} {
		hdr := map[string]string{"Origin": "https://evil.example"}
		if tc.ct != "" {
			hdr["Content-Type"] = tc.ct
		}
		code, h, m := send(t, http.MethodPost, e.httpURL+"/v1/auth/RecordFailedLogin", body, hdr)
		if code != tc.code {
			t.Errorf("POST with Content-Type %q = %d %v; want %d", tc.ct, code, m, tc.code)
		}
		if code == 200 {
			counted++
		} else if msg, _ := m["message"].(string); !strings.Contains(msg, tc.msg) || m["code"] != "InvalidArgument" ||
			h.Get("Content-Type") != "application/json" {
			t.Errorf("POST with Content-Type %q: body %v (%s); want a JSON error containing %q", tc.ct, m, h.Get("Content-Type"), tc.msg)
		}
		if got := failedLogins(t, e, id); got != counted {
			t.Fatalf("after POST with Content-Type %q the user has %d failed logins; want %d", tc.ct, got, counted)
		}
	}
}

// TestGatewayNoCORS: the gateway answers no CORS: a preflight is not
// granted and no response carries an Access-Control-* header, so a page of
// another origin can neither send the JSON POST nor read an answer.
func TestGatewayNoCORS(t *testing.T) {
	e := newEnv(t, nil, nil)
	id := e.user(t, "c@example.com", "c", "users:read")
	origin := map[string]string{"Origin": "https://evil.example"}
	preflight := map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST",
		"Access-Control-Request-Headers": "content-type"}
	for _, tc := range []struct {
		method, path string
		hdr          map[string]string
		ok           bool // 2xx expected
	}{
		{http.MethodOptions, "/v1/auth/RecordFailedLogin", preflight, false},
		{http.MethodOptions, "/v1/auth/VerifyToken", preflight, false},
		{http.MethodOptions, "/v1/users", preflight, false},
		{http.MethodOptions, "/v1/users/" + id, preflight, false},
		{http.MethodGet, "/v1/users/" + id, origin, true},
		{http.MethodGet, "/v1/users", origin, true},
		{http.MethodPost, "/v1/auth/CheckPermission", map[string]string{"Origin": "https://evil.example", "Content-Type": "application/json"}, true},
	} {
		body := ""
		if tc.method == http.MethodPost {
			body = `{"user_id":"` + id + `","permission":"users:read"}`
		}
		code, h, _ := send(t, tc.method, e.httpURL+tc.path, body, tc.hdr)
		if (code/100 == 2) != tc.ok {
			t.Errorf("%s %s = %d; want 2xx: %v", tc.method, tc.path, code, tc.ok)
		}
		for k := range h {
			if strings.HasPrefix(strings.ToLower(k), "access-control-") {
				t.Errorf("%s %s answered %s: %s", tc.method, tc.path, k, h.Get(k))
			}
		}
	}
}

// TestGatewayHostAllowList: with HTTP_ALLOWED_HOSTS set, /v1 answers only
// the listed host names (any port, any case) and 421 for another Host, as a
// DNS-rebound page would send; the probes and /metrics answer any Host,
// since kubelet and Prometheus use the pod IP.
func TestGatewayHostAllowList(t *testing.T) {
	e := newEnv(t, nil, map[string]string{"HTTP_ALLOWED_HOSTS": "auth.example.com,nova-auth,[::1]"})
	open := newEnv(t, nil, nil)
	id := e.user(t, "r@example.com", "r")
	for _, tc := range []struct {
		method, path, host string
		code               int // with the allow-list
	}{
		{http.MethodGet, "/v1/users", "auth.example.com", 200},
		{http.MethodGet, "/v1/users", "AUTH.example.com:8080", 200},
		{http.MethodGet, "/v1/users", "auth.example.com.", 200},
		{http.MethodGet, "/v1/users", "nova-auth:8080", 200},
		{http.MethodGet, "/v1/users", "[::1]:8080", 200},
		{http.MethodGet, "/v1/users", "rebind.evil.example", 421},
		{http.MethodGet, "/v1/users", "rebind.evil.example:8080", 421},
		{http.MethodGet, "/v1/users", "auth.example.com.evil.example", 421},
		{http.MethodGet, "/v1/users", "10.0.0.7:8080", 421},
		{http.MethodGet, "/v1/users/" + id, "evil.example", 421},
		{http.MethodGet, "/v1/users/" + id + "/permissions", "evil.example", 421},
		{http.MethodPost, "/v1/auth/RecordFailedLogin", "evil.example", 421},
		{http.MethodPost, "/v1/auth/RecordFailedLogin", "auth.example.com", 200},
		{http.MethodGet, "/health", "10.0.0.7:8080", 200},
		{http.MethodGet, "/readiness", "10.0.0.7:8080", 200},
		{http.MethodGet, "/metrics", "10.0.0.7:8080", 200},
	} {
		body := ""
		hdr := map[string]string{"Host": tc.host}
		if tc.method == http.MethodPost {
			body, hdr["Content-Type"] = `{"user_id":"`+id+`"}`, "application/json"
		}
		code, _, m := send(t, tc.method, e.httpURL+tc.path, body, hdr)
		if code != tc.code {
			t.Errorf("%s %s Host %q = %d %v; want %d", tc.method, tc.path, tc.host, code, m, tc.code)
		}
		if code == 421 {
			if msg, _ := m["message"].(string); !strings.Contains(msg, "HTTP_ALLOWED_HOSTS") {
				t.Errorf("%s %s Host %q: message %q does not name HTTP_ALLOWED_HOSTS", tc.method, tc.path, tc.host, msg)
			}
		}
		// Without the allow-list every Host is answered.
		path := strings.Replace(tc.path, id, unknownID, 1)
		if tc.method == http.MethodGet {
			if code, _, m := send(t, tc.method, open.httpURL+path, "", hdr); code == 421 {
				t.Errorf("no HTTP_ALLOWED_HOSTS: %s %s Host %q = %d %v", tc.method, path, tc.host, code, m)
			}
		}
	}
	if got := failedLogins(t, e, id); got != 1 {
		t.Errorf("failed logins = %d; want 1 (only the request to an allowed host)", got)
	}
}
