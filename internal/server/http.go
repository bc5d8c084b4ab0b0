package server

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/switchyard/switchyard/internal/h2"
	"github.com/switchyard/switchyard/internal/outcome"
)

// HTTPConfig is the transport side of the server, as the switchyard
// binary's flags set it: what the binary and the test server both use, so
// tests exercise the same settings. internal/h2 applies it (h2.Config).
type HTTPConfig struct {
	// ReadHeaderTimeout bounds reading a request's headers (slowloris).
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes keep-alive connections that carry no request.
	IdleTimeout time.Duration

	// MaxHeaderBytes bounds a request's header block (HTTP/1.1 headers and
	// HTTP/2 header lists alike).
	MaxHeaderBytes int
	// HTTP/2 limits; see net/http.HTTP2Config. Together they bound what one
	// connection can pin: at most HTTP2MaxConcurrentStreams handler
	// goroutines and HTTP2MaxReceiveBufferPerConnection bytes of unread
	// request data.
	HTTP2MaxConcurrentStreams          int
	HTTP2MaxReadFrameSize              int
	HTTP2MaxReceiveBufferPerConnection int
	HTTP2MaxReceiveBufferPerStream     int
	// HTTP2SendPingTimeout is how long a connection may be silent before
	// the server pings it; HTTP2PingTimeout how long the ping may go
	// unanswered before the connection is closed (a vanished peer).
	HTTP2SendPingTimeout time.Duration
	HTTP2PingTimeout     time.Duration
	// WriteByteTimeout closes an HTTP/2 connection whose peer stops
	// reading from its socket while the server has data to write.
	WriteByteTimeout time.Duration
	// MaxConnections bounds the connections served at once (see
	// LimitListener); further ones wait in the kernel's accept queue.
	MaxConnections int
	// StdHTTP2 serves HTTP/2 with net/http's own server instead of
	// Switchyard's (internal/h2), with the same limits. For comparison.
	StdHTTP2 bool
	// SendWindowTimeout resets an HTTP/2 stream whose client opens no
	// flow-control window for this long (internal/h2 only; 0: never).
	SendWindowTimeout time.Duration
	// Observer receives internal/h2's call records and events (NewStack
	// sets the server's Telemetry).
	Observer outcome.Observer
	// MaxConnectionAge ends connections this old (±10%) gracefully, so
	// clients reconnect and load balancers can rebalance them;
	// MaxConnectionAgeGrace bounds how long calls in flight then get.
	// Zero is off. See h2.Config.
	MaxConnectionAge      time.Duration
	MaxConnectionAgeGrace time.Duration
}

// Defaults of HTTPConfig.
const (
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute

	DefaultMaxHeaderBytes                     = 64 << 10
	DefaultHTTP2MaxConcurrentStreams          = 100
	DefaultHTTP2MaxReadFrameSize              = 1 << 20
	DefaultHTTP2MaxReceiveBufferPerConnection = 1 << 20
	DefaultHTTP2MaxReceiveBufferPerStream     = 1 << 20
	DefaultHTTP2SendPingTimeout               = 1 * time.Minute
	DefaultHTTP2PingTimeout                   = 15 * time.Second
	DefaultWriteByteTimeout                   = 30 * time.Second
	DefaultMaxConnections                     = 4096
	// DefaultSendWindowTimeout: a client that grants a response no window
	// for a minute is not reading it.
	DefaultSendWindowTimeout = time.Minute
)

// applyDefaults fills the zero fields of cfg.
func (cfg *HTTPConfig) applyDefaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur(&cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	defDur(&cfg.IdleTimeout, DefaultIdleTimeout)
	def(&cfg.MaxHeaderBytes, DefaultMaxHeaderBytes)
	def(&cfg.HTTP2MaxConcurrentStreams, DefaultHTTP2MaxConcurrentStreams)
	def(&cfg.HTTP2MaxReadFrameSize, DefaultHTTP2MaxReadFrameSize)
	def(&cfg.HTTP2MaxReceiveBufferPerConnection, DefaultHTTP2MaxReceiveBufferPerConnection)
	def(&cfg.HTTP2MaxReceiveBufferPerStream, DefaultHTTP2MaxReceiveBufferPerStream)
	defDur(&cfg.HTTP2SendPingTimeout, DefaultHTTP2SendPingTimeout)
	defDur(&cfg.HTTP2PingTimeout, DefaultHTTP2PingTimeout)
	defDur(&cfg.WriteByteTimeout, DefaultWriteByteTimeout)
	def(&cfg.MaxConnections, DefaultMaxConnections)
}

// NewHTTPServer returns an http.Server for h that speaks HTTP/1.1 and
// prior-knowledge HTTP/2 over cleartext (h2c), as gRPC clients expect, and
// HTTP/2 by ALPN over TLS, with cfg's limits; its HTTP/2 connections are
// served by internal/h2 (net/http's own server with cfg.StdHTTP2).
func NewHTTPServer(h http.Handler, cfg HTTPConfig, logger *slog.Logger) *http.Server {
	hs, _ := newHTTPServer(h, cfg, logger, nil)
	return hs
}

