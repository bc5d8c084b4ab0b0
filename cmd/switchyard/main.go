// Command switchyard serves every Switchyard API — teams, greeter,
// routeguide, keywords and summator — on one port in gRPC, gRPC-Web and
// Connect, with health checks and server reflection.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"connectrpc.com/grpchealth"

	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/services/keywords"
	"github.com/switchyard/switchyard/services/routeguide"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "switchyard:", err)
		os.Exit(1)
	}
}

type options struct {
	addr              string
	routeDB           string
	adminTokenFile    string
	dataDir           string
	postgresDSN       string
	readMaxBytes      int
	compressMinBytes  int
	keywordMaxBytes   int
	routeMaxPoints    int
	notesPerLocation  int
	noteLocations     int
	readHeaderTimeout time.Duration
	idleTimeout       time.Duration
	shutdownGrace     time.Duration
	logFormat         string
	logLevel          slog.Level

	tlsCert, tlsKey  string
	unaryTimeout     time.Duration
	maxHeaderBytes   int
	h2MaxStreams     int
	h2MaxFrameSize   int
	h2ConnBuffer     int
	h2StreamBuffer   int
	h2PingInterval   time.Duration
	h2PingTimeout    time.Duration
	writeByteTimeout time.Duration
	drainDelay       time.Duration
	maxConnections   int
	http2Server      string
	corsOrigins      string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("switchyard", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", ":50051", "listen address (HTTP/1.1 and prior-knowledge HTTP/2 cleartext)")
	fs.StringVar(&o.routeDB, "route-db", "", "RouteGuide feature database (grpc-go example JSON); empty uses the embedded 100-feature map")
	fs.StringVar(&o.adminTokenFile, "admin-token-file", "", "file holding the bearer token that enables TeamsService writes (or set SWITCHYARD_ADMIN_TOKEN)")
	fs.StringVar(&o.dataDir, "data-dir", "", "directory of the SQLite team directory (teams.db); default $XDG_DATA_HOME/switchyard or ~/.local/share/switchyard")
	fs.StringVar(&o.postgresDSN, "postgres-dsn", "", "keep teams in this PostgreSQL database instead of SQLite (or set SWITCHYARD_POSTGRES_DSN)")
	fs.IntVar(&o.readMaxBytes, "read-max-bytes", server.DefaultReadMaxBytes, "largest request message accepted, in bytes")
	fs.IntVar(&o.compressMinBytes, "compress-min-bytes", server.DefaultCompressMinBytes, "smallest response that is compressed when the client accepts it, in bytes")
	fs.IntVar(&o.keywordMaxBytes, "keyword-max-bytes", keywords.DefaultMaxTextBytes, "largest GetKeywords text, in bytes")
	fs.IntVar(&o.routeMaxPoints, "route-max-points", routeguide.DefaultMaxRoutePoints, "most points in one RecordRoute call")
	fs.IntVar(&o.notesPerLocation, "chat-notes-per-location", routeguide.DefaultNotesPerLocation, "RouteChat notes kept per location (oldest evicted)")
	fs.IntVar(&o.noteLocations, "chat-locations", routeguide.DefaultNoteLocations, "RouteChat locations kept (least recently written evicted)")
	fs.DurationVar(&o.readHeaderTimeout, "read-header-timeout", server.DefaultReadHeaderTimeout, "time allowed to read a request's headers")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", server.DefaultIdleTimeout, "idle keep-alive connections are closed after this long")
	fs.DurationVar(&o.shutdownGrace, "shutdown-grace", 15*time.Second, "on SIGTERM/SIGINT, time in-flight calls get to finish")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.TextVar(&o.logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn or error")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate (chain) file: serve HTTP/2 and HTTP/1.1 over TLS (ALPN h2, TLS 1.2+) instead of cleartext; needs -tls-key")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM private key file of -tls-cert")
	fs.DurationVar(&o.unaryTimeout, "unary-timeout", server.DefaultUnaryTimeout, "deadline of a unary call whose client sets none or a longer one")
	fs.IntVar(&o.maxHeaderBytes, "max-header-bytes", server.DefaultMaxHeaderBytes, "largest request header block, in bytes")
	fs.IntVar(&o.h2MaxStreams, "http2-max-concurrent-streams", server.DefaultHTTP2MaxConcurrentStreams, "concurrent HTTP/2 streams (calls) per connection")
	fs.IntVar(&o.h2MaxFrameSize, "http2-max-read-frame-size", server.DefaultHTTP2MaxReadFrameSize, "largest HTTP/2 frame read, in bytes (16 KiB to 16 MiB)")
	fs.IntVar(&o.h2ConnBuffer, "http2-max-receive-buffer-per-conn", server.DefaultHTTP2MaxReceiveBufferPerConnection, "HTTP/2 flow-control window (unread request bytes) per connection")
	fs.IntVar(&o.h2StreamBuffer, "http2-max-receive-buffer-per-stream", server.DefaultHTTP2MaxReceiveBufferPerStream, "HTTP/2 flow-control window (unread request bytes) per stream")
	fs.DurationVar(&o.h2PingInterval, "http2-ping-interval", server.DefaultHTTP2SendPingTimeout, "ping an HTTP/2 connection silent for this long")
	fs.DurationVar(&o.h2PingTimeout, "http2-ping-timeout", server.DefaultHTTP2PingTimeout, "close an HTTP/2 connection whose ping goes unanswered this long")
	fs.DurationVar(&o.writeByteTimeout, "write-byte-timeout", server.DefaultWriteByteTimeout, "close an HTTP/2 connection that accepts no written byte for this long")
	fs.DurationVar(&o.drainDelay, "drain-delay", 0, "on SIGTERM/SIGINT, keep serving this long with health NOT_SERVING before refusing new connections (lets load balancers notice)")
	fs.StringVar(&o.http2Server, "http2-server", "switchyard", `HTTP/2 implementation: "switchyard" (internal/h2) or "net/http" (the standard library's, for comparison)`)
	fs.IntVar(&o.maxConnections, "max-connections", server.DefaultMaxConnections, "connections served at once; more wait to be accepted")
	fs.StringVar(&o.corsOrigins, "cors-origins", "*", "comma-separated origins whose browser pages may call the API (e.g. https://app.example.com); \"*\" allows any, \"\" none")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		return o, fmt.Errorf("-log-format %q: use text or json", o.logFormat)
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return o, errors.New("-tls-cert and -tls-key go together")
	}
	if o.http2Server != "switchyard" && o.http2Server != "net/http" {
		return o, fmt.Errorf(`-http2-server %q: want "switchyard" or "net/http"`, o.http2Server)
	}
	return o, nil
}

