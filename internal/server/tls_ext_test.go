package server_test

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	greeterv1 "github.com/switchyard/switchyard/gen/greeter/v1"
	"github.com/switchyard/switchyard/gen/greeter/v1/greeterv1connect"
	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/testserver"
)

// Over TLS every protocol works, HTTP/2 is chosen by ALPN, HTTP/1.1 remains
// for clients that offer only it, and TLS below 1.2 is refused.
func TestTLS(t *testing.T) {
	t.Parallel()
	srv := testserver.StartWith(t, server.Config{}, testserver.Options{TLS: true})
	if !strings.HasPrefix(srv.URL, "https://") {
		t.Fatalf("URL %s is not https", srv.URL)
	}
	roots := srv.HTTPClient.Transport.(*http.Transport).TLSClientConfig.RootCAs

	// Every method in every protocol, as over h2c.
	t.Run("unary", func(t *testing.T) { testUnaryOver(t, srv) })

	t.Run("alpn", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			offer []string
			want  string
		}{{[]string{"h2", "http/1.1"}, "h2"}, {[]string{"http/1.1"}, "http/1.1"}} {
			conn, err := tls.Dial("tcp", srv.Addr, &tls.Config{RootCAs: roots, NextProtos: tc.offer, ServerName: "127.0.0.1"})
			if err != nil {
				t.Fatal(err)
			}
			if got := conn.ConnectionState().NegotiatedProtocol; got != tc.want {
				t.Errorf("offering %q negotiated %q, want %q", tc.offer, got, tc.want)
			}
			conn.Close()
		}
	})

	t.Run("tls1.1 refused", func(t *testing.T) {
		t.Parallel()
		conn, err := tls.Dial("tcp", srv.Addr, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
		if err == nil {
			conn.Close()
			t.Fatal("a TLS 1.1 handshake succeeded")
		}
	})

	t.Run("connect over http/1.1", func(t *testing.T) {
		t.Parallel()
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, Protocols: new(http.Protocols)}
		tr.Protocols.SetHTTP1(true)
		defer tr.CloseIdleConnections()
		var proto string
		client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			res, err := tr.RoundTrip(r)
			if err == nil {
				proto = res.Proto
			}
			return res, err
		})}
		for _, opts := range [][]connect.ClientOption{nil, {connect.WithGRPCWeb()}} {
			res, err := greeterv1connect.NewGreeterServiceClient(client, srv.URL, opts...).
				SayHello(ctx(t), connect.NewRequest(&greeterv1.SayHelloRequest{Name: "tls"}))
			if err != nil || res.Msg.GetMessage() != "Hello, tls!" || proto != "HTTP/1.1" {
				t.Errorf("SayHello over %s = %v, %v", proto, res, err)
			}
		}
	})

	t.Run("grpc-go", func(t *testing.T) {
		t.Parallel()
		conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var res greeterv1.SayHelloResponse
		if err := conn.Invoke(ctx(t), greeterv1connect.GreeterServiceSayHelloProcedure, &greeterv1.SayHelloRequest{Name: "grpc-go"}, &res); err != nil || res.GetMessage() != "Hello, grpc-go!" {
			t.Errorf("grpc-go over TLS: %v, %v", res.GetMessage(), err)
		}
	})
}

// testUnaryOver calls a unary and a streaming method in every protocol.
func testUnaryOver(t *testing.T, srv *testserver.Server) {
	forEachProtocol(t, srv, func(t *testing.T, c clients) {
		res, err := c.greeter.SayHello(ctx(t), connect.NewRequest(&greeterv1.SayHelloRequest{Name: "tls"}))
		if err != nil || res.Msg.GetMessage() != "Hello, tls!" {
			t.Errorf("SayHello = %v, %v", res, err)
		}
		stream, err := c.routeguide.ListFeatures(ctx(t), connect.NewRequest(wholeMap))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for stream.Receive() {
			n++
		}
		if stream.Err() != nil || n != 100 {
			t.Errorf("ListFeatures = %d features, %v", n, stream.Err())
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// HTTPConfig.StdHTTP2 (the binary's -http2-server net/http) serves with
// net/http's own HTTP/2 server: every protocol still works over h2c and
// TLS, under the same limits.
func TestStdHTTP2Server(t *testing.T) {
	t.Parallel()
	for _, useTLS := range []bool{false, true} {
		srv := testserver.StartWith(t, server.Config{}, testserver.Options{TLS: useTLS, HTTP: server.HTTPConfig{StdHTTP2: true}})
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) { testUnaryOver(t, srv) })
	}
	srv := testserver.StartWith(t, server.Config{}, testserver.Options{HTTP: server.HTTPConfig{StdHTTP2: true}})
	c := testserver.DialH2(t, srv.Addr)
	// The same limits; and it is net/http's server answering: it pads the
	// header list limit (internal/h2 advertises MaxHeaderBytes exactly).
	if got := c.Settings[http2.SettingMaxConcurrentStreams]; got != server.DefaultHTTP2MaxConcurrentStreams {
		t.Errorf("SETTINGS_MAX_CONCURRENT_STREAMS = %d, want %d", got, server.DefaultHTTP2MaxConcurrentStreams)
	}
	if got := c.Settings[http2.SettingMaxHeaderListSize]; got <= server.DefaultMaxHeaderBytes {
		t.Errorf("SETTINGS_MAX_HEADER_LIST_SIZE = %d: internal/h2's %d, not net/http's", got, server.DefaultMaxHeaderBytes)
	}
}
