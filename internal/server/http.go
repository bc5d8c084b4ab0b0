package server

import (
	"log/slog"
	"net/http"
	"time"
)

// HTTPConfig is the transport side of the server: what the switchyard
// binary and the test server both use, so tests exercise the same settings.
type HTTPConfig struct {
	// ReadHeaderTimeout bounds reading a request's headers (slowloris).
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes keep-alive connections that carry no request.
	IdleTimeout time.Duration
}

// Defaults of HTTPConfig.
const (
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
)

// NewHTTPServer returns an http.Server for h that speaks HTTP/1.1 and
// prior-knowledge HTTP/2 over cleartext (h2c), as gRPC clients expect.
func NewHTTPServer(h http.Handler, cfg HTTPConfig, logger *slog.Logger) *http.Server {
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if logger == nil {
		logger = slog.Default()
	}
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		Protocols:         new(http.Protocols),
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	hs.Protocols.SetHTTP1(true)
	hs.Protocols.SetUnencryptedHTTP2(true)
	return hs
}
