// Package tlsclient builds a gRPC client's TLS credentials from PEM files.
// The client library and the auth-service healthcheck command both use it;
// each names the files its own way (environment variables, flags) through
// FileError.
package tlsclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
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
}

// FileError says which of the files could not be used.
type FileError struct {
	CA  bool // the CA file; otherwise the certificate/key pair
	Err error
}

func (e *FileError) Error() string { return e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

// Credentials builds TLS (mutual TLS with a certificate) credentials. The
// client certificate is re-read at each handshake so a rotated one (e.g. by
// cert-manager) is picked up without a restart; it is read once here so a
// wrong pair fails now, not at the first call.
func Credentials(f Files) (credentials.TransportCredentials, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, &FileError{CA: true, Err: err}
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, &FileError{CA: true, Err: fmt.Errorf("no PEM certificate in %s", f.CAFile)}
		}
	}
	if f.CertFile != "" || f.KeyFile != "" {
		if f.CertFile == "" || f.KeyFile == "" {
			return nil, &FileError{Err: errors.New("a client certificate and its key go together")}
		}
		if _, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile); err != nil {
			return nil, &FileError{Err: err}
		}
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
			return &c, err
		}
	}
	return credentials.NewTLS(tc), nil
}
