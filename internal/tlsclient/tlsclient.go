// Package tlsclient builds a gRPC client's TLS credentials from PEM files.
// The client library and the auth-service healthcheck command both use it;
// each names the files its own way (environment variables, flags) in its
// errors through Files.CAName and Files.PairName.
package tlsclient

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"google.golang.org/grpc/credentials"
)

// Files are the PEM files of a TLS client; empty fields are not used.
type Files struct {
	CAFile     string // roots that sign the server's certificate; empty: the system's
	CertFile   string // client certificate for mutual TLS (with KeyFile)
	KeyFile    string
	ServerName string // name checked in the server's certificate; empty: the dialled host
	// How the caller names the CA file and the certificate/key pair (an
	// environment variable, a flag): an error about a file starts with it.
	CAName, PairName string
}

// Credentials builds TLS (mutual TLS with a certificate) credentials. The
// client certificate is re-read at each handshake so a rotated one (e.g. by
// cert-manager) is picked up without a restart; it is read once here so a
// wrong pair fails now, not at the first call.
func Credentials(f Files) (credentials.TransportCredentials, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.CAName, err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate in %s", f.CAName, f.CAFile)
		}
	}
	if f.CertFile != "" || f.KeyFile != "" {
		if f.CertFile == "" || f.KeyFile == "" {
			return nil, fmt.Errorf("%s: a client certificate and its key go together", f.PairName)
		}
		if _, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile); err != nil {
			return nil, fmt.Errorf("%s: %w", f.PairName, err)
		}
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
			return &c, err
		}
	}
	return credentials.NewTLS(tc), nil
}
