package grpcunary_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/net/http/httpguts"
	"google.golang.org/protobuf/proto"

	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/internal/grpcunary"
	"github.com/switchyard/switchyard/internal/h2"
	"github.com/switchyard/switchyard/internal/testserver"
)

const procedure = "/teams.v1.TeamsService/GetTeam"

// testImpl answers as the request's city asks, covering what a handler
// can do to a response: headers and trailers (protocol ones included,
// which connect-go drops), errors with metadata and details, a bare
// error, a panic, a nil response, a message that cannot be marshalled, a
// response large enough to compress, and waiting out the deadline.
func testImpl(ctx context.Context, req *connect.Request[teamsv1.GetTeamRequest]) (*connect.Response[teamsv1.GetTeamResponse], error) {
	city := req.Msg.GetCity()
	switch city {
	case "headers":
		res := connect.NewResponse(&teamsv1.GetTeamResponse{City: city, Nickname: strings.Join([]string{
			req.Header().Get("X-Echo"), req.Header().Get("Host"), req.Header().Get("Content-Type"),
			req.Header().Get("Grpc-Timeout"), fmt.Sprint(len(req.Header())),
		}, "|")})
		res.Header().Set("X-Custom", "a")
		res.Header().Add("X-Custom", "b")
		res.Header().Set("Grpc-Status", "9")
		res.Header().Set("Content-Type", "text/plain")
		res.Trailer().Set("X-Trailer", "t")
		res.Trailer().Set("Grpc-Message", "not this")
		return res, nil
	case "error":
		err := connect.NewError(connect.CodeNotFound, errors.New("no team plays in \"Gøtham\" 100%\n"))
		err.Meta().Set("X-Meta", "m")
		err.Meta().Set("Grpc-Message", "not this")
		return nil, err
	case "details":
		err := connect.NewError(connect.CodeFailedPrecondition, errors.New("with details"))
		detail, derr := connect.NewErrorDetail(&teamsv1.GetTeamRequest{City: "detail"})
		if derr != nil {
			return nil, derr
		}
		err.AddDetail(detail)
		empty, derr := connect.NewErrorDetail(&teamsv1.GetTeamRequest{})
		if derr != nil {
			return nil, derr
		}
		err.AddDetail(empty)
		return nil, err
	case "bare":
		return nil, errors.New("a library's error")
	case "panic":
		panic("boom")
	case "nil":
		return nil, nil
	case "badutf8":
		return connect.NewResponse(&teamsv1.GetTeamResponse{Nickname: "\xff"}), nil
	case "big":
		return connect.NewResponse(&teamsv1.GetTeamResponse{City: city, Nickname: strings.Repeat("big ", 1000)}), nil
	case "deadline":
		_, ok := ctx.Deadline()
		if !ok {
			return nil, connect.NewError(connect.CodeInternal, errors.New("no deadline"))
		}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return connect.NewResponse(&teamsv1.GetTeamResponse{City: city, Nickname: "fine"}), nil
}

const readMax, compressMin = 4096, 1024

func recovered(_ context.Context, _ connect.Spec, _ http.Header, p any) error {
	return connect.NewError(connect.CodeInternal, fmt.Errorf("recovered: %v", p))
}

// servers are two internal/h2 servers of testImpl: connect-go alone, and
// connect-go behind this package, whose Wrap counts the calls it served.
func servers(t testing.TB) (connectURL, plainURL string, served *atomic.Int64) {
	served = new(atomic.Int64)
	t.Helper()
	next := connect.NewUnaryHandler(procedure, testImpl,
		connect.WithReadMaxBytes(readMax), connect.WithCompressMinBytes(compressMin), connect.WithRecover(recovered))
	plain := grpcunary.New(procedure, testImpl, next, grpcunary.Options{
		ReadMaxBytes: readMax, CompressMinBytes: compressMin,
		Wrap: func(ctx context.Context, _, _ string, h http.Header, handler func(context.Context) error) (err error) {
			served.Add(1)
			defer func() {
				if p := recover(); p != nil {
					err = recovered(ctx, connect.Spec{}, h, p)
				}
			}()
			return handler(ctx)
		},
	})
	return serve(t, next), serve(t, plain), served
}

func serve(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h, Protocols: new(http.Protocols)}
	hs.Protocols.SetHTTP1(true)
	hs.Protocols.SetUnencryptedHTTP2(true)
	s := h2.Configure(hs, h2.Config{})
	ln = s.Listener(ln)
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	t.Cleanup(func() {
		_ = hs.Close()
		<-done
	})
	return "http://" + ln.Addr().String()
}

