package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/nova-auth/nova-auth/internal/testenv"
	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

const (
	loginID = "spiffe://nova/ns/login/sa/login"
	adminID = "spiffe://nova/ns/admin/sa/console"
)

// pki is the certificates of a TLS test, made in the test: a CA, a server
// certificate for 127.0.0.1, two clients with different SPIFFE IDs, an
// expired client and a client of another CA.
type pki struct {
	ca, other                *testenv.CA
	dir                      string
	serverCert, serverKey    string // files
	caFile                   string
	login, admin             tls.Certificate
	expired, foreign, noSANs tls.Certificate
}

func newPKI(t testing.TB) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir()}
	var err error
	if p.ca, err = testenv.NewCA("nova test CA"); err != nil {
		t.Fatal(err)
	}
	if p.other, err = testenv.NewCA("another CA"); err != nil {
		t.Fatal(err)
	}
	crt, key, _, err := p.ca.Issue(testenv.CertOptions{CN: "auth", DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	p.serverCert, p.serverKey, p.caFile = p.write(t, "server.crt", crt), p.write(t, "server.key", key), p.write(t, "ca.crt", p.ca.PEM)
	p.login = pair(t, p.ca, testenv.CertOptions{URIs: []string{loginID}})
	p.admin = pair(t, p.ca, testenv.CertOptions{URIs: []string{adminID}})
	p.expired = pair(t, p.ca, testenv.CertOptions{URIs: []string{adminID},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	p.foreign = pair(t, p.other, testenv.CertOptions{URIs: []string{adminID}})
	p.noSANs = pair(t, p.ca, testenv.CertOptions{CN: "batch-job"})
	return p
}

func (p *pki) write(t testing.TB, name string, b []byte) string {
	t.Helper()
	f := filepath.Join(p.dir, name)
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func pair(t testing.TB, ca *testenv.CA, o testenv.CertOptions) tls.Certificate {
	t.Helper()
	crt, key, _, err := ca.Issue(o)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.X509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// clientTLS trusts the test CA and presents cert (none when nil).
func (p *pki) clientTLS(cert *tls.Certificate) *tls.Config {
	roots := x509.NewCertPool()
	roots.AddCert(p.ca.Cert)
	c := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	if cert != nil {
		// Sent whatever CAs the server asks for: left to itself, crypto/tls
		// would keep back a certificate of another CA and so never test
		// the server's verification of one.
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return c
}

// vars are the service's TLS settings; mutual adds the client CA.
func (p *pki) vars(mutual bool, extra map[string]string) map[string]string {
	v := map[string]string{"TLS_CERT_FILE": p.serverCert, "TLS_KEY_FILE": p.serverKey}
	if mutual {
		v["TLS_CLIENT_CA_FILE"] = p.caFile
	}
	for k, x := range extra {
		v[k] = x
	}
	return v
}

// newTLSEnv starts the service with vars and talks to it over TLS as
// client (no certificate when nil).
func newTLSEnv(t testing.TB, vars map[string]string, tc *tls.Config) *env {
	t.Helper()
	url, err := pg.CreateDatabase(context.Background(), fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	e := start(t, url, vars, true)
	e.conn.Close() // the harness's plaintext connection: unusable here
	e.conn = dialTLS(t, e, tc)
	e.client = authpb.NewAuthServiceClient(e.conn)
	e.health = healthpb.NewHealthClient(e.conn)
	e.httpURL = strings.Replace(e.httpURL, "http://", "https://", 1)
	e.waitServing(t, true)
	return e
}

func grpcAddr(e *env) string { return e.conn.Target() }

func dialTLS(t testing.TB, e *env, tc *tls.Config) *grpc.ClientConn {
	t.Helper()
	target := e.conn.Target()
	cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func httpsClient(tc *tls.Config) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
}

// check is one health check on a fresh connection with tc.
func check(t testing.TB, e *env, tc *tls.Config) error {
	t.Helper()
	cc, err := grpc.NewClient(grpcAddr(e), grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

// TestMutualTLSHandshake: with TLS_CLIENT_CA_FILE, only clients with a
// valid certificate from that CA get through. On gRPC a client without a
// certificate is refused at the handshake; on HTTP it gets /health and
// /readiness only (kubelet probes carry no certificate) and 401 elsewhere.
func TestMutualTLSHandshake(t *testing.T) {
	p := newPKI(t)
	e := newTLSEnv(t, p.vars(true, nil), p.clientTLS(&p.admin))
	const refused = -1
	for _, tc := range []struct {
		name            string
		cert            *tls.Certificate
		grpcOK          bool
		health, gateway int // HTTP status, or refused at the handshake
	}{
		{"no client certificate", nil, false, http.StatusOK, http.StatusUnauthorized},
		{"certificate from another CA", &p.foreign, false, refused, refused},
		{"expired certificate", &p.expired, false, refused, refused},
		{"valid certificate", &p.login, true, http.StatusOK, http.StatusOK},
		{"valid certificate, CN only", &p.noSANs, true, http.StatusOK, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := check(t, e, p.clientTLS(tc.cert))
			if tc.grpcOK != (err == nil) {
				t.Errorf("gRPC: ok=%v, got %v", tc.grpcOK, err)
			}
			if err != nil && status.Code(err) != codes.Unavailable {
				t.Errorf("gRPC: refused at the handshake should be UNAVAILABLE, got %v", err)
			}
			hc := httpsClient(p.clientTLS(tc.cert))
			for path, want := range map[string]int{"/health": tc.health, "/readiness": tc.health, "/v1/users?limit=1": tc.gateway, "/metrics": tc.gateway} {
				got := refused
				resp, err := hc.Get(e.httpURL + path)
				if err == nil {
					got = resp.StatusCode
					resp.Body.Close()
				}
				if got != want {
					t.Errorf("HTTP %s: got %d (%v), want %d (-1: refused at the handshake)", path, got, err, want)
				}
			}
		})
	}
	t.Run("plaintext HTTP client", func(t *testing.T) {
		// net/http answers plaintext on a TLS port with a 400 of its own;
		// the request never reaches a handler.
		resp, err := http.Get(strings.Replace(e.httpURL, "https://", "http://", 1) + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Error("plaintext HTTP got 200 from a TLS port")
			}
		}
	})
}

// TestTLSWithoutClientCA: TLS_CERT_FILE alone encrypts but asks no client
// certificate; plaintext clients are refused.
func TestTLSWithoutClientCA(t *testing.T) {
	p := newPKI(t)
	e := newTLSEnv(t, p.vars(false, nil), p.clientTLS(nil))
	if err := check(t, e, p.clientTLS(nil)); err != nil {
		t.Fatalf("TLS client without certificate: %v", err)
	}
	cc, err := grpc.NewClient(grpcAddr(e), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}); err == nil {
		t.Fatal("a plaintext gRPC client was served on the TLS port")
	}
	resp, err := httpsClient(p.clientTLS(nil)).Get(e.httpURL + "/health")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTPS /health: %v %v", resp, err)
	}
	resp.Body.Close()
}

// TestCallerPolicy: per-method policy on the verified identity, the same on
// gRPC and the HTTP gateway; refusals are PERMISSION_DENIED, counted by
// method, and no identity becomes a metrics label.
func TestCallerPolicy(t *testing.T) {
	p := newPKI(t)
	policy := "RecordFailedLogin=" + loginID + "; ListUsers=" + adminID + ", batch-job; VerifyToken=*"
	e := newTLSEnv(t, p.vars(true, map[string]string{"CALLER_POLICY": policy}), p.clientTLS(&p.admin))
	uid := e.user(t, "kate@example.com", "kate")
	tok, _, err := e.signer.Issue(uid, "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]func(authpb.AuthServiceClient, context.Context) error{
		"RecordFailedLogin": func(c authpb.AuthServiceClient, ctx context.Context) error {
			_, err := c.RecordFailedLogin(ctx, &authpb.RecordFailedLoginRequest{UserId: uid})
			return err
		},
		"ListUsers": func(c authpb.AuthServiceClient, ctx context.Context) error {
			_, err := c.ListUsers(ctx, &authpb.ListUsersRequest{Limit: 1})
			return err
		},
		"VerifyToken": func(c authpb.AuthServiceClient, ctx context.Context) error {
			_, err := c.VerifyToken(ctx, &authpb.VerifyTokenRequest{Token: tok})
			return err
		},
		"GetUser": func(c authpb.AuthServiceClient, ctx context.Context) error {
			_, err := c.GetUser(ctx, &authpb.GetUserRequest{UserId: uid})
			return err
		},
	}
	bodies := map[string]string{
		"RecordFailedLogin": `{"user_id":"` + uid + `"}`, "ListUsers": `{"limit":1}`,
		"VerifyToken": `{"token":"` + tok + `"}`, "GetUser": `{"user_id":"` + uid + `"}`,
	}
	clientsByName := map[string]*tls.Certificate{"login": &p.login, "admin": &p.admin, "cn": &p.noSANs}
	for _, tc := range []struct {
		caller, method string
		want           codes.Code
	}{
		{"login", "RecordFailedLogin", codes.OK},
		{"admin", "RecordFailedLogin", codes.PermissionDenied},
		{"cn", "RecordFailedLogin", codes.PermissionDenied},
		{"admin", "ListUsers", codes.OK},
		{"cn", "ListUsers", codes.OK},
		{"login", "ListUsers", codes.PermissionDenied},
		{"login", "VerifyToken", codes.OK},
		{"admin", "VerifyToken", codes.OK},
		{"cn", "VerifyToken", codes.OK},
		// No rule and no * rule: nobody.
		{"admin", "GetUser", codes.PermissionDenied},
		{"login", "GetUser", codes.PermissionDenied},
	} {
		t.Run(tc.caller+"/"+tc.method, func(t *testing.T) {
			tlsc := p.clientTLS(clientsByName[tc.caller])
			cc := dialTLS(t, e, tlsc)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := calls[tc.method](authpb.NewAuthServiceClient(cc), ctx)
			if got := status.Code(err); got != tc.want {
				t.Fatalf("gRPC: got %v (%v), want %v", got, err, tc.want)
			}
			if tc.want == codes.PermissionDenied && !strings.Contains(status.Convert(err).Message(), tc.method) {
				t.Errorf("message %q does not name the method", status.Convert(err).Message())
			}
			// The gateway runs the same interceptors on the same identity.
			resp, err := httpsClient(tlsc).Post(e.httpURL+"/v1/auth/"+tc.method, "application/json", strings.NewReader(bodies[tc.method]))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			wantHTTP := http.StatusOK
			if tc.want == codes.PermissionDenied {
				wantHTTP = http.StatusForbidden
			}
			if resp.StatusCode != wantHTTP {
				t.Fatalf("HTTP: %d %s, want %d", resp.StatusCode, b, wantHTTP)
			}
		})
	}
	resp, err := httpsClient(p.clientTLS(&p.admin)).Get(e.httpURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := string(b)
	for _, want := range []string{
		`grpc_server_handled_total{grpc_code="PermissionDenied",grpc_method="ListUsers",grpc_service="nova.auth_service.AuthService"} 2`,
		`grpc_server_handled_total{grpc_code="PermissionDenied",grpc_method="RecordFailedLogin",grpc_service="nova.auth_service.AuthService"} 4`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(m, "spiffe://") || strings.Contains(m, "batch-job") {
		t.Error("a caller identity appears in the metrics")
	}
}

// TestTLSRotation: the certificate and client CA are replaced as a
// Kubernetes Secret volume does (a new directory, then the ..data symlink
// swapped) while calls run; new connections get the new certificate and CA,
// running calls do not fail, and nothing restarts.
func TestTLSRotation(t *testing.T) {
	p := newPKI(t)
	vol := t.TempDir()
	crt1, key1, serial1, err := p.ca.Issue(testenv.CertOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	secret(t, vol, "..v1", map[string][]byte{"tls.crt": crt1, "tls.key": key1, "ca.crt": p.ca.PEM})
	e := newTLSEnv(t, map[string]string{
		"TLS_CERT_FILE": filepath.Join(vol, "tls.crt"), "TLS_KEY_FILE": filepath.Join(vol, "tls.key"),
		"TLS_CLIENT_CA_FILE": filepath.Join(vol, "ca.crt"), "TLS_RELOAD_INTERVAL": "100ms",
	}, p.clientTLS(&p.admin))
	tok, _, err := e.signer.Issue(e.user(t, "kate@example.com", "kate"), "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	// Calls run on the connection made before the rotation, all along.
	var wg sync.WaitGroup
	var calls, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := e.client.VerifyToken(ctx, &authpb.VerifyTokenRequest{Token: tok})
				cancel()
				calls.Add(1)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}

	served := func(cert *tls.Certificate) (*big.Int, error) {
		var got *big.Int
		tc := p.clientTLS(cert)
		tc.RootCAs.AddCert(p.other.Cert)
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			got = cs.PeerCertificates[0].SerialNumber
			return nil
		}
		err := check(t, e, tc)
		return got, err
	}
	if s, err := served(&p.admin); err != nil || s.Cmp(serial1) != 0 {
		t.Fatalf("before rotation: serial %v, %v; want %v", s, err, serial1)
	}

	// The new certificate is from the other CA, and the client CA moves to
	// it too: a client certificate of the old CA no longer gets in.
	crt2, key2, serial2, err := p.other.Issue(testenv.CertOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // calls running
	secret(t, vol, "..v2", map[string][]byte{"tls.crt": crt2, "tls.key": key2, "ca.crt": p.other.PEM})

	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := served(&p.foreign)
		if err == nil && s.Cmp(serial2) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after rotation: serial %v, %v; want %v", s, err, serial2)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := served(&p.admin); err == nil {
		t.Error("a client certificate of the old CA still gets in after the client CA was rotated")
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() > 0 || calls.Load() == 0 {
		t.Fatalf("%d of %d calls on the existing connection failed during rotation; first: %v", failed.Load(), calls.Load(), firstErr.Load())
	}
}

// secret lays files out as the kubelet does for a Secret volume: the data
// in a timestamped directory, `..data` a symlink to it (swapped atomically
// by rename), and each file a symlink through `..data`.
func secret(t testing.TB, vol, version string, files map[string][]byte) {
	t.Helper()
	if err := os.Mkdir(filepath.Join(vol, version), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(vol, version, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(vol, name)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	tmp := filepath.Join(vol, "..data_tmp")
	if err := os.Symlink(version, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(vol, "..data")); err != nil {
		t.Fatal(err)
	}
}
