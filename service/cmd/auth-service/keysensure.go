package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nova-auth/nova-auth/internal/tokens"
)

// keysEnsure makes sure the Kubernetes Secret --secret holds a JWT key pair
// (JWT_PRIVATE_KEY, JWT_PUBLIC_KEY), creating it only when it is absent: an
// existing Secret is never replaced, so every issued token stays valid. A
// new Secret takes the private key from --adopt when that Secret has one
// (the chart's own Secret, where earlier chart versions generated the key),
// else a new pair of --type. The chart's pre-install/pre-upgrade hook Job
// runs it in the release's namespace as a ServiceAccount that may only get
// those two Secrets and create Secrets.
func keysEnsure(ctx context.Context, args []string, s stdio) error {
	fs, args, err := s.subcommand(args, "keys ensure --secret S [--adopt S] [--type ed25519|ecdsa|rsa]")
	if err != nil {
		return err
	}
	name := fs.String("secret", "", "the Secret that holds the key pair, in the pod's namespace")
	adopt := fs.String("adopt", "", "when --secret is absent, take JWT_PRIVATE_KEY (and JWT_PUBLIC_KEY) from this Secret if it has one")
	keyType := fs.String("type", "ed25519", "type of a new key: ed25519, ecdsa (P-256) or rsa (4096 bits)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *name == "" {
		return usageError{"--secret is required"}
	}
	if _, ok := keyGenerators[*keyType]; !ok {
		return usageError{fmt.Sprintf("--type %q: want ed25519, ecdsa or rsa", *keyType)}
	}
	api, err := inCluster(os.Getenv, serviceAccountDir)
	if err != nil {
		return err
	}
	msg, err := ensureKeySecret(ctx, api, *name, *adopt, *keyType)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.out, "Secret %s/%s: %s\n", api.namespace, *name, msg)
	return nil
}

// keyGenerators make a new key pair as PEM, by --type (the chart's
// jwt.generate.keyType).
var keyGenerators = map[string]func() (priv, pub []byte, err error){
	"ed25519": tokens.GenerateEd25519PEM,
	"ecdsa": func() ([]byte, []byte, error) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		return tokens.MarshalPEM(k, k.Public())
	},
	"rsa": func() ([]byte, []byte, error) {
		k, err := rsa.GenerateKey(rand.Reader, 4096)
		if err != nil {
			return nil, nil, err
		}
		return tokens.MarshalPEM(k, k.Public())
	},
}

// ensureKeySecret creates Secret name unless it exists and says what it
// did. It writes nothing when the Secret exists: an incomplete one is an
// error for a person to resolve, not something to overwrite.
func ensureKeySecret(ctx context.Context, api *kubeAPI, name, adopt, keyType string) (string, error) {
	cur, err := api.getSecret(ctx, name)
	switch {
	case err == nil && len(cur.Data["JWT_PUBLIC_KEY"]) == 0:
		return "", fmt.Errorf("Secret %s exists without JWT_PUBLIC_KEY, which the serving pods read: add the public key "+
			"(openssl pkey -in private.pem -pubout), or delete the Secret to have a new pair made", name)
	case err == nil:
		return "exists, kept", nil
	case !errors.Is(err, errNotFound):
		return "", err
	}

	var priv, pub []byte
	origin := "generated " + keyType
	if adopt != "" {
		old, err := api.getSecret(ctx, adopt)
		if err != nil && !errors.Is(err, errNotFound) {
			return "", err
		}
		if err == nil && len(old.Data["JWT_PRIVATE_KEY"]) > 0 {
			priv, pub, err = adoptKey(old.Data)
			if err != nil {
				return "", fmt.Errorf("Secret %s: %w", adopt, err)
			}
			origin = "adopted from Secret " + adopt
		}
	}
	if priv == nil {
		if priv, pub, err = keyGenerators[keyType](); err != nil {
			return "", err
		}
	}
	err = api.createSecret(ctx, &secret{
		APIVersion: "v1", Kind: "Secret",
		Metadata: objectMeta{
			Name: name,
			// Not app.kubernetes.io/instance: Argo CD (label tracking)
			// would count the Secret as the application's and prune it.
			Labels:      map[string]string{"app.kubernetes.io/component": "jwt-key", "app.kubernetes.io/managed-by": "auth-service"},
			Annotations: map[string]string{"nova-auth/key-origin": origin},
		},
		Type: "Opaque",
		Data: map[string][]byte{"JWT_PRIVATE_KEY": priv, "JWT_PUBLIC_KEY": pub},
	})
	if errors.Is(err, errAlreadyExists) {
		// Another run created it between our get and create: keep theirs.
		return "created meanwhile by another run, kept", nil
	}
	if err != nil {
		return "", err
	}
	return "created, key " + origin, nil
}

