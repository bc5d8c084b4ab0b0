package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
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

// reload reads the pair again and returns the new certificate's leaf. A
// pair that is not valid now (expired, or not yet valid) is refused while
// the certificate in use is valid: clients would refuse it. Otherwise it
// is taken, and notValidNow says why it is not valid.
func (r *certReloader) reload() (*x509.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		// crypto/tls names a file only when it cannot read it: "private
		// key does not match public key" must say which pair.
		var pathErr *fs.PathError
		if errors.As(err, &pathErr) {
			return nil, fmt.Errorf("TLS: %w", err)
		}
		return nil, fmt.Errorf("TLS: -tls-cert %s, -tls-key %s: %w", r.certFile, r.keyFile, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("TLS: %s: %w", r.certFile, err)
		}
	}
	if err := notValidNow(leaf); err != nil {
		if cur := r.cert.Load(); cur != nil && notValidNow(cur.Leaf) == nil {
			return nil, fmt.Errorf("TLS: %s: %w, where the certificate in use is valid until %s",
				r.certFile, err, cur.Leaf.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	cert.Leaf = leaf
	r.cert.Store(&cert)
	return leaf, nil
}

// certClockSkew is how far in the future a certificate's start may be and
// still count as valid: a certificate issued just now, on a CA whose
// clock runs a little ahead, is valid for clients within moments.
const certClockSkew = 5 * time.Minute

// notValidNow says why leaf is not valid now, or returns nil.
func notValidNow(leaf *x509.Certificate) error {
	switch now := time.Now(); {
	case now.After(leaf.NotAfter):
		return fmt.Errorf("the certificate expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Add(certClockSkew).Before(leaf.NotBefore):
		return fmt.Errorf("the certificate is not valid before %s", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

// warnNotValid logs msg, with why, when leaf is not valid now, and
// reports whether it did.
func warnNotValid(logger *slog.Logger, msg string, leaf *x509.Certificate) bool {
	err := notValidNow(leaf)
	if err != nil {
		logger.Warn(msg, append(certAttrs(leaf), "err", err)...)
	}
	return err != nil
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
