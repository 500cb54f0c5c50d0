package app

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/nova-auth/nova-auth/internal/testenv"
	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHTTPEndpoints(t *testing.T) {
	e := newEnv(t, nil, nil)
	id := e.user(t, "h@example.com", "h", "users:read")
	if _, err := e.client.GetUser(context.Background(), &authpb.GetUserRequest{UserId: id}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		code int
		has  string
	}{
		{"/health", 200, `"ok"`},
		{"/readiness", 200, `"ready"`},
		{"/metrics", 200, `grpc_server_handled_total{grpc_code="OK",grpc_method="GetUser",grpc_service="nova.auth_service.AuthService"} 1`},
		{"/metrics", 200, "nova_auth_db_pool_max_connections 20"},
		{"/v1/users/" + id, 200, `"email":"h@example.com"`},
		{"/v1/users/" + id + "/permissions", 200, `"permissions":["users:read"]`},
		{"/v1/users/" + unknownID, 404, `"code":"NotFound"`},
		{"/v1/users/nope", 400, `is not a UUID`},
		{"/v1/users?limit=1", 200, `"total_count":"1"`},
		{"/v1/users?limit=500", 400, "limit 500 is out of range"},
		{"/v1/users?limit=abc", 400, "InvalidArgument"},
	} {
		code, body := httpGet(t, e.httpURL+tc.path)
		if code != tc.code || !strings.Contains(body, tc.has) {
			t.Errorf("GET %s = %d %.300s; want %d containing %q", tc.path, code, body, tc.code, tc.has)
		}
	}
	post := func(method, body string) (int, map[string]any) {
		resp, err := http.Post(e.httpURL+"/v1/auth/"+method, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m) //nolint:errcheck
		return resp.StatusCode, m
	}
	tok, _, _ := e.signer.Issue(id, "h@example.com", 60_000_000_000)
	if code, m := post("VerifyToken", `{"token":"`+tok+`"}`); code != 200 || m["valid"] != true || m["user_id"] != id {
		t.Errorf("POST VerifyToken = %d %v", code, m)
	}
	if code, m := post("CheckPermission", `{"userId":"`+id+`","permission":"users:read"}`); code != 200 || m["has_permission"] != true {
		t.Errorf("POST CheckPermission (camelCase body) = %d %v", code, m)
	}
	if code, m := post("GetUsersByIds", `{}`); code != 400 || m["code"] != codes.InvalidArgument.String() {
		t.Errorf("POST GetUsersByIds {} = %d %v", code, m)
	}
	if code, _ := post("Nope", `{}`); code != 404 {
		t.Errorf("POST unknown method = %d", code)
	}
	if code, m := post("GetUser", `{"user_id": 5}`); code != 400 {
		t.Errorf("POST wrong JSON type = %d %v", code, m)
	}
}

// TestPprofOnlyWhenAsked: profiles are served on PPROF_ADDR, never on the
// public HTTP port.
func TestPprofOnlyWhenAsked(t *testing.T) {
	port, err := testenv.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	e := newEnv(t, nil, map[string]string{"PPROF_ADDR": addr})
	if code, body := httpGet(t, "http://"+addr+"/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Fatalf("pprof index = %d", code)
	}
	if code, _ := httpGet(t, e.httpURL+"/debug/pprof/"); code != 404 {
		t.Fatalf("public port serves pprof: %d", code)
	}
}

// TestMetricsOnOwnPort: with METRICS_PORT set, /metrics is served there and
// nowhere else, so exposing the HTTP port (REST) outside the cluster does not
// expose the metrics; the metrics port serves nothing but /metrics.
func TestMetricsOnOwnPort(t *testing.T) {
	port, err := testenv.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	metricsURL := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	e := newEnv(t, nil, map[string]string{"BIND_HOST": "127.0.0.1", "METRICS_PORT": strconv.Itoa(port)})
	id := e.user(t, "m@example.com", "m")
	if _, err := e.client.GetUser(context.Background(), &authpb.GetUserRequest{UserId: id}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		url  string
		code int
		has  string
	}{
		{metricsURL + "/metrics", 200, `grpc_server_handled_total{grpc_code="OK",grpc_method="GetUser",grpc_service="nova.auth_service.AuthService"} 1`},
		{metricsURL + "/metrics", 200, "nova_auth_db_pool_max_connections 20"},
		{metricsURL + "/v1/users/" + id, 404, ""},
		{metricsURL + "/readiness", 404, ""},
		{e.httpURL + "/metrics", 404, ""},
		{e.httpURL + "/v1/users/" + id, 200, `"email":"m@example.com"`},
		{e.httpURL + "/readiness", 200, `"ready"`},
	} {
		code, body := httpGet(t, tc.url)
		if code != tc.code || !strings.Contains(body, tc.has) {
			t.Errorf("GET %s = %d %.300s; want %d containing %q", tc.url, code, body, tc.code, tc.has)
		}
	}
}
