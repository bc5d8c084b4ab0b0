// Package democlient holds what the demo clients in cmd/*-client share: the
// -addr and -protocol flags and the HTTP/2 client they call the server with.
package democlient

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"connectrpc.com/connect"
)

// Flags are the options every demo client takes.
type Flags struct {
	Addr     string
	Protocol string
	Timeout  time.Duration
}

// Protocols are the values -protocol accepts.
var Protocols = []string{"grpc", "grpcweb", "connect"}

// Parse reads the common flags (and any the caller added to fs) from args.
func (f *Flags) Parse(fs *flag.FlagSet, args []string) error {
	fs.StringVar(&f.Addr, "addr", "localhost:50051", "server address, host:port (or a base URL such as https://host:port)")
	fs.StringVar(&f.Protocol, "protocol", "grpc", "protocol: "+strings.Join(Protocols, ", "))
	fs.DurationVar(&f.Timeout, "timeout", 10*time.Second, "deadline of each call")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch f.Protocol {
	case "grpc", "grpcweb", "connect":
	default:
		return fmt.Errorf("-protocol %q: use one of %s", f.Protocol, strings.Join(Protocols, ", "))
	}
	if f.Addr == "" {
		return fmt.Errorf("-addr is empty: give host:port, e.g. localhost:50051")
	}
	if !strings.Contains(f.Addr, "://") {
		if _, port, err := net.SplitHostPort(f.Addr); err != nil || !isPort(port) {
			return fmt.Errorf("-addr %q: give host:port, e.g. localhost:50051, or a base URL such as https://host:port", f.Addr)
		}
	}
	if f.Timeout <= 0 {
		return fmt.Errorf("-timeout %v: give a positive duration, e.g. 10s", f.Timeout)
	}
	// The flag package stops at the first argument that is no flag, so
	// "teams-client Chicago -protocol grpc" would ask for the city
	// "-protocol".
	rest := fs.Args()
	if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
		rest = nil // the flags ended with "--": what follows is meant as written
	}
	for _, arg := range rest {
		if arg == "--" {
			break
		}
		if name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "="); strings.HasPrefix(arg, "-") && fs.Lookup(name) != nil {
			return fmt.Errorf("the flag %s comes after the arguments: put flags first, e.g. %s %s ARG", arg, fs.Name(), arg)
		}
	}
	return nil
}

// isPort reports whether s is a port number, 1 to 65535.
func isPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n <= 65535
}

// BaseURL is -addr as a URL; a bare host:port means cleartext HTTP.
func (f *Flags) BaseURL() string {
	if strings.Contains(f.Addr, "://") {
		return strings.TrimSuffix(f.Addr, "/")
	}
	return "http://" + f.Addr
}

// ClientOptions select -protocol for a generated connect client.
func (f *Flags) ClientOptions() []connect.ClientOption {
	switch f.Protocol {
	case "grpc":
		return []connect.ClientOption{connect.WithGRPC()}
	case "grpcweb":
		return []connect.ClientOption{connect.WithGRPCWeb()}
	}
	return nil
}

// HTTPClient speaks HTTP/2 (prior knowledge over cleartext, ALPN over TLS),
// which gRPC and bidirectional streams need.
func (f *Flags) HTTPClient() *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols), TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}
	tr.Protocols.SetUnencryptedHTTP2(true)
	tr.Protocols.SetHTTP2(true)
	return &http.Client{Transport: tr}
}

// Context is canceled on SIGINT or SIGTERM.
func Context() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// Main runs a client's run function with the process's arguments and
// standard streams, and exits 1 with the error if it fails.
func Main(name string, run func(args []string, stdin io.Reader, stdout io.Writer) error) {
	err := run(os.Args[1:], os.Stdin, os.Stdout)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
	os.Exit(1)
}
