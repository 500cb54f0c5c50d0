package localcluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// pki is the run's certificate authority. Every component authenticates with
// a client certificate it signed, so no token file or bootstrap flow is needed.
type pki struct {
	dir    string
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caPEM  []byte
}

func newPKI(dir string) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "nova-auth-local-cluster-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	p := &pki{dir: dir, caCert: cert, caKey: key, caPEM: pemEncode("CERTIFICATE", der)}
	if err := os.WriteFile(p.path("ca.crt"), p.caPEM, 0o644); err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(p.path("ca.key"), pemEncode("EC PRIVATE KEY", keyDER), 0o600); err != nil {
		return nil, err
	}
	// The service-account signing key pair.
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	saDER, err := x509.MarshalECPrivateKey(saKey)
	if err != nil {
		return nil, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(p.path("sa.key"), pemEncode("EC PRIVATE KEY", saDER), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(p.path("sa.pub"), pemEncode("PUBLIC KEY", pubDER), 0o644); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *pki) path(name string) string { return filepath.Join(p.dir, name) }

// issued is a signed certificate and its key, PEM-encoded, also written to
// <name>.crt and <name>.key in the PKI folder.
type issued struct {
	certPEM, keyPEM   []byte
	certFile, keyFile string
}

// issue signs a certificate for a client (user cn in groups orgs) and, when
// hosts is not empty, for a server answering on those names and addresses.
func (p *pki) issue(name, cn string, orgs []string, hosts []string) (*issued, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if len(hosts) > 0 {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	is := &issued{
		certPEM:  pemEncode("CERTIFICATE", der),
		keyPEM:   pemEncode("EC PRIVATE KEY", keyDER),
		certFile: p.path(name + ".crt"),
		keyFile:  p.path(name + ".key"),
	}
	if err := os.WriteFile(is.certFile, is.certPEM, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(is.keyFile, is.keyPEM, 0o600); err != nil {
		return nil, err
	}
	return is, nil
}

// kubeconfig writes a kubeconfig for a client certificate at file.
func (p *pki) kubeconfig(file, server, user string, c *issued) error {
	b64 := base64.StdEncoding.EncodeToString
	s := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: nova-auth-local
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: nova-auth-local
  context:
    cluster: nova-auth-local
    user: %s
current-context: nova-auth-local
`, server, b64(p.caPEM), user, b64(c.certPEM), b64(c.keyPEM), user)
	return os.WriteFile(file, []byte(s), 0o600)
}

func pemEncode(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// writePKI creates the run's CA in pki/, the serving certificates of the API
// server and kubelet, the API server's client certificate for kubelet, and a
// kubeconfig for each client: the admin's and every component's.
func (c *Cluster) writePKI() error {
	p, err := newPKI(c.path("pki"))
	if err != nil {
		return err
	}
	if _, err := p.issue("apiserver", "kube-apiserver", nil, []string{
		c.GatewayIP, "127.0.0.1", "localhost", firstServiceIP(c.ServiceSubnet),
		"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local",
	}); err != nil {
		return err
	}
	if _, err := p.issue("kubelet", "system:node:"+NodeName, []string{"system:nodes"}, []string{NodeName, "127.0.0.1", c.GatewayIP}); err != nil {
		return err
	}
	if _, err := p.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client", []string{"system:masters"}, nil); err != nil {
		return err
	}
	clients := []struct{ file, cn, org string }{
		{"kubeconfig", "nova-auth-admin", "system:masters"},
		{"controller-manager.kubeconfig", "system:kube-controller-manager", ""},
		{"scheduler.kubeconfig", "system:kube-scheduler", ""},
		{"kubelet.kubeconfig", "system:node:" + NodeName, "system:nodes"},
		{"kube-proxy.kubeconfig", "system:kube-proxy", ""},
		// CoreDNS reads Services, EndpointSlices, Namespaces and Pods
		// cluster-wide (corednsRBAC, applied at Up).
		{"coredns.kubeconfig", "nova-auth:coredns", ""},
	}
	for _, cl := range clients {
		var orgs []string
		if cl.org != "" {
			orgs = []string{cl.org}
		}
		is, err := p.issue(strings.TrimSuffix(cl.file, ".kubeconfig")+"-client", cl.cn, orgs, nil)
		if err != nil {
			return err
		}
		if err := p.kubeconfig(c.path(cl.file), c.Server, cl.cn, is); err != nil {
			return err
		}
	}
	return nil
}

// adminTLS is a client configuration that trusts the run's CA and presents
// the cluster-admin certificate.
func (c *Cluster) adminTLS() (*tls.Config, error) {
	return tlsFromPKI(c.path("pki"), "kubeconfig-client")
}

func tlsFromPKI(dir, client string) (*tls.Config, error) {
	ca, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, client+".crt"), filepath.Join(dir, client+".key"))
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}, nil
}
