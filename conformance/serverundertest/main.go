// Command serverundertest is Switchyard as the Connect conformance suite
// (connectrpc.com/conformance) sees it: the suite's ConformanceService,
// served by exactly the stack the switchyard binary runs. It mounts the
// service through server.Config.Mounts (so it gets the product's handler
// options: the log, deadline and safe-error interceptors, the read limit,
// the compression threshold, recover) and serves with server.NewStack and
// Stack.Serve (internal/h2 or net/http's HTTP/2 server, the http.Server
// settings, the connection limit, the buffered listener, TLS), with the
// binary's HTTPConfig defaults.
//
// The suite's runner (connectconformance --mode server) starts it once per
// server configuration: it writes one length-prefixed ServerCompatRequest
// to stdin, reads one length-prefixed ServerCompatResponse (where to
// connect) from stdout, sends its calls, and ends the process with SIGTERM.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"connectrpc.com/connect"

	conformancev1 "github.com/switchyard/switchyard/conformance/gen/connectrpc/conformance/v1"
	"github.com/switchyard/switchyard/internal/server"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "serverundertest:", err)
		os.Exit(1)
	}
}

// corsOrigins is the switchyard binary's -cors-origins default: any origin.
var corsOrigins = []string{"*"}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serverundertest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	http2Server := fs.String("http2-server", "switchyard", `HTTP/2 implementation, as the binary's flag: "switchyard" (internal/h2) or "net/http"`)
	var logLevel slog.Level
	fs.TextVar(&logLevel, "log-level", slog.LevelInfo, "level of the per-call log (debug, info, warn, error)")
	logFile := fs.String("log-file", "", "append the log to this file instead of stderr (the runner copies stderr to its own)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *http2Server != "switchyard" && *http2Server != "net/http" {
		return fmt.Errorf(`-http2-server %q: want "switchyard" or "net/http"`, *http2Server)
	}

	req := &conformancev1.ServerCompatRequest{}
	if err := readDelimited(stdin, req); err != nil {
		return fmt.Errorf("reading the ServerCompatRequest: %w", err)
	}
	if len(req.GetClientTlsCert()) > 0 {
		// Switchyard has no client-certificate option, so config.yaml does
		// not declare supportsTlsClientCerts and the runner never asks.
		return errors.New("TLS client certificates requested, but switchyard does not verify them")
	}

	logOut := stderr
	if *logFile != "" {
		// Appended: the runner starts several servers at once, and each
		// line is one write.
		f, err := os.OpenFile(*logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		logOut = f
	}
	logger := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: logLevel}))
	stack := server.NewStack(server.Config{
		// Zero (no limit requested) keeps the product's default limit.
		ReadMaxBytes: int(req.GetMessageReceiveLimit()),
		Logger:       logger,
		CORSOrigins:  corsOrigins,
		Mounts:       []func(...connect.HandlerOption) (string, http.Handler){mountConformanceService},
	}, server.HTTPConfig{StdHTTP2: *http2Server == "net/http"})

	res := &conformancev1.ServerCompatResponse{Host: "127.0.0.1"}
	if req.GetUseTls() {
		creds := req.GetServerCreds()
		if creds == nil {
			return errors.New("TLS requested without server credentials")
		}
		cert, err := tls.X509KeyPair(creds.GetCert(), creds.GetKey())
		if err != nil {
			return fmt.Errorf("the runner's TLS credentials: %w", err)
		}
		stack.HTTP.TLSConfig.Certificates = []tls.Certificate{cert}
		res.PemCert = creds.GetCert()
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	res.Port = uint32(ln.Addr().(*net.TCPAddr).Port)

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	serveErr := make(chan error, 1)
	go func() { serveErr <- stack.Serve(ln) }()
	if err := writeDelimited(stdout, res); err != nil {
		return fmt.Errorf("writing the ServerCompatResponse: %w", err)
	}

	select {
	case err := <-serveErr:
		return err
	case <-signals:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := stack.HTTP.Shutdown(ctx); err != nil {
		_ = stack.HTTP.Close()
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
