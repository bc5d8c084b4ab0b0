package server_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

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

// Over HTTP/1.1 every protocol works with either HTTP/2 server, gRPC
// included: its status comes in a chunked body's trailer, so a reply must
// not be held back until the handler ends (net/http would then send it
// with a Content-Length, and no trailer).
func TestEveryProtocolOverHTTP1(t *testing.T) {
	t.Parallel()
	for _, std := range []bool{false, true} {
		srv := testserver.StartWith(t, server.Config{}, testserver.Options{HTTP: server.HTTPConfig{StdHTTP2: std}})
		tr := &http.Transport{Protocols: new(http.Protocols)}
		tr.Protocols.SetHTTP1(true)
		t.Cleanup(tr.CloseIdleConnections)
		var http1 testserver.Server = *srv
		http1.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			res, err := tr.RoundTrip(r)
			if err == nil && res.Proto != "HTTP/1.1" {
				t.Errorf("%s answered over %s", r.URL.Path, res.Proto)
			}
			return res, err
		})}
		t.Run(fmt.Sprintf("net/http=%v", std), func(t *testing.T) {
			t.Parallel()
			testUnaryOver(t, &http1)
		})
	}
}

// A response is never lost to the connection closing after it. net/http
// closes an HTTP/1.x connection after a "Connection: close" request (and
// after every HTTP/1.0 one); over TLS the close first writes the close
// alert under a write deadline of "now", while the buffered connection
// may still hold the response.
func TestTLSResponsesSurviveConnectionClose(t *testing.T) {
	t.Parallel()
	srv := testserver.StartWith(t, server.Config{}, testserver.Options{TLS: true})
	roots := srv.HTTPClient.Transport.(*http.Transport).TLSClientConfig.RootCAs
	const body = `{"city":"Chicago"}`
	for _, tc := range []struct {
		name, version string
		alpn          []string
	}{
		{"http/1.1 connection close", "HTTP/1.1", []string{"http/1.1"}},
		{"http/1.0 without alpn", "HTTP/1.0", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lost := 0
			for i := range 200 {
				conn, err := tls.Dial("tcp", srv.Addr, &tls.Config{RootCAs: roots, NextProtos: tc.alpn, ServerName: "127.0.0.1"})
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(conn, "POST /teams.v1.TeamsService/GetTeam %s\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
					tc.version, len(body), body)
				_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				got, err := io.ReadAll(conn)
				conn.Close()
				if !strings.HasPrefix(string(got), tc.version+" 200 ") || !strings.HasSuffix(strings.ReplaceAll(string(got), " ", ""), `{"city":"Chicago","nickname":"Jackals"}`) {
					if lost++; lost <= 3 {
						t.Errorf("request %d: got %q (read error %v)", i, got, err)
					}
				}
			}
			if lost > 0 {
				t.Errorf("%d of 200 responses lost", lost)
			}
		})
	}
}

// The last frame a server sends before it closes a TLS connection, the
// final GOAWAY, reaches the client: after an idle timeout and in a
// graceful shutdown.
func TestTLSFinalGoAwayReachesClient(t *testing.T) {
	t.Parallel()
	// untilFinalGoAway reads frames, answering PINGs, until a GOAWAY that
	// names a real last stream (a graceful shutdown's first one names the
	// largest ID), and then expects the connection to end.
	untilFinalGoAway := func(t *testing.T, c *testserver.H2Conn) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			f, err := c.ReadFrame(time.Until(deadline))
			if err != nil {
				t.Fatalf("no final GOAWAY before the connection ended: %v", err)
			}
			switch f := f.(type) {
			case *http2.PingFrame:
				if !f.IsAck() {
					_ = c.Fr.WritePing(true, f.Data)
				}
			case *http2.GoAwayFrame:
				if f.LastStreamID == 1<<31-1 {
					continue
				}
				if f.ErrCode != http2.ErrCodeNo {
					t.Errorf("final GOAWAY %v, want NO_ERROR", f.ErrCode)
				}
				if _, err := c.ReadFrame(5 * time.Second); err == nil {
					t.Error("a frame followed the final GOAWAY")
				}
				return
			}
		}
	}
	t.Run("idle timeout", func(t *testing.T) {
		t.Parallel()
		srv := testserver.StartWith(t, server.Config{}, testserver.Options{TLS: true, HTTP: server.HTTPConfig{IdleTimeout: 200 * time.Millisecond}})
		for range 20 {
			untilFinalGoAway(t, testserver.DialH2TLS(t, srv.Addr, srv.CertPool))
		}
	})
	t.Run("graceful shutdown", func(t *testing.T) {
		t.Parallel()
		srv := testserver.StartWith(t, server.Config{}, testserver.Options{TLS: true})
		c := testserver.DialH2TLS(t, srv.Addr, srv.CertPool)
		go func() { _ = srv.HTTPServer.Shutdown(context.Background()) }()
		untilFinalGoAway(t, c)
	})
}
