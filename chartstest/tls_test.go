package chartstest

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// certificate is the part of cert-manager's Certificate the chart renders,
// decoded strictly: a misspelt field fails as the API server would refuse it.
type certificate struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   map[string]any `json:"metadata"`
	Spec       struct {
		SecretName  string `json:"secretName"`
		Duration    string `json:"duration"`
		RenewBefore string `json:"renewBefore"`
		PrivateKey  struct {
			Algorithm      string `json:"algorithm"`
			Size           int    `json:"size"`
			RotationPolicy string `json:"rotationPolicy"`
		} `json:"privateKey"`
		Usages    []string `json:"usages"`
		DNSNames  []string `json:"dnsNames"`
		IssuerRef struct {
			Name  string `json:"name"`
			Kind  string `json:"kind"`
			Group string `json:"group"`
		} `json:"issuerRef"`
	} `json:"spec"`
}

func strictCertificate(t testing.TB, o *unstructured.Unstructured) certificate {
	t.Helper()
	b, err := json.Marshal(o.Object)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c certificate
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("Certificate %s: %v", o.GetName(), err)
	}
	return c
}

// TestTLS: off by default; on, the Secret (the user's or a cert-manager
// Certificate's, rendered without the CRD) is mounted as a directory so
// renewals reach the pod, the service is pointed at it, probes use HTTPS
// and the test pod speaks (mutual) TLS.
func TestTLS(t *testing.T) {
	t.Run("off by default", func(t *testing.T) {
		r := mustRender(t, values(t, "", dbURL), renderOpts{})
		if len(r.find("Certificate")) != 0 {
			t.Error("a Certificate without tls.enabled")
		}
		var cm corev1.ConfigMap
		into(t, r.one(t, "ConfigMap", releaseName), &cm)
		for k := range setWhen {
			if _, ok := cm.Data[k]; ok {
				t.Errorf("%s set without TLS", k)
			}
		}
		var d appsv1.Deployment
		into(t, r.one(t, "Deployment", releaseName), &d)
		if p := d.Spec.Template.Spec.Containers[0].ReadinessProbe; p.HTTPGet.Scheme != "" {
			t.Errorf("readiness probe scheme %q without TLS", p.HTTPGet.Scheme)
		}
	})

	t.Run("cert-manager, mutual, policy", func(t *testing.T) {
		// No apiVersions: the CRD is not required to render.
		r := mustRender(t, values(t, filepath.Join(chartDir, "ci", "tls-values.yaml")), renderOpts{})
		c := strictCertificate(t, r.one(t, "Certificate", releaseName))
		for _, want := range []string{"nova-auth-grpc.nova-auth.svc", "nova-auth.nova-auth.svc", "auth.nova.example.com"} {
			if !slices.Contains(c.Spec.DNSNames, want) {
				t.Errorf("Certificate dnsNames %v lack %s", c.Spec.DNSNames, want)
			}
		}
		if !slices.Contains(c.Spec.Usages, "client auth") || c.Spec.IssuerRef.Name != "nova-internal-ca" || c.Spec.IssuerRef.Kind != "ClusterIssuer" {
			t.Errorf("Certificate spec: %+v", c.Spec)
		}
		checkMounted(t, r, c.Spec.SecretName)
		var cm corev1.ConfigMap
		into(t, r.one(t, "ConfigMap", releaseName), &cm)
		for k, want := range map[string]string{
			"TLS_CERT_FILE": "/etc/nova-auth/tls/tls.crt", "TLS_KEY_FILE": "/etc/nova-auth/tls/tls.key",
			"TLS_CLIENT_CA_FILE": "/etc/nova-auth/tls/ca.crt", "TLS_RELOAD_INTERVAL": "10s",
			"CALLER_POLICY": "RecordFailedLogin=spiffe://nova/ns/login/sa/login;ListUsers=spiffe://nova/ns/admin/sa/console;*=*",
		} {
			if cm.Data[k] != want {
				t.Errorf("%s=%q, want %q", k, cm.Data[k], want)
			}
		}
		var pod corev1.Pod
		into(t, r.one(t, "Pod", ""), &pod)
		args := strings.Join(pod.Spec.Containers[0].Args, " ")
		if !strings.Contains(args, "--cacert /etc/nova-auth/tls/ca.crt --cert /etc/nova-auth/tls/tls.crt --key /etc/nova-auth/tls/tls.key") {
			t.Errorf("test pod args %q: no mutual TLS", args)
		}
		if len(pod.Spec.Volumes) != 1 || pod.Spec.Volumes[0].Secret.SecretName != c.Spec.SecretName {
			t.Errorf("test pod volumes %+v", pod.Spec.Volumes)
		}
	})

	t.Run("existing Secret, TLS only", func(t *testing.T) {
		r := mustRender(t, values(t, "", dbURL, "tls.enabled=true", "tls.existingSecret=auth-tls"), renderOpts{})
		if len(r.find("Certificate")) != 0 {
			t.Error("a Certificate with tls.existingSecret")
		}
		checkMounted(t, r, "auth-tls")
		var cm corev1.ConfigMap
		into(t, r.one(t, "ConfigMap", releaseName), &cm)
		if _, ok := cm.Data["TLS_CLIENT_CA_FILE"]; ok || cm.Data["TLS_CERT_FILE"] == "" {
			t.Errorf("ConfigMap %v", cm.Data)
		}
		var pod corev1.Pod
		into(t, r.one(t, "Pod", ""), &pod)
		if args := strings.Join(pod.Spec.Containers[0].Args, " "); strings.Contains(args, "--cert") || !strings.Contains(args, "--cacert") {
			t.Errorf("test pod args %q", args)
		}
	})

	for _, tc := range []struct {
		sets []string
		want string
	}{
		{[]string{"tls.enabled=true"}, "tls.enabled needs a certificate"},
		{[]string{"tls.clientAuth=true"}, "take effect only with tls.enabled=true"},
		{[]string{"tls.enabled=true", "tls.existingSecret=s", "tls.certManager.enabled=true", "tls.certManager.issuerRef.name=ca"}, "not both"},
		{[]string{"tls.enabled=true", "tls.certManager.enabled=true"}, "needs tls.certManager.issuerRef.name"},
		{[]string{"tls.enabled=true", "tls.existingSecret=s", "callerPolicy=*=*"}, "callerPolicy names callers by their client certificates"},
		{[]string{"tls.enabled=true", "tls.certManager.enabled=true", "tls.certManager.issuerRef.name=ca", "tls.certManager.issuerRef.kind=Issuers"}, "issuerRef/kind"},
		{[]string{"tls.enabled=true", "tls.existingSecret=s", "tls.reloadInterval=soon"}, "reloadInterval"},
	} {
		_, err := render(t, values(t, "", append([]string{dbURL}, tc.sets...)...), renderOpts{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error with %q", tc.sets, err, tc.want)
		}
	}
}

// checkMounted: the Deployment mounts the Secret as a directory (no
// subPath, which would never see a renewal) and probes over HTTPS.
func checkMounted(t *testing.T, r *rendered, secret string) {
	t.Helper()
	var d appsv1.Deployment
	into(t, r.one(t, "Deployment", releaseName), &d)
	ps := d.Spec.Template.Spec
	var vol string
	for _, v := range ps.Volumes {
		if v.Secret != nil && v.Secret.SecretName == secret {
			vol = v.Name
		}
	}
	if vol == "" {
		t.Fatalf("no volume of Secret %s in %+v", secret, ps.Volumes)
	}
	c := ps.Containers[0]
	mounted := false
	for _, m := range c.VolumeMounts {
		if m.Name == vol {
			mounted = m.MountPath == "/etc/nova-auth/tls" && m.SubPath == "" && m.ReadOnly
		}
	}
	if !mounted {
		t.Errorf("Secret %s not mounted read-only at /etc/nova-auth/tls without subPath: %+v", secret, c.VolumeMounts)
	}
	for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if p.HTTPGet == nil || p.HTTPGet.Scheme != corev1.URISchemeHTTPS {
			t.Errorf("%s probe not over HTTPS: %+v", name, p.ProbeHandler)
		}
	}
}
