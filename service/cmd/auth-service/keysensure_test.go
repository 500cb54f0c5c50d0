package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nova-auth/nova-auth/internal/tokens"
)

// secretsServer answers the two Secret endpoints `keys ensure` calls, over
// TLS, for one namespace and one token. (A unit test of the client; the e2e
// suite runs the command against a real API server.)
type secretsServer struct {
	mu       sync.Mutex
	secrets  map[string]*secret
	creates  int
	conflict bool // answer every create with 409, as after a concurrent run
	forbid   bool // answer everything with 403, as without the Role
}

func (f *secretsServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	status := func(code int, msg string) {
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]string{"kind": "Status", "message": msg}) //nolint:errcheck
	}
	if r.Header.Get("Authorization") != "Bearer tok" {
		status(http.StatusUnauthorized, "Unauthorized")
		return
	}
	if f.forbid {
		status(http.StatusForbidden, `secrets is forbidden: User "system:serviceaccount:ns:x" cannot get resource "secrets"`)
		return
	}
	const prefix = "/api/v1/namespaces/ns/secrets"
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, prefix+"/"):
		s, ok := f.secrets[strings.TrimPrefix(r.URL.Path, prefix+"/")]
		if !ok {
			status(http.StatusNotFound, "not found")
			return
		}
		json.NewEncoder(w).Encode(s) //nolint:errcheck
	case r.Method == http.MethodPost && r.URL.Path == prefix:
		var s secret
		if err := json.NewDecoder(r.Body).Decode(&s); err != nil || r.Header.Get("Content-Type") != "application/json" {
			status(http.StatusBadRequest, "bad body")
			return
		}
		if _, ok := f.secrets[s.Metadata.Name]; ok || f.conflict {
			status(http.StatusConflict, "already exists")
			return
		}
		f.creates++
		f.secrets[s.Metadata.Name] = &s
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(&s) //nolint:errcheck
	default:
		status(http.StatusMethodNotAllowed, r.Method+" "+r.URL.Path)
	}
}

// startAPI serves f over TLS and returns a kubeAPI configured the way it is
// in a pod: from the environment and a ServiceAccount directory.
func startAPI(t *testing.T, f *secretsServer) *kubeAPI {
	t.Helper()
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	for name, data := range map[string][]byte{"token": []byte("tok\n"), "namespace": []byte("ns"), "ca.crt": ca} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "https://"))
	env := map[string]string{"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port}
	api, err := inCluster(func(k string) string { return env[k] }, dir)
	if err != nil {
		t.Fatal(err)
	}
	return api
}

// checkPair fails unless priv and pub are one PEM key pair the service loads.
func checkPair(t *testing.T, priv, pub []byte) {
	t.Helper()
	k, err := tokens.ParsePrivateKey(priv)
	if err != nil {
		t.Fatalf("JWT_PRIVATE_KEY: %v", err)
	}
	pubs, err := tokens.ParsePublicKeys(pub)
	if err != nil || len(pubs) != 1 {
		t.Fatalf("JWT_PUBLIC_KEY: %v (%d keys)", err, len(pubs))
	}
	want, _ := tokens.KeyID(k.Public())
	got, _ := tokens.KeyID(pubs[0])
	if got != want {
		t.Errorf("JWT_PUBLIC_KEY is not the private key's public half")
	}
}

// The previous chart's Secret: a generated Ed25519 key, no public key.
const legacyKey = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA7Y+WO6FTpW9VJb5rkXte5iGVMdRPqnBDUAm0Tck+gC\n-----END PRIVATE KEY-----\n"

