package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard/switchyard/internal/testserver"
)

// A certificate and key that do not go together, or a file that holds no
// PEM, are refused with an error that names both files: crypto/tls's own
// names none.
func TestCertPairErrorsNameTheFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	certA, keyA := testserver.SelfSignedCert(t)
	_, keyB := testserver.SelfSignedCert(t)
	cert := write("a.crt", certA)
	write("a.key", keyA)
	otherKey := write("b.key", keyB)
	empty := write("empty.key", nil)
	for _, key := range []string{otherKey, empty} {
		_, err := newCertReloader(cert, key)
		if err == nil || !strings.Contains(err.Error(), "-tls-cert "+cert) || !strings.Contains(err.Error(), "-tls-key "+key) {
			t.Errorf("newCertReloader(%s, %s) = %v; want an error naming both files", cert, key, err)
		}
	}
	// A file that cannot be read is named by the error already, once.
	missing := filepath.Join(dir, "missing.key")
	if _, err := newCertReloader(cert, missing); err == nil || strings.Count(err.Error(), missing) != 1 {
		t.Errorf("newCertReloader with a missing key: %v; want an error naming %s once", err, missing)
	}
}
