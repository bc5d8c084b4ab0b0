package testserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/server"
)

// Options are the transport settings of StartWith.
type Options struct {
	// HTTP is the transport configuration (zero fields take the defaults).
	HTTP server.HTTPConfig
	// TLS serves HTTPS with a fresh self-signed certificate for 127.0.0.1
	// (ALPN h2 and http/1.1) instead of h2c.
	TLS bool
}

// StartWith is Start with transport options. With TLS, URL is
// "https://127.0.0.1:PORT", HTTPClient trusts the certificate and negotiates
// HTTP/2 by ALPN, and CertPool holds the certificate.
func StartWith(t testing.TB, cfg server.Config, opts Options) *Server {
	t.Helper()
	var logs *testWriter
	if cfg.Logger == nil {
		logs = &testWriter{t: t}
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	stack := server.NewStack(cfg, opts.HTTP)
	hs := stack.HTTP
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	client := NewH2CClient()
	scheme := "http"
	var pool *x509.CertPool
	done := make(chan error, 1)
	if opts.TLS {
		certPEM, keyPEM := SelfSignedCert(t)
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		hs.TLSConfig.Certificates = []tls.Certificate{cert}
		pool = x509.NewCertPool()
		pool.AppendCertsFromPEM(certPEM)
		client = NewTLSClient(pool)
		scheme = "https"
	}
	go func() { done <- stack.Serve(ln) }()
	t.Cleanup(func() {
		client.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := hs.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
		if logs != nil {
			logs.close()
		}
	})
	return &Server{Server: stack.Server, URL: scheme + "://" + ln.Addr().String(), Addr: ln.Addr().String(), HTTPClient: client, CertPool: pool, HTTPServer: hs, EndCalls: stack.EndCalls}
}

// NewTLSClient returns a client that trusts roots and offers HTTP/2 and
// HTTP/1.1 by ALPN.
func NewTLSClient(roots *x509.CertPool) *http.Client {
	tr := &http.Transport{
		Protocols:       new(http.Protocols),
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
	}
	tr.Protocols.SetHTTP1(true)
	tr.Protocols.SetHTTP2(true)
	return &http.Client{Transport: tr}
}

// SelfSignedCert returns a fresh PEM certificate and key for 127.0.0.1 and
// localhost, valid for an hour.
func SelfSignedCert(t testing.TB) (certPEM, keyPEM []byte) {
	t.Helper()
	return SelfSignedCertValid(t, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
}

// SelfSignedCertValid is SelfSignedCert valid from notBefore to notAfter
// (an expired one, or one not valid yet).
func SelfSignedCertValid(t testing.TB, notBefore, notAfter time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "switchyard test"},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}