func h2cClient() *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols), TLSClientConfig: &tls.Config{}, DisableCompression: true}
	tr.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func envelope(flags byte, msg []byte) []byte {
	b := make([]byte, 5, 5+len(msg))
	b[0] = flags
	binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
	return append(b, msg...)
}

func marshal(t *testing.T, city string) []byte {
	t.Helper()
	b, err := proto.Marshal(&teamsv1.GetTeamRequest{City: city})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// call sends a request for procedure to url, from the host
// "switchyard.test" whatever the port.
func call(c *http.Client, url, method string, header http.Header, body []byte) testserver.Answer {
	header = header.Clone()
	header.Set("Host", "switchyard.test")
	return testserver.Ask(c, method, url+procedure, header, body)
}

func grpcHeader(kv ...string) http.Header {
	h := http.Header{"Content-Type": {"application/grpc"}, "Te": {"trailers"}, "X-Echo": {"echo"}}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(h, kv[i])
			continue
		}
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// TestSameAnswersAsConnect sends each request to connect-go alone and to
// this package in front of it, and wants the same status, headers, body
// and trailers: the handler's every kind of answer, in the plain case, and
// every request outside it (which must reach connect-go untouched, the
// bytes already read included).
func TestSameAnswersAsConnect(t *testing.T) {
	connectURL, plainURL, served := servers(t)
	c := h2cClient()
	ok := envelope(0, marshal(t, "ok"))
	cases := []struct {
		name   string
		method string
		header http.Header
		body   []byte
	}{
		// The plain case: served here.
		{"ok", "POST", grpcHeader(), ok},
		{"grpc+proto", "POST", grpcHeader("Content-Type", "application/grpc+proto"), ok},
		{"empty message", "POST", grpcHeader(), envelope(0, nil)},
		{"headers and trailers", "POST", grpcHeader("Grpc-Timeout", "5S"), envelope(0, marshal(t, "headers"))},
		{"error with metadata", "POST", grpcHeader(), envelope(0, marshal(t, "error"))},
		{"error with details", "POST", grpcHeader(), envelope(0, marshal(t, "details"))},
		{"bare error", "POST", grpcHeader(), envelope(0, marshal(t, "bare"))},
		{"panic", "POST", grpcHeader(), envelope(0, marshal(t, "panic"))},
		{"nil response", "POST", grpcHeader(), envelope(0, marshal(t, "nil"))},
		{"unmarshallable response", "POST", grpcHeader(), envelope(0, marshal(t, "badutf8"))},
		{"big, identity", "POST", grpcHeader(), envelope(0, marshal(t, "big"))},
		{"big, gzip accepted", "POST", grpcHeader("Grpc-Accept-Encoding", "gzip"), envelope(0, marshal(t, "big"))},
		{"big, gzip among others", "POST", grpcHeader("Grpc-Accept-Encoding", "br, deflate,gzip"), envelope(0, marshal(t, "big"))},
		{"small, gzip accepted", "POST", grpcHeader("Grpc-Accept-Encoding", "identity,gzip"), ok},
		{"unknown accepted encodings", "POST", grpcHeader("Grpc-Accept-Encoding", "br"), ok},
		{"identity request", "POST", grpcHeader("Grpc-Encoding", "identity"), ok},
		{"deadline", "POST", grpcHeader("Grpc-Timeout", "30m"), envelope(0, marshal(t, "deadline"))},
		{"unbounded timeout", "POST", grpcHeader("Grpc-Timeout", "99999999H"), envelope(0, marshal(t, "headers"))},
		// Outside the plain case: connect-go answers.
		{"gzip request", "POST", grpcHeader("Grpc-Encoding", "gzip"), envelope(1, gzipped(t, marshal(t, "ok")))},
		{"unknown request encoding", "POST", grpcHeader("Grpc-Encoding", "br"), ok},
		{"json", "POST", grpcHeader("Content-Type", "application/grpc+json"), envelope(0, []byte(`{"city":"ok"}`))},
		{"connect protocol", "POST", grpcHeader("Content-Type", "application/proto", "Te", ""), marshal(t, "ok")},
		{"unknown content type", "POST", grpcHeader("Content-Type", "text/plain"), ok},
		{"GET", "GET", grpcHeader(), nil},
		{"bad timeout", "POST", grpcHeader("Grpc-Timeout", "soon"), ok},
		{"timeout too long", "POST", grpcHeader("Grpc-Timeout", "123456789S"), ok},
		{"zero timeout", "POST", grpcHeader("Grpc-Timeout", "0n"), ok},
		{"no message", "POST", grpcHeader(), nil},
		{"short prefix", "POST", grpcHeader(), ok[:3]},
		{"short message", "POST", grpcHeader(), ok[:len(ok)-1]},
		{"two messages", "POST", grpcHeader(), append(slices.Clone(ok), ok...)},
		{"trailing byte", "POST", grpcHeader(), append(slices.Clone(ok), 0)},
		{"compressed flag without encoding", "POST", grpcHeader(), envelope(1, marshal(t, "ok"))},
		{"unknown flag", "POST", grpcHeader(), envelope(0x80, marshal(t, "ok"))},
		{"over the read limit", "POST", grpcHeader(), envelope(0, marshal(t, strings.Repeat("x", readMax)))},
		{"not a message", "POST", grpcHeader(), envelope(0, []byte{0xff, 0xff, 0xff})},
		{"invalid UTF-8 in the request", "POST", grpcHeader(), envelope(0, []byte{0x0a, 0x01, 0xff})},
	}
	plainCases := 18 // the cases above "Outside the plain case"
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := served.Load()
			defer func() {
				if n := served.Load() - before; n != 0 != (i < plainCases) {
					t.Errorf("served here %d times; want it served here: %v", n, i < plainCases)
				}
			}()
			want := call(c, connectURL, tc.method, tc.header, tc.body)
			got := call(c, plainURL, tc.method, tc.header, tc.body)
			if want.Err != "" || got.Err != "" {
				t.Fatalf("call failed: connect-go %q, here %q", want.Err, got.Err)
			}
			if !got.Equal(want) {
				t.Errorf("answers differ\nconnect-go: %v\nhere:       %v", want, got)
			}
		})
	}
}

