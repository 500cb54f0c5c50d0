package localcluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
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
