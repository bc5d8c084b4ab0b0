package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"connectrpc.com/connect"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/switchyard/switchyard/internal/server"
)

// runHealthcheck is `switchyard healthcheck`: one gRPC health check of a
// server, for container HEALTHCHECKs and scripts. It exits 0 when the
// service is SERVING and 1, saying why, otherwise — NOT_SERVING, an unknown
// service, no answer within the timeout, or no server at all.
func runHealthcheck(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("switchyard healthcheck", flag.ContinueOnError)
	// A parse error is said once, by main; the flag package would print it
	// with the whole usage first. -h prints the usage below.
	fs.SetOutput(io.Discard)
	addr := fs.String("addr", "127.0.0.1:50051", "server to check, host:port (an empty host is 127.0.0.1)")
	service := fs.String("service", "", `health service name: "" (the whole server), "`+server.HealthLiveness+`" (SERVING while the process runs, drain included, unless its SQLite file was lost), "`+server.HealthReadiness+`" (NOT_SERVING from the start of a drain), or a service such as teams.v1.TeamsService`)
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long; 1ms to 1m")
	useTLS := fs.Bool("tls", false, "connect over TLS (HTTP/2 by ALPN) instead of cleartext HTTP/2")
	caFile := fs.String("tls-ca", "", "PEM file of the CA certificates to verify the server with (default: the system's)")
	insecure := fs.Bool("tls-insecure-skip-verify", false, "with -tls, do not verify the server's certificate (a self-signed one on the same host)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "usage: switchyard healthcheck [flags]\n\nAsks a switchyard's grpc.health.v1 service whether it is SERVING; exit 0 if so, 1 otherwise.")
			fs.SetOutput(stderr)
			fs.PrintDefaults()
			return err
		}
		// The flag package says of a -timeout that does not parse only
		// "parse error", not what would do ("3" lacks its unit).
		if name, value, ok := badFlagValue(err); ok && name == "timeout" {
			return fmt.Errorf("healthcheck: -timeout %s does not parse: want a duration from 1ms to 1m, such as 3s", value)
		}
		return fmt.Errorf("healthcheck: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("healthcheck: unexpected arguments %q", fs.Args())
	}
	if !*useTLS && (*caFile != "" || *insecure) {
		return errors.New("healthcheck: -tls-ca and -tls-insecure-skip-verify go with -tls")
	}
	if *caFile != "" && *insecure {
		return fmt.Errorf("healthcheck: -tls-ca verifies the server with %s, -tls-insecure-skip-verify not at all: give one", *caFile)
	}
	if *timeout < time.Millisecond || *timeout > time.Minute {
		return fmt.Errorf("healthcheck: -timeout %v: want 1ms to 1m", *timeout)
	}
	host, port, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("healthcheck: -addr %q: want host:port, such as 127.0.0.1:50051", *addr)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	target := net.JoinHostPort(host, port)

	tr := &http.Transport{Protocols: new(http.Protocols)}
	scheme := "http"
	if *useTLS {
		scheme = "https"
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: *insecure} //nolint:gosec // the operator's choice, for self-signed certificates
		if *caFile != "" {
			pem, err := os.ReadFile(*caFile)
			if err != nil {
				return fmt.Errorf("healthcheck: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return fmt.Errorf("healthcheck: %s holds no PEM certificate", *caFile)
			}
		}
		tr.TLSClientConfig = cfg
		tr.Protocols.SetHTTP2(true)
	} else {
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	defer tr.CloseIdleConnections()
	client := connect.NewClient[healthpb.HealthCheckRequest, healthpb.HealthCheckResponse](
		&http.Client{Transport: tr}, scheme+"://"+target+"/grpc.health.v1.Health/Check", connect.WithGRPC())

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	name := *service
	if name == "" {
		name = "(server)"
	}
	res, err := client.CallUnary(ctx, connect.NewRequest(&healthpb.HealthCheckRequest{Service: *service}))
	switch {
	case err == nil:
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("healthcheck %s %s: no answer within %v: %v", target, name, *timeout, err)
	case connect.CodeOf(err) == connect.CodeNotFound:
		return fmt.Errorf("healthcheck %s %s: the server knows no such health service", target, name)
	case !*useTLS && speaksTLS(target, *timeout):
		return fmt.Errorf("healthcheck %s %s: %v (the server speaks TLS: add -tls)", target, name, err)
	default:
		return fmt.Errorf("healthcheck %s %s: %v", target, name, err)
	}
	if st := res.Msg.GetStatus(); st != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("healthcheck %s %s: %s", target, name, st)
	}
	return nil
}

// speaksTLS reports whether target completes a TLS handshake, its
// certificate unchecked: asked after a cleartext check failed, it tells a
// TLS port (which drops cleartext HTTP/2 in one of several ways: a reset,
// an EOF, a connection never established) from a server that failed.
func speaksTLS(target string, timeout time.Duration) bool {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", target, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only whether it speaks TLS
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}
