// Package tlsconfig serves the service's certificate and, for mutual TLS,
// its client CA, re-reading both when their files change, so a certificate
// rotated by cert-manager or a Kubernetes Secret volume is picked up
// without a restart.
package tlsconfig

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Files names the PEM files. ClientCAFile empty means TLS without client
// certificates.
type Files struct {
	CertFile, KeyFile, ClientCAFile string
}

// Reloader hands out the current certificate and client CA pool. It
// re-reads the files at most once per interval, on a handshake: no goroutine,
// no inotify. Reading (not stat-ing) the files is what makes a Secret
// volume's `..data` symlink swap visible, whatever the mtimes say.
type Reloader struct {
	files    Files
	interval time.Duration
	log      *slog.Logger
	now      func() time.Time

	mu              sync.Mutex
	checked         time.Time
	certPEM, keyPEM []byte
	caPEM           []byte
	cert            *tls.Certificate
	pool            *x509.CertPool
	lastErr         string
}

// New loads the files once; an error here stops the service from starting,
// naming the variable to fix. Later read or parse errors keep the previous
// certificate and are logged: a half-written file must not take the
// listener down.
func New(f Files, interval time.Duration, log *slog.Logger) (*Reloader, error) {
	r := &Reloader{files: f, interval: interval, log: log, now: time.Now}
	certPEM, keyPEM, caPEM, err := r.read()
	if err != nil {
		return nil, err
	}
	if err := r.parse(certPEM, keyPEM, caPEM); err != nil {
		return nil, err
	}
	r.checked = r.now()
	return r, nil
}

func (r *Reloader) read() (certPEM, keyPEM, caPEM []byte, err error) {
	if certPEM, err = os.ReadFile(r.files.CertFile); err != nil {
		return nil, nil, nil, fmt.Errorf("TLS_CERT_FILE: %w", err)
	}
	if keyPEM, err = os.ReadFile(r.files.KeyFile); err != nil {
		return nil, nil, nil, fmt.Errorf("TLS_KEY_FILE: %w", err)
	}
	if r.files.ClientCAFile != "" {
		if caPEM, err = os.ReadFile(r.files.ClientCAFile); err != nil {
			return nil, nil, nil, fmt.Errorf("TLS_CLIENT_CA_FILE: %w", err)
		}
	}
	return certPEM, keyPEM, caPEM, nil
}

// parse installs the new material if all of it is valid, else nothing.
func (r *Reloader) parse(certPEM, keyPEM, caPEM []byte) error {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("TLS_CERT_FILE/TLS_KEY_FILE: %w", err)
	}
	var pool *x509.CertPool
	if r.files.ClientCAFile != "" {
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return errors.New("TLS_CLIENT_CA_FILE: no PEM CERTIFICATE block in the file")
		}
	}
	r.cert, r.pool = &cert, pool
	r.certPEM, r.keyPEM, r.caPEM = certPEM, keyPEM, caPEM
	return nil
}

// current returns the material, reloading first when the interval passed.
func (r *Reloader) current() (*tls.Certificate, *x509.CertPool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checked) >= r.interval {
		r.checked = now
		r.reload()
	}
	return r.cert, r.pool
}

func (r *Reloader) reload() {
	certPEM, keyPEM, caPEM, err := r.read()
	if err == nil && bytes.Equal(certPEM, r.certPEM) && bytes.Equal(keyPEM, r.keyPEM) && bytes.Equal(caPEM, r.caPEM) {
		return
	}
	if err == nil {
		err = r.parse(certPEM, keyPEM, caPEM)
	}
	if err != nil {
		// Logged once per distinct problem: a rotation caught between the
		// certificate and the key being written resolves on the next check.
		if err.Error() != r.lastErr {
			r.lastErr = err.Error()
			r.log.Warn("TLS files changed but cannot be loaded; still serving the previous certificate", slog.String("error", err.Error()))
		}
		return
	}
	r.lastErr = ""
	r.log.Info("TLS certificate reloaded", slog.String("subject", r.cert.Leaf.Subject.String()),
		slog.String("serial", r.cert.Leaf.SerialNumber.String()), slog.Time("not_after", r.cert.Leaf.NotAfter))
}

// Config is the server tls.Config: every handshake gets the current
// certificate and, with a client CA, verifies the client's certificate
// against it: a certificate from another CA, or expired, fails the
// handshake. With requireClientCert a client without a certificate fails it
// too (gRPC); without, it gets through unverified (HTTP, where kubelet
// probes carry no certificate, and RequireClientCert refuses the rest).
// nextProtos are the ALPN protocols ("h2" for gRPC; "h2", "http/1.1" for
// HTTP).
func (r *Reloader) Config(requireClientCert bool, nextProtos ...string) *tls.Config {
	base := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: nextProtos}
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		cert, pool := r.current()
		c := &tls.Config{
			MinVersion:   tls.VersionTLS12,
			NextProtos:   nextProtos,
			Certificates: []tls.Certificate{*cert},
		}
		if pool != nil {
			c.ClientCAs = pool
			c.ClientAuth = tls.RequireAndVerifyClientCert
			if !requireClientCert {
				c.ClientAuth = tls.VerifyClientCertIfGiven
			}
		}
		return c, nil
	}
	return base
}

// Identity is the name a verified client certificate gives its holder: the
// first URI SAN (a SPIFFE ID such as spiffe://nova/ns/x/sa/y), else the
// first DNS SAN, else the subject's common name. "" when there is none.
func Identity(cert *x509.Certificate) string {
	switch {
	case cert == nil:
		return ""
	case len(cert.URIs) > 0:
		return cert.URIs[0].String()
	case len(cert.DNSNames) > 0:
		return cert.DNSNames[0]
	}
	return cert.Subject.CommonName
}
