package clients_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/nova-auth/nova-auth/clients"
	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

// flaky is a real AuthService server that fails its first failFirst
// attempts (any method) with code, and counts every attempt.
type flaky struct {
	authpb.UnimplementedAuthServiceServer
	failFirst int32
	code      codes.Code
	attempts  atomic.Int32
}

var _ authpb.AuthServiceServer = (*flaky)(nil)

func (f *flaky) fail() error {
	if f.attempts.Add(1) <= f.failFirst {
		return status.Error(f.code, "injected failure")
	}
	return nil
}

func (f *flaky) GetUser(_ context.Context, req *authpb.GetUserRequest) (*authpb.GetUserResponse, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	return &authpb.GetUserResponse{User: &authpb.User{Id: req.GetUserId()}}, nil
}

func (f *flaky) RecordFailedLogin(context.Context, *authpb.RecordFailedLoginRequest) (*authpb.RecordFailedLoginResponse, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	return &authpb.RecordFailedLoginResponse{FailedAttempts: 1}, nil
}

// serve runs srv on 127.0.0.1 with grpc.health.v1 SERVING and returns its
// address.
func serve(t *testing.T, srv authpb.AuthServiceServer, opts ...grpc.ServerOption) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(opts...)
	authpb.RegisterAuthServiceServer(s, srv)
	hs := health.NewServer()
	hs.SetServingStatus(authpb.AuthService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, hs)
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

func TestRetries(t *testing.T) {
	const (
		getUser = "GetUser"
		record  = "RecordFailedLogin"
	)
	for _, tc := range []struct {
		name         string
		method       string
		code         codes.Code
		failFirst    int32
		maxAttempts  int
		noRetry      string
		wantCode     codes.Code
		wantAttempts int32
	}{
		{"GetUser Unavailable once is retried", getUser, codes.Unavailable, 1, 3, "", codes.OK, 2},
		{"GetUser ResourceExhausted once is retried", getUser, codes.ResourceExhausted, 1, 3, "", codes.OK, 2},
		{"GetUser gives up after max attempts", getUser, codes.Unavailable, 100, 3, "", codes.Unavailable, 3},
		{"max attempts 1 means no retry", getUser, codes.Unavailable, 1, 1, "", codes.Unavailable, 1},
		{"Internal is not retried", getUser, codes.Internal, 1, 3, "", codes.Internal, 1},
		{"NotFound is not retried", getUser, codes.NotFound, 1, 3, "", codes.NotFound, 1},
		{"RecordFailedLogin Unavailable is attempted once", record, codes.Unavailable, 1, 3, "", codes.Unavailable, 1},
		{"RecordFailedLogin ResourceExhausted is attempted once", record, codes.ResourceExhausted, 1, 5, "", codes.ResourceExhausted, 1},
		{"RecordFailedLogin succeeds once", record, codes.Unavailable, 0, 3, "", codes.OK, 1},
		{"a method in NoRetryMethods is attempted once", getUser, codes.Unavailable, 1, 3, authpb.AuthService_GetUser_FullMethodName, codes.Unavailable, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := &flaky{failFirst: tc.failFirst, code: tc.code}
			p, _ := newPool(t, []string{serve(t, srv)}, func(c *clients.Config) {
				c.MaxAttempts = tc.maxAttempts
				c.InitialBackoff = 10 * time.Millisecond
				c.MaxBackoff = 50 * time.Millisecond
				if tc.noRetry != "" {
					c.NoRetryMethods = append(c.NoRetryMethods, tc.noRetry)
				}
			})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var err error
			if tc.method == getUser {
				_, err = p.Auth().GetUser(ctx, &authpb.GetUserRequest{UserId: "u1"})
			} else {
				_, err = p.Auth().RecordFailedLogin(ctx, &authpb.RecordFailedLoginRequest{UserId: "u1"})
			}
			if status.Code(err) != tc.wantCode {
				t.Errorf("%s = %v, want code %v", tc.method, err, tc.wantCode)
			}
			if got := srv.attempts.Load(); got != tc.wantAttempts {
				t.Errorf("server saw %d attempts, want %d", got, tc.wantAttempts)
			}
		})
	}
}

// Only errors that mean "the service is unwell" count towards opening the
// breaker; answers about the request do not.
func TestBreakerCountsOnlyUnwellErrors(t *testing.T) {
	for _, tc := range []struct {
		code     codes.Code
		wantOpen bool
	}{
		{codes.Unavailable, true},
		{codes.DeadlineExceeded, true},
		{codes.Internal, true},
		{codes.NotFound, false},
		{codes.InvalidArgument, false},
		{codes.PermissionDenied, false},
		{codes.FailedPrecondition, false},
		{codes.Canceled, false},
	} {
		t.Run(tc.code.String(), func(t *testing.T) {
			srv := &flaky{failFirst: 1000, code: tc.code}
			p, reg := newPool(t, []string{serve(t, srv)}, func(c *clients.Config) {
				c.MaxAttempts = 1
				c.BreakerFailures = 3
				c.BreakerCooldown = time.Minute
			})
			for range 5 {
				getUser(p, 5*time.Second)
			}
			open := p.BreakerState("auth") == "open"
			if open != tc.wantOpen {
				t.Fatalf("after 5 × %v the breaker is %s, want open=%v", tc.code, p.BreakerState("auth"), tc.wantOpen)
			}
			if want := int32(5); open {
				want = 3 // the last two failed fast, without reaching the server
				if got := srv.attempts.Load(); got != want {
					t.Errorf("server saw %d calls, want %d", got, want)
				}
				if n := metricValue(t, reg, "grpc_client_circuit_breaker_rejected_total", nil); n != 2 {
					t.Errorf("rejected_total = %v, want 2", n)
				}
			}
		})
	}
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCert(t, dir, "ca", nil, nil)
	newCert(t, dir, "server", ca, caKey)
	newCert(t, dir, "client", ca, caKey)
	serverCert, err := tls.LoadX509KeyPair(filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	addr := serve(t, &flaky{}, grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{serverCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    roots,
		MinVersion:   tls.VersionTLS12,
	})))
	mtls := clients.TLSConfig{
		Enabled: true, ServerName: "auth.nova.test", CAFile: filepath.Join(dir, "ca.crt"),
		CertFile: filepath.Join(dir, "client.crt"), KeyFile: filepath.Join(dir, "client.key"),
	}
	noClientCert := mtls
	noClientCert.CertFile, noClientCert.KeyFile = "", ""
	wrongName := mtls
	wrongName.ServerName = "other.nova.test"
	for _, tc := range []struct {
		name string
		tls  clients.TLSConfig
		ok   bool
	}{
		{"mutual TLS", mtls, true},
		{"no client certificate", noClientCert, false},
		{"server name not in certificate", wrongName, false},
		{"plaintext", clients.TLSConfig{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := newPool(t, []string{addr}, func(c *clients.Config) { c.TLS = tc.tls; c.MaxAttempts = 1 })
			err := getUser(p, 3*time.Second)
			if (err == nil) != tc.ok {
				t.Fatalf("GetUser = %v, want success %v", err, tc.ok)
			}
		})
	}
}

// newCert writes name.crt and name.key under dir: a CA when parent is nil,
// else a leaf for auth.nova.test and 127.0.0.1 signed by parent.
func newCert(t *testing.T, dir, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign
		parent, parentKey = tmpl, key
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		tmpl.DNSNames = []string{"auth.nova.test"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(file, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, file), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(name+".crt", "CERTIFICATE", der)
	write(name+".key", "EC PRIVATE KEY", keyDER)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}
