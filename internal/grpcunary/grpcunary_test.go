package grpcunary_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
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
	"github.com/switchyard/switchyard/internal/outcome"
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
		res := connect.NewResponse(&teamsv1.GetTeamResponse{Nickname: "\xff"})
		res.Header().Set("X-Custom", "a")
		res.Trailer().Set("X-Trailer", "t")
		return res, nil
	case "badutf8 bare":
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
	// The procedure has no side effects, as GetTeam has none: connect-go
	// takes Connect's GET requests for it.
	next := connect.NewUnaryHandler(procedure, testImpl,
		connect.WithReadMaxBytes(readMax), connect.WithCompressMinBytes(compressMin), connect.WithRecover(recovered),
		connect.WithIdempotency(connect.IdempotencyNoSideEffects))
	plain := grpcunary.New(procedure, testImpl, next, grpcunary.Options{
		ReadMaxBytes: readMax, CompressMinBytes: compressMin, Get: true,
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

func http1Client() *http.Client {
	tr := &http.Transport{DisableCompression: true}
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

// call sends a request for procedure to url (a query after it, if any),
// from the host "switchyard.test" whatever the port.
func call(c *http.Client, url, method string, header http.Header, body []byte) testserver.Answer {
	header = header.Clone()
	header.Set("Host", "switchyard.test")
	if base, query, ok := strings.Cut(url, "?"); ok {
		return testserver.Ask(c, method, base+procedure+"?"+query, header, body)
	}
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

// answerCase is one request sent to both servers; plain says whether
// this package, not connect-go, is to answer it.
type answerCase struct {
	name   string
	method string
	header http.Header
	body   []byte
	plain  bool
	query  string // after the procedure's path, "?" included
}

// sameAnswers sends each case with each client to connect-go alone and to
// this package in front of it, and wants the same status, headers, body
// and trailers, and the case served where it says.
func sameAnswers(t *testing.T, clients map[string]*http.Client, cases []answerCase) {
	t.Helper()
	connectURL, plainURL, served := servers(t)
	for cname, c := range clients {
		for _, tc := range cases {
			t.Run(cname+"/"+tc.name, func(t *testing.T) {
				before := served.Load()
				defer func() {
					if n := served.Load() - before; n != 0 != tc.plain {
						t.Errorf("served here %d times; want it served here: %v", n, tc.plain)
					}
				}()
				want := call(c, connectURL+tc.query, tc.method, tc.header, tc.body)
				got := call(c, plainURL+tc.query, tc.method, tc.header, tc.body)
				if want.Err != "" || got.Err != "" {
					t.Fatalf("call failed: connect-go %q, here %q", want.Err, got.Err)
				}
				if !got.Equal(want) {
					t.Errorf("answers differ\nconnect-go: %v\nhere:       %v", want, got)
				}
			})
		}
	}
}

// TestSameAnswersAsConnect: gRPC. The handler's every kind of answer, in
// the plain case, and every request outside it (which must reach
// connect-go untouched, the bytes already read included).
func TestSameAnswersAsConnect(t *testing.T) {
	ok := envelope(0, marshal(t, "ok"))
	cases := []answerCase{
		// The plain case: served here.
		{"ok", "POST", grpcHeader(), ok, true, ""},
		{"grpc+proto", "POST", grpcHeader("Content-Type", "application/grpc+proto"), ok, true, ""},
		{"empty message", "POST", grpcHeader(), envelope(0, nil), true, ""},
		{"headers and trailers", "POST", grpcHeader("Grpc-Timeout", "5S"), envelope(0, marshal(t, "headers")), true, ""},
		{"error with metadata", "POST", grpcHeader(), envelope(0, marshal(t, "error")), true, ""},
		{"error with details", "POST", grpcHeader(), envelope(0, marshal(t, "details")), true, ""},
		{"bare error", "POST", grpcHeader(), envelope(0, marshal(t, "bare")), true, ""},
		{"panic", "POST", grpcHeader(), envelope(0, marshal(t, "panic")), true, ""},
		{"nil response", "POST", grpcHeader(), envelope(0, marshal(t, "nil")), true, ""},
		{"unmarshallable response", "POST", grpcHeader(), envelope(0, marshal(t, "badutf8")), true, ""},
		{"unmarshallable response, no headers", "POST", grpcHeader(), envelope(0, marshal(t, "badutf8 bare")), true, ""},
		{"big, identity", "POST", grpcHeader(), envelope(0, marshal(t, "big")), true, ""},
		{"big, gzip accepted", "POST", grpcHeader("Grpc-Accept-Encoding", "gzip"), envelope(0, marshal(t, "big")), true, ""},
		{"big, gzip among others", "POST", grpcHeader("Grpc-Accept-Encoding", "br, deflate,gzip"), envelope(0, marshal(t, "big")), true, ""},
		{"small, gzip accepted", "POST", grpcHeader("Grpc-Accept-Encoding", "identity,gzip"), ok, true, ""},
		{"unknown accepted encodings", "POST", grpcHeader("Grpc-Accept-Encoding", "br"), ok, true, ""},
		{"identity request", "POST", grpcHeader("Grpc-Encoding", "identity"), ok, true, ""},
		{"deadline", "POST", grpcHeader("Grpc-Timeout", "30m"), envelope(0, marshal(t, "deadline")), true, ""},
		{"unbounded timeout", "POST", grpcHeader("Grpc-Timeout", "99999999H"), envelope(0, marshal(t, "headers")), true, ""},
		// Outside the plain case: connect-go answers.
		{"gzip request", "POST", grpcHeader("Grpc-Encoding", "gzip"), envelope(1, gzipped(t, marshal(t, "ok"))), false, ""},
		{"unknown request encoding", "POST", grpcHeader("Grpc-Encoding", "br"), ok, false, ""},
		{"json", "POST", grpcHeader("Content-Type", "application/grpc+json"), envelope(0, []byte(`{"city":"ok"}`)), false, ""},
		{"unknown content type", "POST", grpcHeader("Content-Type", "text/plain"), ok, false, ""},
		{"GET", "GET", grpcHeader(), nil, false, ""},
		{"bad timeout", "POST", grpcHeader("Grpc-Timeout", "soon"), ok, false, ""},
		{"timeout too long", "POST", grpcHeader("Grpc-Timeout", "123456789S"), ok, false, ""},
		{"zero timeout", "POST", grpcHeader("Grpc-Timeout", "0n"), ok, false, ""},
		{"no message", "POST", grpcHeader(), nil, false, ""},
		{"short prefix", "POST", grpcHeader(), ok[:3], false, ""},
		{"short message", "POST", grpcHeader(), ok[:len(ok)-1], false, ""},
		{"two messages", "POST", grpcHeader(), append(slices.Clone(ok), ok...), false, ""},
		{"trailing byte", "POST", grpcHeader(), append(slices.Clone(ok), 0), false, ""},
		{"compressed flag without encoding", "POST", grpcHeader(), envelope(1, marshal(t, "ok")), false, ""},
		{"unknown flag", "POST", grpcHeader(), envelope(0x80, marshal(t, "ok")), false, ""},
		{"over the read limit", "POST", grpcHeader(), envelope(0, marshal(t, strings.Repeat("x", readMax))), false, ""},
		{"not a message", "POST", grpcHeader(), envelope(0, []byte{0xff, 0xff, 0xff}), false, ""},
		{"invalid UTF-8 in the request", "POST", grpcHeader(), envelope(0, []byte{0x0a, 0x01, 0xff}), false, ""},
	}
	sameAnswers(t, map[string]*http.Client{"h2c": h2cClient()}, cases)
	// gRPC needs HTTP/2 for its trailers: over HTTP/1.1 connect-go answers.
	sameAnswers(t, map[string]*http.Client{"http1": http1Client()}, []answerCase{{"ok", "POST", grpcHeader(), ok, false, ""}})
}

// TestSameAnswersAsConnectWeb: gRPC-Web, over HTTP/2 and HTTP/1.1. Its
// trailers end the body, or are the headers when the call failed before
// the handler set any (trailers-only).
func TestSameAnswersAsConnectWeb(t *testing.T) {
	web := func(kv ...string) http.Header {
		return grpcHeader(append([]string{"Content-Type", "application/grpc-web", "Te", ""}, kv...)...)
	}
	ok := envelope(0, marshal(t, "ok"))
	cases := []answerCase{
		{"ok", "POST", web(), ok, true, ""},
		{"grpc-web+proto", "POST", web("Content-Type", "application/grpc-web+proto"), ok, true, ""},
		{"empty message", "POST", web(), envelope(0, nil), true, ""},
		{"headers and trailers", "POST", web("Grpc-Timeout", "5S"), envelope(0, marshal(t, "headers")), true, ""},
		{"error with metadata", "POST", web(), envelope(0, marshal(t, "error")), true, ""},
		{"error with details", "POST", web(), envelope(0, marshal(t, "details")), true, ""},
		{"bare error", "POST", web(), envelope(0, marshal(t, "bare")), true, ""},
		{"panic", "POST", web(), envelope(0, marshal(t, "panic")), true, ""},
		{"nil response", "POST", web(), envelope(0, marshal(t, "nil")), true, ""},
		{"unmarshallable response", "POST", web(), envelope(0, marshal(t, "badutf8")), true, ""},
		{"unmarshallable response, no headers", "POST", web(), envelope(0, marshal(t, "badutf8 bare")), true, ""},
		{"big, gzip accepted", "POST", web("Grpc-Accept-Encoding", "gzip"), envelope(0, marshal(t, "big")), true, ""},
		{"small, gzip accepted", "POST", web("Grpc-Accept-Encoding", "gzip"), ok, true, ""},
		{"deadline", "POST", web("Grpc-Timeout", "30m"), envelope(0, marshal(t, "deadline")), true, ""},
		{"gzip request", "POST", web("Grpc-Encoding", "gzip"), envelope(1, gzipped(t, marshal(t, "ok"))), false, ""},
		{"json", "POST", web("Content-Type", "application/grpc-web+json"), envelope(0, []byte(`{"city":"ok"}`)), false, ""},
		{"bad timeout", "POST", web("Grpc-Timeout", "soon"), ok, false, ""},
		{"two messages", "POST", web(), append(slices.Clone(ok), ok...), false, ""},
		{"trailers from the client", "POST", web(), append(slices.Clone(ok), envelope(0x80, nil)...), false, ""},
		{"over the read limit", "POST", web(), envelope(0, marshal(t, strings.Repeat("x", readMax))), false, ""},
		{"not a message", "POST", web(), envelope(0, []byte{0xff, 0xff, 0xff}), false, ""},
	}
	sameAnswers(t, map[string]*http.Client{"h2c": h2cClient(), "http1": http1Client()}, cases)
}

// TestSameAnswersAsConnectUnary: Connect's unary protocol, protobuf and
// JSON, over HTTP/2 and HTTP/1.1. Errors are JSON with the code's HTTP
// status; the handler's trailers are headers named Trailer-*.
func TestSameAnswersAsConnectUnary(t *testing.T) {
	cx := func(kv ...string) http.Header {
		return grpcHeader(append([]string{"Content-Type", "application/proto", "Te", "", "Connect-Protocol-Version", "1"}, kv...)...)
	}
	js := func(kv ...string) http.Header {
		return cx(append([]string{"Content-Type", "application/json"}, kv...)...)
	}
	ok := marshal(t, "ok")
	cases := []answerCase{
		{"ok", "POST", cx(), ok, true, ""},
		{"no protocol version", "POST", cx("Connect-Protocol-Version", ""), ok, true, ""},
		{"empty message", "POST", cx(), nil, true, ""},
		{"headers and trailers", "POST", cx("Connect-Timeout-Ms", "5000"), marshal(t, "headers"), true, ""},
		{"error with metadata", "POST", cx(), marshal(t, "error"), true, ""},
		{"error with details", "POST", cx(), marshal(t, "details"), true, ""},
		{"bare error", "POST", cx(), marshal(t, "bare"), true, ""},
		{"panic", "POST", cx(), marshal(t, "panic"), true, ""},
		{"nil response", "POST", cx(), marshal(t, "nil"), true, ""},
		{"unmarshallable response", "POST", cx(), marshal(t, "badutf8"), true, ""},
		{"big, identity", "POST", cx(), marshal(t, "big"), true, ""},
		{"big, gzip accepted", "POST", cx("Accept-Encoding", "gzip"), marshal(t, "big"), true, ""},
		{"big, gzip among others", "POST", cx("Accept-Encoding", "br, gzip"), marshal(t, "big"), true, ""},
		{"small, gzip accepted", "POST", cx("Accept-Encoding", "gzip"), ok, true, ""},
		{"identity request", "POST", cx("Content-Encoding", "identity"), ok, true, ""},
		{"deadline", "POST", cx("Connect-Timeout-Ms", "30"), marshal(t, "deadline"), true, ""},
		{"json", "POST", js(), []byte(`{"city":"ok"}`), true, ""},
		{"json, unknown field", "POST", js(), []byte(`{"city":"headers","shoeSize":9}`), true, ""},
		{"json error", "POST", js(), []byte(`{"city":"details"}`), true, ""},
		{"json, big, gzip accepted", "POST", js("Accept-Encoding", "gzip"), []byte(`{"city":"big"}`), true, ""},
		{"json, unmarshallable response", "POST", js(), []byte(`{"city":"badutf8"}`), true, ""},
		{"gzip request", "POST", cx("Content-Encoding", "gzip"), gzipped(t, ok), false, ""},
		{"unknown request encoding", "POST", cx("Content-Encoding", "br"), ok, false, ""},
		{"protocol version 2", "POST", cx("Connect-Protocol-Version", "2"), ok, false, ""},
		{"json with a charset", "POST", js("Content-Type", "application/json; charset=utf-8"), []byte(`{"city":"ok"}`), false, ""},
		{"GET", "GET", cx(), nil, false, ""},
		{"bad timeout", "POST", cx("Connect-Timeout-Ms", "soon"), ok, false, ""},
		{"negative timeout", "POST", cx("Connect-Timeout-Ms", "-5"), ok, false, ""},
		{"timeout too long", "POST", cx("Connect-Timeout-Ms", "12345678901"), ok, false, ""},
		{"zero timeout", "POST", cx("Connect-Timeout-Ms", "0"), ok, false, ""},
		{"over the read limit", "POST", cx(), marshal(t, strings.Repeat("x", readMax)), false, ""},
		{"not a message", "POST", cx(), []byte{0xff, 0xff, 0xff}, false, ""},
		{"invalid UTF-8 in the request", "POST", cx(), []byte{0x0a, 0x01, 0xff}, false, ""},
		{"json, empty body", "POST", js(), nil, false, ""},
		{"json, not JSON", "POST", js(), []byte(`{"city":`), false, ""},
		{"json, wrong type", "POST", js(), []byte(`{"city":7}`), false, ""},
	}
	sameAnswers(t, map[string]*http.Client{"h2c": h2cClient(), "http1": http1Client()}, cases)
}

// TestSameAnswersAsConnectBodyErrors: a request body that net/http fails
// to read (a chunked body's trailer too long for it, a chunk size that is
// no number), sent as raw HTTP/1.1, gets connect-go's answer, which names
// the failure: connect-go must see the error the read here met, not read
// again a body that net/http has closed after it ("invalid Read on closed
// Body").
func TestSameAnswersAsConnectBodyErrors(t *testing.T) {
	connectURL, plainURL, _ := servers(t)
	raw := func(url, contentType, body string) string {
		t.Helper()
		conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: switchyard.test\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n%s", procedure, contentType, body)
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		res.Header.Del("Date")
		return fmt.Sprintf("%d %v %s", res.StatusCode, res.Header, b)
	}
	msg := marshal(t, "ok")
	json := `{"city":"ok"}`
	for _, tc := range []struct{ name, contentType, body string }{
		{"proto, trailer too long", "application/proto", fmt.Sprintf("%x\r\n%s\r\n0\r\nX-T: %s\r\n\r\n", len(msg), msg, strings.Repeat("a", 8192))},
		{"json, trailer too long", "application/json", fmt.Sprintf("%x\r\n%s\r\n0\r\nX-T: %s\r\n\r\n", len(json), json, strings.Repeat("a", 8192))},
		{"json, bad chunk size", "application/json", fmt.Sprintf("%x\r\n%s\r\nzz\r\n", len(json), json)},
	} {
		if want, got := raw(connectURL, tc.contentType, tc.body), raw(plainURL, tc.contentType, tc.body); got != want {
			t.Errorf("%s: answers differ\nconnect-go: %s\nhere:       %s", tc.name, want, got)
		}
	}
}

// TestSameAnswersAsConnectGet: Connect's GET requests, the message in the
// query (raw, or URL-safe base64 padded or not), over HTTP/2 and HTTP/1.1.
// Their answers say that they vary with Accept-Encoding.
func TestSameAnswersAsConnectGet(t *testing.T) {
	get := func(kv ...string) http.Header {
		return grpcHeader(append([]string{"Content-Type", "", "Te", ""}, kv...)...)
	}
	q := func(encoding string, msg []byte, extra ...string) string {
		v := url.Values{"encoding": {encoding}, "message": {string(msg)}}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return "?" + v.Encode()
	}
	b64 := func(city string, extra ...string) string {
		return q("proto", []byte(base64.RawURLEncoding.EncodeToString(marshal(t, city))), append([]string{"base64", "1"}, extra...)...)
	}
	ok := marshal(t, "ok")
	cases := []answerCase{
		{"ok", "GET", get(), nil, true, q("proto", ok, "connect", "v1")},
		{"no version", "GET", get(), nil, true, q("proto", ok)},
		{"base64", "GET", get(), nil, true, b64("ok")},
		{"base64, padded", "GET", get(), nil, true, q("proto", []byte(base64.URLEncoding.EncodeToString(marshal(t, "padded!"))), "base64", "1")},
		{"empty message", "GET", get(), nil, true, q("proto", nil)},
		{"headers and trailers", "GET", get("Connect-Timeout-Ms", "5000"), nil, true, b64("headers")},
		{"error with metadata", "GET", get(), nil, true, b64("error")},
		{"error with details", "GET", get(), nil, true, b64("details")},
		{"panic", "GET", get(), nil, true, b64("panic")},
		{"unmarshallable response", "GET", get(), nil, true, b64("badutf8")},
		{"big, gzip accepted", "GET", get("Accept-Encoding", "gzip"), nil, true, b64("big")},
		{"deadline", "GET", get("Connect-Timeout-Ms", "30"), nil, true, b64("deadline")},
		{"json", "GET", get(), nil, true, q("json", []byte(`{"city":"headers"}`))},
		{"json error", "GET", get(), nil, true, q("json", []byte(`{"city":"error"}`))},
		{"compressed", "GET", get(), nil, false, q("proto", gzipped(t, ok), "compression", "gzip")},
		{"identity compression", "GET", get(), nil, true, q("proto", ok, "compression", "identity")},
		{"unknown encoding", "GET", get(), nil, false, q("xml", ok)},
		{"no message", "GET", get(), nil, false, "?encoding=proto"},
		{"no encoding", "GET", get(), nil, false, "?message=x"},
		{"version 2", "GET", get(), nil, false, q("proto", ok, "connect", "v2")},
		{"a body", "GET", get(), ok, false, q("proto", ok)},
		{"a content type", "GET", get("Content-Type", "application/proto"), nil, false, q("proto", ok)},
		{"bad base64", "GET", get(), nil, false, q("proto", []byte("!!!"), "base64", "1")},
		{"over the read limit", "GET", get(), nil, false, b64(strings.Repeat("x", readMax))},
		{"not a message", "GET", get(), nil, false, q("proto", []byte{0xff, 0xff, 0xff})},
		{"json, empty", "GET", get(), nil, false, q("json", nil)},
		{"bad timeout", "GET", get("Connect-Timeout-Ms", "soon"), nil, false, q("proto", ok)},
	}
	sameAnswers(t, map[string]*http.Client{"h2c": h2cClient(), "http1": http1Client()}, cases)
}

// A procedure with side effects takes no GET: with Options.Get unset,
// every GET goes to connect-go, which refuses it.
func TestGetNeedsNoSideEffects(t *testing.T) {
	var served atomic.Int64
	next := connect.NewUnaryHandler(procedure, testImpl)
	plain := grpcunary.New(procedure, testImpl, next, grpcunary.Options{
		Wrap: func(ctx context.Context, _, _ string, _ http.Header, handler func(context.Context) error) error {
			served.Add(1)
			return handler(ctx)
		},
	})
	base := serve(t, plain)
	a := call(h2cClient(), base+"?encoding=proto&message=", "GET", http.Header{}, nil)
	if a.Err != "" || a.Status != http.StatusMethodNotAllowed || served.Load() != 0 {
		t.Errorf("GET of a procedure with side effects: %v, served here %d times; want connect-go's 405", a, served.Load())
	}
}

// FuzzSameAnswersAsConnect: for any body and any of the headers that pick
// the path, connect-go alone and this package in front of it answer alike.
// Each of encoding, accept and timeout is sent in both gRPC's header and
// Connect's, so that one input covers whichever protocol contentType picks.
func FuzzSameAnswersAsConnect(f *testing.F) {
	ok, err := proto.Marshal(&teamsv1.GetTeamRequest{City: "ok"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(envelope(0, ok), "application/grpc", "", "", "")
	f.Add(envelope(0, []byte{0x0a, 0x07, 'h', 'e', 'a', 'd', 'e', 'r', 's'}), "application/grpc+proto", "identity", "gzip", "1S")
	f.Add(append(envelope(0, ok), 0), "application/grpc", "", "br,gzip", "20m")
	f.Add(envelope(1, ok), "application/grpc", "gzip", "", "0n")
	f.Add(envelope(0, ok), "application/grpc-web", "", "gzip", "")
	f.Add(ok, "application/proto", "", "gzip", "1000")
	f.Add([]byte(`{"city":"error"}`), "application/json", "identity", "", "")
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
		// Whether the handler starts before a short deadline passes is a
		// race on either path.
		if d, ok := outcome.ParseGRPCTimeout(timeout); ok && d > 0 && d < time.Second {
			return
		}
		if ms, err := strconv.ParseInt(timeout, 10, 64); err == nil && ms > 0 && ms < 1000 {
			return
		}
		h := grpcHeader("Content-Type", contentType, "Grpc-Encoding", encoding, "Grpc-Accept-Encoding", accept, "Grpc-Timeout", timeout,
			"Content-Encoding", encoding, "Accept-Encoding", accept, "Connect-Timeout-Ms", timeout)
		want := call(c, connectURL, "POST", h, body)
		got := call(c, plainURL, "POST", h, body)
		if !got.Equal(want) {
			t.Errorf("answers differ\nconnect-go: %v\nhere:       %v", want, got)
		}
	})
}

// FuzzSameAnswersAsConnectGet: for any query and the headers a Connect GET
// reads, connect-go alone and this package in front of it answer alike.
func FuzzSameAnswersAsConnectGet(f *testing.F) {
	f.Add("encoding=proto&message=%0A%02ok", "", "")
	f.Add("encoding=proto&base64=1&message=CgJvaw&connect=v1", "gzip", "1000")
	f.Add("encoding=json&message=%7B%22city%22%3A%22error%22%7D", "", "")
	f.Add("encoding=proto&base64=1&message=CgJvaw==&compression=identity", "br,gzip", "")
	connectURL, plainURL, _ := servers(f)
	c := h2cClient()
	f.Fuzz(func(t *testing.T, query, accept, timeout string) {
		for _, v := range []string{accept, timeout} {
			if !httpguts.ValidHeaderFieldValue(v) {
				return
			}
		}
		unsendable := func(r rune) bool { return r <= ' ' || r == 0x7f || r == '#' } // net/url refuses or cuts them
		if len(query) > 1<<12 || strings.IndexFunc(query, unsendable) >= 0 || strings.Contains(query, "deadline") {
			return // not a query a client sends as is; or a handler that waits out the timeout
		}
		if ms, err := strconv.ParseInt(timeout, 10, 64); err == nil && ms > 0 && ms < 1000 {
			return // whether the handler starts before a short deadline is a race on either path
		}
		h := grpcHeader("Content-Type", "", "Te", "", "Accept-Encoding", accept, "Connect-Timeout-Ms", timeout)
		want := call(c, connectURL+"?"+query, "GET", h, nil)
		got := call(c, plainURL+"?"+query, "GET", h, nil)
		if !got.Equal(want) {
			t.Errorf("answers differ\nconnect-go: %v\nhere:       %v", want, got)
		}
	})
}

// serve builds a call's request as a literal with Msg set, inside the one
// allocation it makes for the call. That is connect.NewRequest's request
// only while NewRequest sets nothing else: a connect-go whose NewRequest
// does fails here.
func TestRequestLiteralIsNewRequest(t *testing.T) {
	msg := &teamsv1.GetTeamRequest{City: "Chicago"}
	literal := connect.Request[teamsv1.GetTeamRequest]{Msg: msg}
	if made := connect.NewRequest(msg); !reflect.DeepEqual(&literal, made) {
		t.Errorf("connect.NewRequest made %#v, not the literal %#v that serve builds", made, &literal)
	}
}
