package suite

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gruntwork-io/terratest/modules/k8s"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nova-auth/nova-auth/clients"
	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

// portForward opens a port-forward on loopback to a Ready service pod's
// port and returns 127.0.0.1:PORT. (terratest's Service tunnel cannot map
// the chart's named targetPorts, so it goes to a pod of the Service.)
func portForward(t *testing.T, e *env, port int) string {
	t.Helper()
	pods := readyServerPods(t, e)
	if len(pods) == 0 {
		t.Fatal("no Ready service pod to port-forward to")
	}
	tun := k8s.NewTunnel(k8s.NewKubectlOptions("", e.c.Kubeconfig, ns), k8s.ResourceTypePod, pods[0].Name, 0, port)
	if err := tun.ForwardPortE(t); err != nil {
		t.Fatalf("port-forward to %s:%d: %v", pods[0].Name, port, err)
	}
	t.Cleanup(tun.Close)
	return strings.Replace(tun.Endpoint(), "localhost", "127.0.0.1", 1)
}

// hostEnv is the environment for auth-service commands run on the host:
// the database as the host reaches it and the signing key from the key
// Secret, as a token issuer takes it (no pod of the release has it).
func hostEnv(t *testing.T, e *env) []string {
	t.Helper()
	return hostEnvFrom(t, e, keySecret)
}

// hostEnvFrom is hostEnv with the private key of Secret secret.
func hostEnvFrom(t *testing.T, e *env, secret string) []string {
	t.Helper()
	s, err := e.c.Client.CoreV1().Secrets(ns).Get(context.Background(), secret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Data["JWT_PRIVATE_KEY"]) == 0 {
		t.Fatalf("Secret %s/%s holds no JWT_PRIVATE_KEY", ns, secret)
	}
	return []string{"DATABASE_URL=" + e.c.HostDatabaseURL, "JWT_PRIVATE_KEY=" + string(s.Data["JWT_PRIVATE_KEY"]), "LOG_LEVEL=warn"}
}