// adoptKey takes the key pair of an earlier Secret: the private key as it
// is, and its public key, or the private key's public half when it has none.
func adoptKey(data map[string][]byte) (priv, pub []byte, err error) {
	key, err := tokens.ParsePrivateKey(data["JWT_PRIVATE_KEY"])
	if err != nil {
		return nil, nil, fmt.Errorf("JWT_PRIVATE_KEY: %w", err)
	}
	if pub = data["JWT_PUBLIC_KEY"]; len(pub) > 0 {
		return data["JWT_PRIVATE_KEY"], pub, nil
	}
	_, pub, err = tokens.MarshalPEM(key, key.Public())
	return data["JWT_PRIVATE_KEY"], pub, err
}

// serviceAccountDir is where Kubernetes mounts a pod's API token, the
// cluster's CA and the pod's namespace.
const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

var (
	errNotFound      = errors.New("not found")
	errAlreadyExists = errors.New("already exists")
)

// kubeAPI is the little of the Kubernetes API `keys ensure` needs, spoken
// over HTTPS with the pod's ServiceAccount token: get and create a Secret
// in the pod's own namespace.
type kubeAPI struct {
	base, namespace, token string
	client                 *http.Client
}

// inCluster configures kubeAPI as client-go's in-cluster config does: the
// API server from KUBERNETES_SERVICE_HOST/PORT, trusted through the
// mounted CA, authenticated by the mounted token.
func inCluster(getenv func(string) string, dir string) (*kubeAPI, error) {
	host, port := getenv("KUBERNETES_SERVICE_HOST"), getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, errors.New("not running in a Kubernetes pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set")
	}
	read := func(name string) (string, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return "", fmt.Errorf("%w (the pod needs its ServiceAccount token mounted: automountServiceAccountToken: true)", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	token, err := read("token")
	if err != nil {
		return nil, err
	}
	ns, err := read("namespace")
	if err != nil {
		return nil, err
	}
	ca, err := read("ca.crt")
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(ca)) {
		return nil, fmt.Errorf("%s: no PEM certificate", filepath.Join(dir, "ca.crt"))
	}
	return &kubeAPI{
		base:      "https://" + net.JoinHostPort(host, port),
		namespace: ns,
		token:     token,
		client: &http.Client{
			Timeout:   15 * time.Second,
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}},
		},
	}, nil
}

type objectMeta struct {
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// secret is a core/v1 Secret, with the fields this command reads or sets
// (Data's values travel as base64, as encoding/json writes []byte).
type secret struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   objectMeta        `json:"metadata"`
	Type       string            `json:"type,omitempty"`
	Data       map[string][]byte `json:"data,omitempty"`
}

func (k *kubeAPI) secretsURL() string {
	return k.base + "/api/v1/namespaces/" + url.PathEscape(k.namespace) + "/secrets"
}

// getSecret reads a Secret, or returns errNotFound.
func (k *kubeAPI) getSecret(ctx context.Context, name string) (*secret, error) {
	var s secret
	if err := k.do(ctx, http.MethodGet, k.secretsURL()+"/"+url.PathEscape(name), nil, &s); err != nil {
		return nil, fmt.Errorf("get Secret %s/%s: %w", k.namespace, name, err)
	}
	return &s, nil
}

// createSecret creates a Secret, or returns errAlreadyExists: creating is
// atomic, so it can never overwrite one.
func (k *kubeAPI) createSecret(ctx context.Context, s *secret) error {
	body, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := k.do(ctx, http.MethodPost, k.secretsURL(), body, nil); err != nil {
		return fmt.Errorf("create Secret %s/%s: %w", k.namespace, s.Metadata.Name, err)
	}
	return nil
}

// do sends one request and decodes a 2xx answer into out. Other answers
// become errNotFound, errAlreadyExists, or the API server's own message
// (a Status says why: forbidden, invalid…; it never holds the Secret's data).
func (k *kubeAPI) do(ctx context.Context, method, u string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+k.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return errNotFound
	case resp.StatusCode == http.StatusConflict:
		return errAlreadyExists
	case resp.StatusCode/100 != 2:
		var st struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(b, &st) == nil && st.Message != "" {
			return fmt.Errorf("%s: %s", resp.Status, st.Message)
		}
		return errors.New(resp.Status)
	case out != nil:
		return json.Unmarshal(b, out)
	}
	return nil
}
