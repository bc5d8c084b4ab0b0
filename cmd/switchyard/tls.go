package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync/atomic"
	"time"
)

// certReloader serves the certificate of -tls-cert/-tls-key and reads the
// files again on reload (SIGHUP), so a renewed certificate takes effect
// without a restart. A reload that fails keeps the certificate in use.
type certReloader struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

// newCertReloader loads the pair now, so a bad certificate fails at start
// rather than at the first handshake.
func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile}
	if _, err := r.reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// reload reads the pair again and returns the new certificate's leaf.
func (r *certReloader) reload() (*x509.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS: %w", err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("TLS: %s: %w", r.certFile, err)
		}
	}
	r.cert.Store(&cert)
	return leaf, nil
}

// getCertificate is the tls.Config hook: every handshake takes the
// certificate loaded last.
func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cert.Load(), nil
}

// certAttrs describes a certificate for the log.
func certAttrs(leaf *x509.Certificate) []any {
	return []any{"subject", leaf.Subject.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339)}
}