// createUser makes a user with the service's own CLI and returns its id.
func createUser(t *testing.T, e *env, env []string, email string, perms ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	user := strings.ReplaceAll(strings.Split(email, "@")[0], "-", "_")
	out, err := run(ctx, env, "correct horse battery staple\n", e.bin, "users", "create", "--email", email, "--username", user, "--password-stdin")
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(out)
	for _, p := range perms {
		if _, err := run(ctx, env, "", e.bin, "permissions", "grant", "--user", id, "--permission", p); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

func issueToken(t *testing.T, e *env, env []string, id string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := run(ctx, env, "", e.bin, "tokens", "issue", "--user", id, "--ttl", "1h")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// authClient is the public client library's pool, pointed at a port-forward.
func authClient(t *testing.T, addr string) authpb.AuthServiceClient {
	t.Helper()
	cfg := clients.DefaultConfig()
	cfg.Targets = map[string]string{"auth": addr}
	cfg.Registerer = prometheus.NewRegistry()
	pool, err := clients.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pool.WaitReady(ctx, "auth"); err != nil {
		t.Fatalf("client pool to %s not ready: %v", addr, err)
	}
	return pool.Auth()
}

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if status.Code(err) != want {
		t.Errorf("%s: %v, want %s", what, err, want)
	}
}

// testRPCs: every RPC through a port-forward answers as in the service's
// own tests, and so do health and the HTTP side.
func testRPCs(t *testing.T, e *env) {
	env := hostEnv(t, e)
	tag := uuid.NewString()[:8]
	aliceEmail := "e2e-alice-" + tag + "@nova.test"
	alice := createUser(t, e, env, aliceEmail, "orders:read", "users:read")
	bob := createUser(t, e, env, "e2e-bob-"+tag+"@nova.test")
	carol := createUser(t, e, env, "e2e-carol-"+tag+"@nova.test")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := run(ctx, env, "", e.bin, "users", "delete", "--user", carol); err != nil {
		t.Fatal(err)
	}
	token := issueToken(t, e, env, alice)
	missing := uuid.NewString()

	addr := portForward(t, e, 9080)
	c := authClient(t, addr)

	// Health, as the probes and clients see it.
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	h, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: authpb.AuthService_ServiceDesc.ServiceName})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health: %v %v", h, err)
	}

	// GetUser
	u, err := c.GetUser(ctx, &authpb.GetUserRequest{UserId: alice})
	if err != nil || u.GetUser().GetEmail() != aliceEmail || !u.GetUser().GetIsActive() {
		t.Errorf("GetUser(alice): %v %v", u, err)
	}
	_, err = c.GetUser(ctx, &authpb.GetUserRequest{UserId: missing})
	wantCode(t, "GetUser(missing)", err, codes.NotFound)
	_, err = c.GetUser(ctx, &authpb.GetUserRequest{UserId: carol})
	wantCode(t, "GetUser(soft-deleted)", err, codes.NotFound)
	_, err = c.GetUser(ctx, &authpb.GetUserRequest{UserId: "not-a-uuid"})
	wantCode(t, "GetUser(not a UUID)", err, codes.InvalidArgument)

	// GetUsersByIds: order of first appearance, unknown left out, duplicates collapse.
	us, err := c.GetUsersByIds(ctx, &authpb.GetUsersByIdsRequest{UserIds: []string{bob, missing, alice, bob, carol}})
	if err != nil || len(us.GetUsers()) != 2 || us.GetUsers()[0].GetId() != bob || us.GetUsers()[1].GetId() != alice {
		t.Errorf("GetUsersByIds: %v %v", us, err)
	}
	_, err = c.GetUsersByIds(ctx, &authpb.GetUsersByIdsRequest{})
	wantCode(t, "GetUsersByIds(none)", err, codes.InvalidArgument)
	many := make([]string, 101)
	for i := range many {
		many[i] = uuid.NewString()
	}
	_, err = c.GetUsersByIds(ctx, &authpb.GetUsersByIdsRequest{UserIds: many})
	wantCode(t, "GetUsersByIds(101)", err, codes.InvalidArgument)

	// VerifyToken: the token `auth-service tokens issue` signed on the host
	// with the key the chart generated.
	for _, tok := range []string{token, "Bearer " + token} {
		v, err := c.VerifyToken(ctx, &authpb.VerifyTokenRequest{Token: tok})
		if err != nil || !v.GetValid() || v.GetUserId() != alice || v.GetEmail() != aliceEmail || v.GetExpiresAt() == nil {
			t.Errorf("VerifyToken(issued): %v %v", v, err)
		}
	}
	parts := strings.Split(token, ".")
	sig := []byte(parts[2])
	sig[3] ^= 1
	v, err := c.VerifyToken(ctx, &authpb.VerifyTokenRequest{Token: parts[0] + "." + parts[1] + "." + string(sig)})
	if err != nil || v.GetValid() || v.GetError() == "" {
		t.Errorf("VerifyToken(tampered): %v %v", v, err)
	}
	_, err = c.VerifyToken(ctx, &authpb.VerifyTokenRequest{})
	wantCode(t, "VerifyToken(empty)", err, codes.InvalidArgument)

	// CheckUserExists
	if r, err := c.CheckUserExists(ctx, &authpb.CheckUserExistsRequest{UserId: alice}); err != nil || !r.GetExists() {
		t.Errorf("CheckUserExists(alice): %v %v", r, err)
	}
	if r, err := c.CheckUserExists(ctx, &authpb.CheckUserExistsRequest{UserId: carol}); err != nil || r.GetExists() {
		t.Errorf("CheckUserExists(soft-deleted): %v %v", r, err)
	}
	_, err = c.CheckUserExists(ctx, &authpb.CheckUserExistsRequest{UserId: "x"})
	wantCode(t, "CheckUserExists(x)", err, codes.InvalidArgument)

	// GetUserByEmail: case-insensitive.
	if r, err := c.GetUserByEmail(ctx, &authpb.GetUserByEmailRequest{Email: strings.ToUpper(aliceEmail)}); err != nil || !r.GetFound() || r.GetUser().GetId() != alice {
		t.Errorf("GetUserByEmail(upper case): %v %v", r, err)
	}
	if r, err := c.GetUserByEmail(ctx, &authpb.GetUserByEmailRequest{Email: "nobody-" + tag + "@nova.test"}); err != nil || r.GetFound() {
		t.Errorf("GetUserByEmail(unknown): %v %v", r, err)
	}
	_, err = c.GetUserByEmail(ctx, &authpb.GetUserByEmailRequest{Email: "not an address"})
	wantCode(t, "GetUserByEmail(not an address)", err, codes.InvalidArgument)

	// ListUsers: newest first, carol (deleted) not counted.
	l, err := c.ListUsers(ctx, &authpb.ListUsersRequest{Limit: 100})
	if err != nil {
		t.Errorf("ListUsers: %v", err)
	} else {
		pos := map[string]int{}
		for i, x := range l.GetUsers() {
			pos[x.GetId()] = i + 1
		}
		if pos[alice] == 0 || pos[bob] == 0 || pos[carol] != 0 || pos[bob] > pos[alice] || l.GetTotalCount() < 2 {
			t.Errorf("ListUsers: alice at %d, bob at %d, carol at %d, total %d", pos[alice], pos[bob], pos[carol], l.GetTotalCount())
		}
	}
	_, err = c.ListUsers(ctx, &authpb.ListUsersRequest{Limit: 101})
	wantCode(t, "ListUsers(limit 101)", err, codes.InvalidArgument)
	_, err = c.ListUsers(ctx, &authpb.ListUsersRequest{Offset: -1})
	wantCode(t, "ListUsers(offset -1)", err, codes.InvalidArgument)

	// CheckPermission, GetUserPermissions
	if r, err := c.CheckPermission(ctx, &authpb.CheckPermissionRequest{UserId: alice, Permission: "orders:read"}); err != nil || !r.GetHasPermission() {
		t.Errorf("CheckPermission(held): %v %v", r, err)
	}
	if r, err := c.CheckPermission(ctx, &authpb.CheckPermissionRequest{UserId: alice, Permission: "orders:write"}); err != nil || r.GetHasPermission() {
		t.Errorf("CheckPermission(not held): %v %v", r, err)
	}
	_, err = c.CheckPermission(ctx, &authpb.CheckPermissionRequest{UserId: missing, Permission: "orders:read"})
	wantCode(t, "CheckPermission(missing user)", err, codes.NotFound)
	if r, err := c.GetUserPermissions(ctx, &authpb.GetUserPermissionsRequest{UserId: alice}); err != nil || strings.Join(r.GetPermissions(), ",") != "orders:read,users:read" {
		t.Errorf("GetUserPermissions(alice): %v %v", r, err)
	}
	_, err = c.GetUserPermissions(ctx, &authpb.GetUserPermissionsRequest{UserId: missing})
	wantCode(t, "GetUserPermissions(missing)", err, codes.NotFound)

	// RecordFailedLogin: the 5th failure (LOCKOUT_THRESHOLD) locks bob.
	for i := int32(1); i <= 5; i++ {
		r, err := c.RecordFailedLogin(ctx, &authpb.RecordFailedLoginRequest{UserId: bob})
		if err != nil || r.GetFailedAttempts() != i || r.GetLocked() != (i == 5) {
			t.Errorf("RecordFailedLogin #%d: %v %v", i, r, err)
		}
		if i == 5 && r.GetLockedUntil() == nil {
			t.Error("RecordFailedLogin #5: no locked_until")
		}
	}
	if u, err := c.GetUser(ctx, &authpb.GetUserRequest{UserId: bob}); err != nil || u.GetUser().GetLockedUntil() == nil || u.GetUser().GetFailedLoginAttempts() != 5 {
		t.Errorf("GetUser(bob) after the lock: %v %v", u, err)
	}
	_, err = c.RecordFailedLogin(ctx, &authpb.RecordFailedLoginRequest{UserId: missing})
	wantCode(t, "RecordFailedLogin(missing)", err, codes.NotFound)

	// The HTTP side through its own port-forward: readiness and the JSON gateway.
	haddr := portForward(t, e, 8080)
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + haddr + path)
		if err != nil {
			t.Errorf("GET %s: %v", path, err)
			return 0, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readiness"); code != 200 {
		t.Errorf("/readiness: %d %s", code, body)
	}
	if code, body := get("/v1/users/" + alice); code != 200 || !strings.Contains(body, aliceEmail) {
		t.Errorf("GET /v1/users/alice: %d %s", code, body)
	}
	if code, _ := get("/v1/users/" + missing); code != 404 {
		t.Errorf("GET /v1/users/missing: %d, want 404", code)
	}
	// /metrics is on the metrics port (METRICS_PORT, 9090) only, not on the REST port.
	if code, _ := get("/metrics"); code != 404 {
		t.Errorf("/metrics on 8080: %d, want 404", code)
	}
	maddr := portForward(t, e, 9090)
	if resp, err := http.Get("http://" + maddr + "/metrics"); err != nil {
		t.Errorf("GET :9090/metrics: %v", err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), "grpc_server_handled_total") {
			t.Errorf(":9090/metrics: %d", resp.StatusCode)
		}
	}
}

