package chartstest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	dynamicfake "k8s.io/client-go/dynamic/fake"
)

// secretData returns the decoded data of the release's own Secret.
func secretData(t *testing.T, r *rendered) map[string]string {
	t.Helper()
	var s corev1.Secret
	into(t, r.one(t, "Secret", "nova-auth"), &s)
	out := map[string]string{}
	for k, v := range s.Data {
		out[k] = string(v)
	}
	return out
}

// TestGeneratedKey: without a key pair the chart generates a private key of
// the chosen type, in a PEM the service parses; no public key is stored (the
// service derives it).
func TestGeneratedKey(t *testing.T) {
	for _, kt := range []string{"ed25519", "ecdsa"} {
		t.Run(kt, func(t *testing.T) {
			r := mustRender(t, values(t, "", dbURL, "jwt.generate.keyType="+kt), renderOpts{})
			d := secretData(t, r)
			if d["DATABASE_URL"] != "postgres://u:p@db:5432/nova" {
				t.Errorf("DATABASE_URL = %q", d["DATABASE_URL"])
			}
			if _, ok := d["JWT_PUBLIC_KEY"]; ok {
				t.Error("JWT_PUBLIC_KEY stored for a generated key: the service derives it")
			}
			block, _ := pem.Decode([]byte(d["JWT_PRIVATE_KEY"]))
			if block == nil {
				t.Fatalf("JWT_PRIVATE_KEY is not PEM: %q", d["JWT_PRIVATE_KEY"])
			}
			switch kt {
			case "ed25519":
				k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
				if _, ok := k.(ed25519.PrivateKey); err != nil || !ok {
					t.Errorf("not a PKCS#8 Ed25519 key (%T, %v)", k, err)
				}
			case "ecdsa":
				k, err := x509.ParseECPrivateKey(block.Bytes)
				if err != nil || k.Curve.Params().Name != "P-256" {
					t.Errorf("not an EC P-256 key: %v", err)
				}
				var _ *ecdsa.PrivateKey = k
			}
		})
	}
}

// TestKeysGivenAsValues: a key pair given as values is stored as given.
func TestKeysGivenAsValues(t *testing.T) {
	vals := values(t, filepath.Join(chartDir, "ci", "clusterip-values.yaml"))
	r := mustRender(t, vals, renderOpts{})
	d := secretData(t, r)
	jwt := vals["jwt"].(map[string]any)
	if d["JWT_PRIVATE_KEY"] != jwt["privateKey"] || d["JWT_PUBLIC_KEY"] != jwt["publicKey"] {
		t.Errorf("Secret holds %q / %q, not the given pair", d["JWT_PRIVATE_KEY"], d["JWT_PUBLIC_KEY"])
	}
}

// lookupProvider answers the chart's `lookup` calls from a fake cluster
// holding the given objects, as the API server would during `helm upgrade`.
type lookupProvider struct {
	client *dynamicfake.FakeDynamicClient
}

func (p lookupProvider) GetClientFor(apiVersion, kind string) (dynamic.NamespaceableResourceInterface, bool, error) {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return nil, false, err
	}
	res := map[string]string{"Secret": "secrets", "Namespace": "namespaces"}[kind]
	return p.client.Resource(gv.WithResource(res)), kind != "Namespace", nil
}

// renderUpgrade renders like `helm upgrade` with objs in the cluster.
func renderUpgrade(t *testing.T, vals map[string]any, objs ...runtime.Object) map[string]string {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	client := dynamicfake.NewSimpleDynamicClient(scheme, objs...)
	c := loadChart(t)
	caps := chartutil.DefaultCapabilities.Copy()
	rv, err := chartutil.ToRenderValuesWithSchemaValidation(c, vals, chartutil.ReleaseOptions{
		Name: releaseName, Namespace: releaseNamespace, Revision: 2, IsUpgrade: true,
	}, caps, false)
	if err != nil {
		t.Fatal(err)
	}
	out, err := engine.RenderWithClientProvider(c, rv, lookupProvider{client})
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return out
}

// TestKeyKeptAcrossUpgrade: when the release's Secret already holds a key,
// `helm upgrade` renders that same key, so issued tokens stay valid; the
// Namespace, already there, is not rendered again.
func TestKeyKeptAcrossUpgrade(t *testing.T) {
	const oldKey = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA7Y+WO6FTpW9VJb5rkXte5iGVMdRPqnBDUAm0Tck+gC\n-----END PRIVATE KEY-----\n"
	existing := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: "nova-auth", Namespace: "nova-auth"},
		Data:       map[string][]byte{"DATABASE_URL": []byte("postgres://old"), "JWT_PRIVATE_KEY": []byte(oldKey)},
	}
	ns := &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: "nova-auth"},
	}
	vals := values(t, "", dbURL)
	out := renderUpgrade(t, vals, existing, ns)

	objs, err := decodeAll(out["auth/templates/secret.yaml"])
	if err != nil || len(objs) != 1 {
		t.Fatalf("secret.yaml: %v (%d objects)", err, len(objs))
	}
	data := objs[0].Object["data"].(map[string]any)
	if got, _ := base64.StdEncoding.DecodeString(data["JWT_PRIVATE_KEY"].(string)); string(got) != oldKey {
		t.Errorf("upgrade replaced the private key:\n%s", got)
	}
	if got, _ := base64.StdEncoding.DecodeString(data["DATABASE_URL"].(string)); string(got) != "postgres://u:p@db:5432/nova" {
		t.Errorf("DATABASE_URL = %q: it follows the values, not the old Secret", got)
	}
	if _, ok := data["JWT_PUBLIC_KEY"]; ok {
		t.Error("JWT_PUBLIC_KEY appeared on upgrade")
	}
	if strings.TrimSpace(out["auth/templates/namespace.yaml"]) != "" {
		t.Errorf("Namespace rendered although it exists:\n%s", out["auth/templates/namespace.yaml"])
	}

	// The same upgrade twice renders the same Secret, so the checksum
	// annotation does not roll the pods for nothing.
	again := renderUpgrade(t, vals, existing, ns)
	if out["auth/templates/deployment.yaml"] != again["auth/templates/deployment.yaml"] {
		t.Error("two identical upgrades render different Deployments")
	}

	// A fresh install (nothing in the cluster) generates a new key.
	fresh := renderUpgrade(t, vals)
	if fresh["auth/templates/secret.yaml"] == out["auth/templates/secret.yaml"] {
		t.Error("a fresh install reused a key it cannot have seen")
	}
}