// newHTTPServer is NewHTTPServer for h, whose unary procedures (paths)
// are unary, and the transport that serves hs's connections.
func newHTTPServer(h http.Handler, cfg HTTPConfig, logger *slog.Logger, unary []string) (*http.Server, *h2.Server) {
	cfg.applyDefaults()
	if logger == nil {
		logger = slog.Default()
	}
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		Protocols:         new(http.Protocols),
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		// A cleartext Serve ignores both.
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12},
	}
	hs.Protocols.SetHTTP1(true)
	hs.Protocols.SetUnencryptedHTTP2(true)
	hs.Protocols.SetHTTP2(true)
	transport := h2.Configure(hs, h2.Config{
		MaxConcurrentStreams:          uint32(cfg.HTTP2MaxConcurrentStreams),
		MaxReadFrameSize:              uint32(cfg.HTTP2MaxReadFrameSize),
		MaxHeaderListSize:             uint32(cfg.MaxHeaderBytes),
		MaxReceiveBufferPerStream:     int32(min(cfg.HTTP2MaxReceiveBufferPerStream, 1<<31-1)),
		MaxReceiveBufferPerConnection: int32(min(cfg.HTTP2MaxReceiveBufferPerConnection, 1<<31-1)),
		ReadHeaderTimeout:             cfg.ReadHeaderTimeout,
		IdleTimeout:                   cfg.IdleTimeout,
		SendPingTimeout:               cfg.HTTP2SendPingTimeout,
		PingTimeout:                   cfg.HTTP2PingTimeout,
		WriteTimeout:                  cfg.WriteByteTimeout,
		MaxConnectionAge:              cfg.MaxConnectionAge,
		MaxConnectionAgeGrace:         cfg.MaxConnectionAgeGrace,
		MaxConnections:                cfg.MaxConnections,
		StdHTTP2:                      cfg.StdHTTP2,
		SendWindowTimeout:             cfg.SendWindowTimeout,
		Observer:                      cfg.Observer,
		UnaryProcedures:               unary,
	})
	return hs, transport
}

// Stack is the whole server as the switchyard binary runs it: the
// assembled services, the http.Server that carries the transport settings
// and internal/h2, and the listener wrapping. The binary, the test server
// and the Connect conformance suite's server-under-test all build it here,
// so what they test is what ships.
type Stack struct {
	*Server
	// HTTP serves the connections; its TLSConfig takes a certificate (or
	// GetCertificate) to serve TLS. Shutdown and Close end Serve.
	HTTP      *http.Server
	transport *h2.Server
	endCalls  context.CancelCauseFunc // of the base context of net/http's requests
}

// NewStack assembles cfg's services behind the transport of hcfg.
func NewStack(cfg Config, hcfg HTTPConfig) *Stack {
	srv := New(cfg)
	hcfg.Observer = srv.Telemetry
	hs, transport := newHTTPServer(srv.Handler, hcfg, cfg.Logger, paths(srv.Procedures, true))
	// What net/http logs (TLS handshake failures: one per connection any
	// client breaks off) is sampled with the lines of rejected calls.
	hs.ErrorLog = srv.Telemetry.ErrorLog()
	// The telemetry's connection events, before the transport's own
	// (connection age, connections not yet read from).
	h2.OnConnState(hs, srv.Telemetry.ConnState)
	base, endCalls := context.WithCancelCause(context.Background())
	hs.BaseContext = func(net.Listener) context.Context { return base }
	return &Stack{Server: srv, HTTP: hs, transport: transport, endCalls: endCalls}
}

// EndCallsWithin is how long the calls EndCalls ends get to answer: give
// HTTP.Shutdown that long again before HTTP.Close. An aged internal/h2
// connection gives its calls as long.
const EndCallsWithin = h2.EndCallsWithin

// EndCalls ends every call still running, when a shutdown's grace is over
// (HTTP.Shutdown returned its context's error): each call's context is
// cancelled, and one served by internal/h2 that waits for request data is
// let go, so that the call answers UNAVAILABLE, which clients may retry,
// while its connection still carries the answer. HTTP.Close would cut it
// off mid-message instead, which a client reports as a protocol error.
// Then give HTTP.Shutdown EndCallsWithin for them to finish, and close
// what remains.
func (s *Stack) EndCalls() {
	s.transport.EndCalls()
	s.endCalls(outcome.ErrCallEnded)
}

// Drain begins a drain, ahead of HTTP.Shutdown: from now on every
// HTTP/1.1 response carries Connection: close, so clients and proxies
// stop reusing their keep-alive connections before the shutdown closes
// them (h2.Server.Drain). HTTP/2 connections are served as before, until
// the shutdown's GOAWAY.
func (s *Stack) Drain() { s.transport.Drain() }

// StopAccepting refuses new connections and waits, until ctx ends, for
// those already accepted to send their requests (h2.Server.StopAccepting):
// call it at the end of a drain, right before HTTP.Shutdown, which would
// drop the requests it read after it began.
func (s *Stack) StopAccepting(ctx context.Context) { s.transport.StopAccepting(ctx) }

// Serve serves ln until HTTP.Shutdown or HTTP.Close, through the
// transport's listener (at most MaxConnections connections at once), and
// over TLS when HTTP.TLSConfig holds a certificate.
func (s *Stack) Serve(ln net.Listener) error {
	ln = s.transport.Listener(ln)
	if tc := s.HTTP.TLSConfig; len(tc.Certificates) > 0 || tc.GetCertificate != nil {
		return s.HTTP.ServeTLS(ln, "", "")
	}
	return s.HTTP.Serve(ln)
}