// FuzzSameAnswersAsConnect: for any body and any of the headers that pick
// the path, connect-go alone and this package in front of it answer alike.
func FuzzSameAnswersAsConnect(f *testing.F) {
	ok, err := proto.Marshal(&teamsv1.GetTeamRequest{City: "ok"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(envelope(0, ok), "application/grpc", "", "", "")
	f.Add(envelope(0, []byte{0x0a, 0x07, 'h', 'e', 'a', 'd', 'e', 'r', 's'}), "application/grpc+proto", "identity", "gzip", "1S")
	f.Add(append(envelope(0, ok), 0), "application/grpc", "", "br,gzip", "20m")
	f.Add(envelope(1, ok), "application/grpc", "gzip", "", "0n")
	connectURL, plainURL, _ := servers(f)
	c := h2cClient()
	f.Fuzz(func(t *testing.T, body []byte, contentType, encoding, accept, timeout string) {
		for _, v := range []string{contentType, encoding, accept, timeout} {
			if !httpguts.ValidHeaderFieldValue(v) {
				return
			}
		}
		if len(body) > 1<<16 {
			return
		}
		if bytes.Contains(body, []byte("deadline")) {
			return // the handler waits for the client's timeout, which may be hours
		}
		if d, ok := grpcunary.ParseTimeout(timeout); ok && d > 0 && d < time.Second {
			// Whether the handler starts before such a deadline passes is a
			// race on either path.
			return
		}
		h := grpcHeader("Content-Type", contentType, "Grpc-Encoding", encoding, "Grpc-Accept-Encoding", accept, "Grpc-Timeout", timeout)
		want := call(c, connectURL, "POST", h, body)
		got := call(c, plainURL, "POST", h, body)
		if !got.Equal(want) {
			t.Errorf("answers differ\nconnect-go: %v\nhere:       %v", want, got)
		}
	})
}