// testLoad: the load test (loadtest/) through a port-forward for a short
// fixed time with the spec's P95/P99 gates; its report is kept.
func testLoad(t *testing.T, e *env) {
	env := hostEnv(t, e)
	keyFile := filepath.Join(e.out, "jwt-private-key.pem")
	if err := os.WriteFile(keyFile, []byte(strings.TrimPrefix(env[1], "JWT_PRIVATE_KEY=")), 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(keyFile)
	addr := portForward(t, e, 9080)
	out := filepath.Join(e.out, "loadtest")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// The spec's latency gates; the rate is what a port-forward through the
	// API server and kubelet carries on a small machine.
	args := []string{"--addr", addr, "--seed", "2000", "--database-url", e.c.HostDatabaseURL, "--jwt-private-key-file", keyFile,
		"--scenario", "mix", "--rps", "300", "--concurrency", "32", "--duration", "15s", "--warmup-time", "3s", "--warmup", "0",
		"--p95", "200ms", "--p99", "500ms", "--max-error-rate", "0.001", "--min-rps", "250", "--progress", "5s", "--out", out}
	stdout, err := run(ctx, nil, "", e.loadtest, args...)
	os.WriteFile(filepath.Join(out, "stdout.txt"), []byte(stdout), 0o644) //nolint:errcheck
	t.Logf("load test report: %s\n%s", out, stdout)
	if err != nil {
		t.Fatalf("load test gates: %v", redact(err.Error(), e.c.HostDatabaseURL))
	}
	var sum struct {
		Failures []string `json:"failures"`
	}
	b, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil || json.Unmarshal(b, &sum) != nil || len(sum.Failures) > 0 {
		t.Errorf("summary.json: %v %s", err, sum.Failures)
	}
}

// loadDataset reads the data set the load test seeded (ids, emails, tokens).
func loadDataset(t *testing.T, e *env, n int) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.out, "loadtest", "data.json"))
	if err != nil {
		t.Fatalf("the load test's data set (the loadtest step seeds it): %v", err)
	}
	var d map[string]any
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if users, ok := d["users"].([]any); ok && len(users) > n {
		d["users"] = users[:n]
	}
	out, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// redact hides a secret (a database URL with its password) in messages.
func redact(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "****")
}
