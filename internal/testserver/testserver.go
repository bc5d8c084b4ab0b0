// Package testserver starts Switchyard on a real loopback HTTP/2 (h2c)
// listener for tests, and names the protocols its clients can speak. Every
// test that needs a server uses it, so all of them exercise the same wiring
// as the switchyard binary.
package testserver

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"sync"
	"testing"

	"connectrpc.com/connect"

	"github.com/switchyard/switchyard/internal/server"
)

// Server is a running Switchyard.
type Server struct {
	*server.Server
	// URL is the base URL, "http://127.0.0.1:PORT".
	URL string
	// Addr is "127.0.0.1:PORT".
	Addr string
	// HTTPClient speaks prior-knowledge HTTP/2 over cleartext (h2c).
	HTTPClient *http.Client
	// CertPool holds the server's certificate when it serves TLS.
	CertPool *x509.CertPool
	// HTTPServer serves the listener; tests may shut it down early.
	HTTPServer *http.Server
	// EndCalls ends the calls running, as the binary does at the end of a
	// shutdown's grace (server.Stack.EndCalls).
	EndCalls func()
}

// Start serves cfg on a free loopback port until the test ends, over h2c
// with the default transport settings. Logs go to t.Log unless cfg.Logger
// is set.
func Start(t testing.TB, cfg server.Config) *Server {
	t.Helper()
	return StartWith(t, cfg, Options{})
}

// NewH2CClient returns a client that speaks only HTTP/2 over cleartext, as
// gRPC clients do.
func NewH2CClient() *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols), TLSClientConfig: &tls.Config{}}
	tr.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: tr}
}

// Protocol is a way for a connect client to call the server.
type Protocol struct {
	Name string
	Opts []connect.ClientOption
}

// Protocols are the three protocols every procedure must answer in, each
// with binary protobuf, plus Connect with JSON.
func Protocols() []Protocol {
	return []Protocol{
		{Name: "connect", Opts: nil},
		{Name: "connect+json", Opts: []connect.ClientOption{connect.WithProtoJSON()}},
		{Name: "grpc", Opts: []connect.ClientOption{connect.WithGRPC()}},
		{Name: "grpcweb", Opts: []connect.ClientOption{connect.WithGRPCWeb()}},
	}
}

// testWriter logs to t until the server is shut down. A call's log line is
// written once its response is on the wire, so it can come after the
// client (and the test) has seen the response and after the connection is
// gone; testing forbids t.Log once the test is over, so lines after
// Shutdown are dropped.
type testWriter struct {
	t      testing.TB
	mu     sync.Mutex
	closed bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log(string(p))
	}
	return len(p), nil
}

// close drops the lines written from now on.
func (w *testWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

var _ io.Writer = (*testWriter)(nil)
