package server_test

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/net/http2"

	routeguidev1 "github.com/switchyard/switchyard/gen/routeguide/v1"
	"github.com/switchyard/switchyard/gen/routeguide/v1/routeguidev1connect"
	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/testserver"
	"github.com/switchyard/switchyard/services/routeguide"
)

// A server stream that outlives a shutdown's grace on net/http's server,
// over HTTP/1.1 and as -http2-server net/http, is ended with an answer,
// UNAVAILABLE, in every protocol (EndCalls), not cut off by the close that
// follows, and its record says unavailable. The client reads one message,
// the server ends the calls, then the client reads on: the stream is 10
// MiB, more than the socket buffers between them hold, so its handler is
// still sending when the calls are ended.
func TestEndCallsAnswersServerStreamsOnNetHTTP(t *testing.T) {
	t.Parallel()
	const features = 10000
	var b strings.Builder
	b.WriteString("[")
	name := strings.Repeat("n", 1024)
	for i := range features {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"location":{"latitude":%d,"longitude":1},"name":%q}`, i, name)
	}
	b.WriteString("]")
	db, err := routeguide.ParseDB([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	all := &routeguidev1.ListFeaturesRequest{Lo: &routeguidev1.Point{Latitude: 0, Longitude: 0}, Hi: &routeguidev1.Point{Latitude: features, Longitude: 1}}
	for _, transport := range []string{"HTTP/1.1", "net/http HTTP/2"} {
		for _, p := range testserver.Protocols() {
			t.Run(transport+" "+p.Name, func(t *testing.T) {
				t.Parallel()
				endServerStream(t, db, all, transport == "net/http HTTP/2", p)
			})
		}
	}
}

// endServerStream reads one message of a ListFeatures of all features,
// ends the server's calls, and reads on: the stream must end unavailable
// before its last feature, and its record say so (the answer was sent).
func endServerStream(t *testing.T, db *routeguide.DB, all *routeguidev1.ListFeaturesRequest, stdHTTP2 bool, p testserver.Protocol) {
	// Ending the calls is for good: a server each.
	logs := &lockedBuffer{}
	srv := testserver.StartWith(t, server.Config{RouteDB: db, Logger: slog.New(slog.NewJSONHandler(logs, nil))},
		testserver.Options{HTTP: server.HTTPConfig{StdHTTP2: stdHTTP2}})
	// A small receive buffer, fixed: the kernel's autotuning could
	// otherwise take in most of the stream.
	dialer := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 64<<10) }); cerr != nil {
			return cerr
		}
		return err
	}}
	tr := &http.Transport{DialContext: dialer.DialContext} // HTTP/1.1
	if stdHTTP2 {
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	defer tr.CloseIdleConnections()
	client := routeguidev1connect.NewRouteGuideServiceClient(&http.Client{Transport: tr}, srv.URL, p.Opts...)
	stream, err := client.ListFeatures(testserver.CallContext(t), connect.NewRequest(all))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if !stream.Receive() {
		t.Fatalf("no first feature: %v", stream.Err())
	}
	srv.EndCalls()
	n := 1
	for stream.Receive() {
		n++
	}
	err = stream.Err()
	if connect.CodeOf(err) != connect.CodeUnavailable || !strings.Contains(err.Error(), "the server ended the call") || n == db.Len() {
		t.Errorf("ListFeatures, ended by the server after its first message: %v after %d of %d features, want unavailable saying the server ended it, before the last", err, n, db.Len())
	}
	// Its line comes once the answer is on the wire: the code the client got.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		line := ""
		for l := range strings.Lines(logs.String()) {
			if strings.Contains(l, `"msg":"rpc"`) && strings.Contains(l, "ListFeatures") {
				line = l
			}
		}
		if line != "" {
			if !strings.Contains(line, `"code":"unavailable"`) {
				t.Errorf("the call's line: %s, want code unavailable, as its client got", line)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line for the call:\n%s", logs.String())
		}
	}
}

// A unary call whose request has not all come when the server ends its
// calls has run none of its code: it is refused (RST_STREAM
// REFUSED_STREAM, which gRPC and Connect clients report as UNAVAILABLE),
// in every protocol, and its record says unavailable, not the canceled
// read its handler would otherwise answer.
func TestEndCallsRefusesUnaryCallsStillArriving(t *testing.T) {
	t.Parallel()
	for _, contentType := range []string{"application/grpc", "application/grpc-web+proto", "application/proto"} {
		t.Run(contentType, func(t *testing.T) {
			t.Parallel()
			logs := &lockedBuffer{}
			srv := testserver.Start(t, server.Config{Logger: slog.New(slog.NewJSONHandler(logs, nil))})
			c := testserver.DialH2(t, srv.Addr)
			c.WriteHeaders(1, false, ":method", "POST", ":scheme", "http", ":authority", "endcalls.test",
				":path", "/routeguide.v1.RouteGuideService/GetFeature", "content-type", contentType, "te", "trailers")
			part := []byte{0, 0, 0, 0, 10, 8, 1} // a prefix that announces 10 bytes, and 2 of them
			if contentType == "application/proto" {
				part = []byte{8}
			}
			if err := c.Fr.WriteData(1, false, part); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond) // its handler is reading
			srv.EndCalls()
			for {
				f, err := c.ReadFrame(5 * time.Second)
				if err != nil {
					t.Fatalf("waiting for the call's end: %v", err)
				}
				if f.Header().StreamID != 1 {
					continue
				}
				rst, ok := f.(*http2.RSTStreamFrame)
				if !ok || rst.ErrCode != http2.ErrCodeRefusedStream {
					t.Fatalf("the call still arriving: %v, want RST_STREAM REFUSED_STREAM", f)
				}
				break
			}
			for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), `"code":"unavailable"`); time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("no line saying unavailable:\n%s", logs.String())
				}
			}
		})
	}
}

// A client or bidi stream whose handler waits for its client's next message when
// the server ends its calls, on net/http's server (HTTP/1.1, or HTTP/2 as
// -http2-server net/http), is let go only when the connection closes:
// net/http's request body does not watch the context. Its UNAVAILABLE
// then never reaches the client, and its record says so: the connection
// ended first (end conn_closed, code unavailable, the server closed it),
// not sent.
func TestEndCallsRecordsStreamsCutOffOnNetHTTP(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ transport, procedure string }{
		{"HTTP/1.1", "RecordRoute"}, {"net/http HTTP/2", "RecordRoute"}, {"net/http HTTP/2", "RouteChat"}, // bidi needs HTTP/2
	} {
		transport := c.transport
		t.Run(transport+" "+c.procedure, func(t *testing.T) {
			t.Parallel()
			logs := &lockedBuffer{}
			srv := testserver.StartWith(t, server.Config{Logger: slog.New(slog.NewJSONHandler(logs, nil))},
				testserver.Options{HTTP: server.HTTPConfig{StdHTTP2: true}})
			msg := []byte{0, 0, 0, 0, 2, 8, 1} // one RecordRouteRequest{latitude: 1}
			if c.procedure == "RouteChat" {
				msg = []byte{0, 0, 0, 0, 4, 0x12, 2, 'h', 'i'} // one RouteChatRequest{message: "hi"}
			}
			var conn net.Conn
			if transport == "HTTP/1.1" {
				nc, err := net.Dial("tcp", srv.Addr)
				if err != nil {
					t.Fatal(err)
				}
				defer nc.Close()
				if _, err := fmt.Fprintf(nc, "POST /routeguide.v1.RouteGuideService/%s HTTP/1.1\r\nHost: endcalls.test\r\n"+
					"Content-Type: application/connect+proto\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", c.procedure, len(msg), msg); err != nil {
					t.Fatal(err)
				}
				conn = nc
			} else {
				h := testserver.DialH2(t, srv.Addr)
				h.WriteHeaders(1, false, ":method", "POST", ":scheme", "http", ":authority", "endcalls.test",
					":path", "/routeguide.v1.RouteGuideService/"+c.procedure, "content-type", "application/grpc", "te", "trailers")
				if err := h.Fr.WriteData(1, false, msg); err != nil {
					t.Fatal(err)
				}
				conn = h.Conn
			}
			time.Sleep(100 * time.Millisecond) // its handler read the message, and waits for the next
			srv.EndCalls()
			time.Sleep(100 * time.Millisecond) // the handler is still waiting
			if err := srv.HTTPServer.Close(); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.Copy(io.Discard, conn); err != nil {
				t.Fatalf("reading to the connection's close: %v", err)
			}
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				line := ""
				for l := range strings.Lines(logs.String()) {
					if strings.Contains(l, `"msg":"rpc"`) && strings.Contains(l, c.procedure) {
						line = l
					}
				}
				if line != "" {
					if !strings.Contains(line, `"code":"unavailable"`) || !strings.Contains(line, `"end":"conn_closed"`) {
						t.Errorf("the call's line: %s, want code unavailable and end conn_closed: its answer never went out", line)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no line for the call:\n%s", logs.String())
				}
			}
		})
	}
}

// A unary call whose body has not all come when the server ends its
// calls, served by net/http (HTTP/1.1, or HTTP/2 as -http2-server
// net/http), is let go by its body's read deadline (the call's), and its
// DEADLINE_EXCEEDED goes out on a connection still open: its record says
// so (sent, deadline_exceeded), not that the connection closed first,
// which a read cut off by the server's close would mean.
func TestEndCallsRecordsUnaryBodyDeadlineOnNetHTTPAsSent(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{"HTTP/1.1", "net/http HTTP/2"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			logs := &lockedBuffer{}
			srv := testserver.StartWith(t, server.Config{UnaryTimeout: 400 * time.Millisecond, Logger: slog.New(slog.NewJSONHandler(logs, nil))},
				testserver.Options{HTTP: server.HTTPConfig{StdHTTP2: true}})
			var answered func() bool
			if transport == "HTTP/1.1" {
				conn, err := net.Dial("tcp", srv.Addr)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				// Headers, a body of 100 bytes promised, one sent.
				fmt.Fprint(conn, "POST /greeter.v1.GreeterService/SayHello HTTP/1.1\r\nHost: endcalls.test\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
				answered = func() bool {
					_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
					answer, err := io.ReadAll(conn)
					return err == nil && strings.Contains(string(answer), `"code":"deadline_exceeded"`)
				}
			} else {
				c := testserver.DialH2(t, srv.Addr)
				c.WriteHeaders(1, false, ":method", "POST", ":scheme", "http", ":authority", "endcalls.test",
					":path", "/greeter.v1.GreeterService/SayHello", "content-type", "application/json")
				if err := c.Fr.WriteData(1, false, []byte("{")); err != nil {
					t.Fatal(err)
				}
				answered = func() bool {
					for {
						f, err := c.ReadFrame(5 * time.Second)
						if err != nil {
							return false
						}
						if h, ok := f.(*http2.MetaHeadersFrame); ok && h.StreamID == 1 {
							return h.PseudoValue("status") == "504"
						}
					}
				}
			}
			time.Sleep(100 * time.Millisecond) // its handler reads the body
			srv.EndCalls()
			if !answered() {
				t.Fatalf("the call got no DEADLINE_EXCEEDED answer:\n%s", logs.String())
			}
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				line := ""
				for l := range strings.Lines(logs.String()) {
					if strings.Contains(l, `"msg":"rpc"`) && strings.Contains(l, "SayHello") {
						line = l
					}
				}
				if line != "" {
					if !strings.Contains(line, `"code":"deadline_exceeded"`) || strings.Contains(line, `"end":`) {
						t.Errorf("the call's line: %s, want code deadline_exceeded and no end: its answer went out", line)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no line for the call:\n%s", logs.String())
				}
			}
		})
	}
}
