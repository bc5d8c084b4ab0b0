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
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("switchyard", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", ":50051", "listen address (HTTP/1.1 and prior-knowledge HTTP/2 cleartext)")
	fs.StringVar(&o.routeDB, "route-db", "", "RouteGuide feature database (grpc-go example JSON); empty uses the embedded 100-feature map")
	fs.StringVar(&o.adminTokenFile, "admin-token-file", "", "file holding the bearer token that enables TeamsService writes (or set SWITCHYARD_ADMIN_TOKEN)")
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
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		return o, fmt.Errorf("-log-format %q: use text or json", o.logFormat)
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
	srv := server.New(server.Config{
		AdminToken:          adminToken,
		RouteDB:             routeDB,
		RouteGuide:          routeguide.Options{MaxRoutePoints: o.routeMaxPoints, NotesPerLocation: o.notesPerLocation, NoteLocations: o.noteLocations},
		MaxKeywordTextBytes: o.keywordMaxBytes,
		ReadMaxBytes:        o.readMaxBytes,
		CompressMinBytes:    o.compressMinBytes,
		Logger:              logger,
	})

	httpServer := server.NewHTTPServer(srv.Handler, server.HTTPConfig{
		ReadHeaderTimeout: o.readHeaderTimeout,
		IdleTimeout:       o.idleTimeout,
	}, logger)

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	logger.Info("switchyard serving", "addr", ln.Addr().String(), "services", len(srv.Services),
		"features", routeDB.Len(), "writes_enabled", adminToken != "")

	serveErr := make(chan error, 1)
	go func() { serveErr <- httpServer.Serve(server.BufferedListener(ln)) }()

	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
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