func run(args []string, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	// One line per call: batch the writes so logging stays off the hot path
	// (see BENCHMARKS.md); every line is still written, in order.
	logOut := server.NewCoalescingWriter(stderr, 1<<20)
	defer logOut.Close(5 * time.Second)
	logger := newLogger(o, logOut)

	routeDB, err := routeguide.LoadDB(o.routeDB)
	if err != nil {
		return err
	}
	adminToken, err := loadAdminToken(o.adminTokenFile)
	if err != nil {
		return err
	}
	teamStore, err := openTeams(o, logger)
	if err != nil {
		return err
	}
	defer func() {
		if err := teamStore.Close(); err != nil {
			logger.Warn("closing the team store", "err", err)
		}
	}()
	srv := server.NewStack(server.Config{
		Teams:               teamStore,
		AdminToken:          adminToken,
		RouteDB:             routeDB,
		RouteGuide:          routeguide.Options{MaxRoutePoints: o.routeMaxPoints, NotesPerLocation: o.notesPerLocation, NoteLocations: o.noteLocations},
		MaxKeywordTextBytes: o.keywordMaxBytes,
		ReadMaxBytes:        o.readMaxBytes,
		CompressMinBytes:    o.compressMinBytes,
		Logger:              logger,
		UnaryTimeout:        o.unaryTimeout,
		CORSOrigins:         splitOrigins(o.corsOrigins),
	}, server.HTTPConfig{
		ReadHeaderTimeout: o.readHeaderTimeout,
		IdleTimeout:       o.idleTimeout,

		MaxHeaderBytes:                     o.maxHeaderBytes,
		HTTP2MaxConcurrentStreams:          o.h2MaxStreams,
		HTTP2MaxReadFrameSize:              o.h2MaxFrameSize,
		HTTP2MaxReceiveBufferPerConnection: o.h2ConnBuffer,
		HTTP2MaxReceiveBufferPerStream:     o.h2StreamBuffer,
		HTTP2SendPingTimeout:               o.h2PingInterval,
		HTTP2PingTimeout:                   o.h2PingTimeout,
		WriteByteTimeout:                   o.writeByteTimeout,
		StdHTTP2:                           o.http2Server == "net/http",
		MaxConnections:                     o.maxConnections,
	})
	httpServer := srv.HTTP
	var certs *certReloader
	if o.tlsCert != "" {
		if certs, err = newCertReloader(o.tlsCert, o.tlsKey); err != nil {
			return err
		}
		httpServer.TLSConfig.GetCertificate = certs.getCertificate
	}

	// Signals are caught from before the first connection, so a SIGTERM
	// right after start drains instead of killing the process.
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	hangups := make(chan os.Signal, 1)
	signal.Notify(hangups, syscall.SIGHUP)
	go reloadOnHangup(hangups, certs, logger)

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	logger.Info("switchyard serving", "addr", ln.Addr().String(), "services", len(srv.Services),
		"features", routeDB.Len(), "writes_enabled", adminToken != "", "tls", o.tlsCert != "")

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	select {
	case err := <-serveErr:
		return err
	case sig := <-signals:
		logger.Info("draining", "signal", sig.String(), "grace", o.shutdownGrace)
	}

	// Drain: report NOT_SERVING so balancers move away, stop accepting, let
	// in-flight calls finish within the grace period. A second signal ends
	// the process at once.
	for _, name := range append([]string{""}, srv.Services...) {
		srv.Health.SetStatus(name, grpchealth.StatusNotServing)
	}
	if o.drainDelay > 0 {
		select {
		case <-time.After(o.drainDelay):
		case sig := <-signals:
			logger.Warn("forced exit", "signal", sig.String())
			os.Exit(2)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.shutdownGrace)
	defer cancel()
	go func() {
		sig := <-signals
		logger.Warn("forced exit", "signal", sig.String())
		os.Exit(2)
	}()
	if err := httpServer.Shutdown(ctx); err != nil {
		logger.Warn("grace period over; closing remaining connections", "err", err)
		_ = httpServer.Close()
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	logger.Info("stopped")
	return nil
}

// reloadOnHangup reads the TLS certificate again on every SIGHUP. Without
// TLS there is nothing to reload, and SIGHUP is only logged: it must not
// stop the server.
func reloadOnHangup(hangups <-chan os.Signal, certs *certReloader, logger *slog.Logger) {
	for range hangups {
		if certs == nil {
			logger.Info("SIGHUP: nothing to reload (no -tls-cert)")
			continue
		}
		leaf, err := certs.reload()
		if err != nil {
			logger.Error("TLS certificate reload failed; serving the previous certificate", "err", err)
			continue
		}
		logger.Info("TLS certificate reloaded", certAttrs(leaf)...)
	}
}

func newLogger(o options, w io.Writer) *slog.Logger {
	hopts := &slog.HandlerOptions{Level: o.logLevel}
	if o.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, hopts))
	}
	return slog.New(slog.NewTextHandler(w, hopts))
}

// loadAdminToken reads the admin token from path, or else from the
// SWITCHYARD_ADMIN_TOKEN environment variable. Empty means writes disabled.
func loadAdminToken(path string) (string, error) {
	if path == "" {
		return strings.TrimSpace(os.Getenv("SWITCHYARD_ADMIN_TOKEN")), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return "", fmt.Errorf("admin token file %s is empty", path)
	}
	return token, nil
}

// splitOrigins turns the -cors-origins flag into a list, dropping blanks.
func splitOrigins(flagValue string) []string {
	var origins []string
	for _, o := range strings.Split(flagValue, ",") {
		if o = strings.TrimSpace(o); o != "" {
			origins = append(origins, o)
		}
	}
	return origins
}