func TestKeysEnsure(t *testing.T) {
	ctx := context.Background()
	legacy := func() *secret {
		return &secret{Metadata: objectMeta{Name: "nova-auth"}, Data: map[string][]byte{"DATABASE_URL": []byte("postgres://x"), "JWT_PRIVATE_KEY": []byte(legacyKey)}}
	}
	tests := []struct {
		name        string
		existing    []*secret
		adopt, typ  string
		conflict    bool
		forbid      bool
		wantMsg     string // prefix of what it reports
		wantErr     string
		wantCreates int
		wantPriv    string // the stored private key, when fixed
	}{
		{name: "fresh install generates ed25519", adopt: "nova-auth", typ: "ed25519", wantMsg: "created, key generated ed25519", wantCreates: 1},
		{name: "fresh install generates ecdsa", typ: "ecdsa", wantMsg: "created, key generated ecdsa", wantCreates: 1},
		{name: "upgrade from the previous chart adopts its key", existing: []*secret{legacy()}, adopt: "nova-auth", typ: "ed25519",
			wantMsg: "created, key adopted from Secret nova-auth", wantCreates: 1, wantPriv: legacyKey},
		{name: "adopt names a Secret without a key", existing: []*secret{{Metadata: objectMeta{Name: "nova-auth"}, Data: map[string][]byte{"DATABASE_URL": []byte("x")}}},
			adopt: "nova-auth", typ: "ed25519", wantMsg: "created, key generated ed25519", wantCreates: 1},
		{name: "existing Secret is kept", existing: []*secret{{Metadata: objectMeta{Name: "nova-auth-jwt"}, Data: map[string][]byte{"JWT_PRIVATE_KEY": []byte("p"), "JWT_PUBLIC_KEY": []byte("P")}}, legacy()},
			adopt: "nova-auth", typ: "ed25519", wantMsg: "exists, kept", wantPriv: "p"},
		{name: "existing Secret without public key is an error, not overwritten", existing: []*secret{{Metadata: objectMeta{Name: "nova-auth-jwt"}, Data: map[string][]byte{"JWT_PRIVATE_KEY": []byte("p")}}},
			typ: "ed25519", wantErr: "exists without JWT_PUBLIC_KEY", wantPriv: "p"},
		{name: "created meanwhile by another run", typ: "ed25519", conflict: true, wantMsg: "created meanwhile by another run, kept"},
		{name: "adopted key that does not parse", existing: []*secret{{Metadata: objectMeta{Name: "nova-auth"}, Data: map[string][]byte{"JWT_PRIVATE_KEY": []byte("junk")}}},
			adopt: "nova-auth", typ: "ed25519", wantErr: "Secret nova-auth: JWT_PRIVATE_KEY: no PEM block"},
		{name: "no permission", typ: "ed25519", forbid: true, wantErr: `get Secret ns/nova-auth-jwt: 403 Forbidden: secrets is forbidden`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &secretsServer{secrets: map[string]*secret{}, conflict: tc.conflict, forbid: tc.forbid}
			for _, s := range tc.existing {
				f.secrets[s.Metadata.Name] = s
			}
			msg, err := ensureKeySecret(ctx, startAPI(t, f), "nova-auth-jwt", tc.adopt, tc.typ)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
			} else if err != nil || !strings.HasPrefix(msg, tc.wantMsg) {
				t.Fatalf("ensureKeySecret = %q, %v; want %q", msg, err, tc.wantMsg)
			}
			if f.creates != tc.wantCreates {
				t.Errorf("%d Secrets created, want %d", f.creates, tc.wantCreates)
			}
			s := f.secrets["nova-auth-jwt"]
			if tc.wantPriv != "" && (s == nil || string(s.Data["JWT_PRIVATE_KEY"]) != tc.wantPriv) {
				t.Errorf("Secret nova-auth-jwt holds private key %q, want %q", s.Data["JWT_PRIVATE_KEY"], tc.wantPriv)
			}
			if tc.wantCreates == 1 {
				checkPair(t, s.Data["JWT_PRIVATE_KEY"], s.Data["JWT_PUBLIC_KEY"])
				if s.Metadata.Labels["app.kubernetes.io/instance"] != "" || s.Metadata.Labels["app.kubernetes.io/component"] != "jwt-key" {
					t.Errorf("labels %v: want component jwt-key and no instance label (Argo CD would prune it)", s.Metadata.Labels)
				}
			}
			if l := f.secrets["nova-auth"]; l != nil && tc.adopt != "" && string(l.Data["DATABASE_URL"]) == "postgres://x" && string(l.Data["JWT_PRIVATE_KEY"]) != legacyKey {
				t.Error("the adopted Secret was changed")
			}
		})
	}
}

// TestKeysEnsureCommand: the command's own checks, before any API call.
func TestKeysEnsureCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"keys", "ensure"}, 2, "--secret is required"},
		{[]string{"keys", "ensure", "--secret", "s", "--type", "dsa"}, 2, `--type "dsa": want ed25519, ecdsa or rsa`},
		{[]string{"keys", "nothing"}, 2, "want: keys generate"},
		// Outside a pod (the test's environment has no KUBERNETES_SERVICE_HOST).
		{[]string{"keys", "ensure", "--secret", "s"}, 1, "not running in a Kubernetes pod"},
	} {
		var stdout, stderr bytes.Buffer
		t.Setenv("KUBERNETES_SERVICE_HOST", "")
		code := run(tc.args, strings.NewReader(""), &stdout, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, stderr.String(), tc.code, tc.want)
		}
	}
}
