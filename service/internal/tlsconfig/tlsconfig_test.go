package tlsconfig

import (
	"crypto/tls"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nova-auth/nova-auth/internal/testenv"
)

// TestNewReportsTheVariable: a start-up failure names the variable to fix.
func TestNewReportsTheVariable(t *testing.T) {
	dir := t.TempDir()
	ca, err := testenv.NewCA("ca")
	if err != nil {
		t.Fatal(err)
	}
	crt, key, _, err := ca.Issue(testenv.CertOptions{DNSNames: []string{"auth"}})
	if err != nil {
		t.Fatal(err)
	}
	w := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := Files{CertFile: w("tls.crt", crt), KeyFile: w("tls.key", key), ClientCAFile: w("ca.crt", ca.PEM)}
	for _, tc := range []struct {
		name    string
		edit    func(*Files)
		wantErr string
	}{
		{"good", func(*Files) {}, ""},
		{"no client CA", func(f *Files) { f.ClientCAFile = "" }, ""},
		{"missing cert", func(f *Files) { f.CertFile = filepath.Join(dir, "nope") }, "TLS_CERT_FILE: open"},
		{"missing key", func(f *Files) { f.KeyFile = filepath.Join(dir, "nope") }, "TLS_KEY_FILE: open"},
		{"key of another cert", func(f *Files) { f.KeyFile = w("other.key", otherKey(t, ca)) }, "TLS_CERT_FILE/TLS_KEY_FILE: tls: private key does not match"},
		{"CA not PEM", func(f *Files) { f.ClientCAFile = w("bad-ca.crt", []byte("not a cert")) }, "TLS_CLIENT_CA_FILE: no PEM CERTIFICATE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := good
			tc.edit(&f)
			_, err := New(f, time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("got %v, want %q", err, tc.wantErr)
			}
		})
	}

	// A half-written rotation (a key that does not match) keeps the old
	// certificate; once complete, the new one is served.
	r, err := New(good, 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	first, _ := r.current()
	crt2, key2, serial2, err := ca.Issue(testenv.CertOptions{DNSNames: []string{"auth"}})
	if err != nil {
		t.Fatal(err)
	}
	w("tls.crt", crt2)
	if c, _ := r.current(); c != first {
		t.Fatal("a certificate without its key was installed")
	}
	w("tls.key", key2)
	c, _ := r.current()
	if c.Leaf.SerialNumber.Cmp(serial2) != 0 {
		t.Fatalf("serial %v after rotation, want %v", c.Leaf.SerialNumber, serial2)
	}
	cfg, err := r.Config(true, "h2").GetConfigForClient(&tls.ClientHelloInfo{})
	if err != nil || cfg.ClientAuth != tls.RequireAndVerifyClientCert || cfg.ClientCAs == nil {
		t.Fatalf("mutual TLS config: %+v, %v", cfg, err)
	}
}

func otherKey(t *testing.T, ca *testenv.CA) []byte {
	_, key, _, err := ca.Issue(testenv.CertOptions{DNSNames: []string{"other"}})
	if err != nil {
		t.Fatal(err)
	}
	return key
}
