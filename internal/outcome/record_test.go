package outcome

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func envelope(flags byte, payload []byte) []byte {
	b := make([]byte, 5, 5+len(payload))
	b[0] = flags
	binary.BigEndian.PutUint32(b[1:], uint32(len(payload)))
	return append(b, payload...)
}

func gzipped(p []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(p)
	_ = zw.Close()
	return buf.Bytes()
}

// feedInPieces writes body to the record in pieces of n bytes, as a
// transport might.
func feedInPieces(r *Record, body []byte, n int) {
	for len(body) > 0 {
		k := min(n, len(body))
		r.WroteBody(body[:k])
		body = body[k:]
	}
}

func TestRecordStatusFromTheWire(t *testing.T) {
	msg := []byte("\x0a\x07Chicago")
	connectErr := []byte(`{"error":{"code":"not_found","message":"no team plays in \"Miami\""}}`)
	cases := []struct {
		name        string
		contentType string
		method      string
		status      int
		header      http.Header
		body        []byte
		wantCode    Code
		wantMsg     string
		wantMsgsOut int64
	}{
		{name: "grpc trailers", contentType: "application/grpc", status: 200,
			header: http.Header{http.TrailerPrefix + "Grpc-Status": {"5"}, http.TrailerPrefix + "Grpc-Message": {"no team plays in %22Miami%22"}},
			body:   envelope(0, msg), wantCode: CodeNotFound, wantMsg: `no team plays in "Miami"`, wantMsgsOut: 1},
		{name: "grpc trailers-only", contentType: "application/grpc+proto", status: 200,
			header: http.Header{"Grpc-Status": {"3"}}, wantCode: CodeInvalidArgument},
		{name: "grpc ok", contentType: "application/grpc", status: 200,
			header: http.Header{"Trailer": {"Grpc-Status"}, "Grpc-Status": {"0"}}, body: append(envelope(0, msg), envelope(0, msg)...),
			wantCode: CodeOK, wantMsgsOut: 2},
		{name: "grpc without status", contentType: "application/grpc", status: 200, body: envelope(0, msg), wantCode: CodeInternal,
			wantMsg: "the response carried no grpc-status", wantMsgsOut: 1},
		{name: "grpc unknown procedure (HTTP 404)", contentType: "application/grpc", status: 404, wantCode: CodeUnimplemented},
		{name: "grpc-web trailer frame", contentType: "application/grpc-web+proto", status: 200,
			body:     append(envelope(0, msg), envelope(flagGRPCWebTrailer, []byte("grpc-status: 7\r\ngrpc-message: go away\r\n"))...),
			wantCode: CodePermissionDenied, wantMsg: "go away", wantMsgsOut: 1},
		{name: "grpc-web compressed trailer frame", contentType: "application/grpc-web", status: 200,
			body:     envelope(flagGRPCWebTrailer|flagCompressed, gzipped([]byte("grpc-status:14\r\n"))),
			wantCode: CodeUnavailable},
		{name: "connect streaming end ok", contentType: "application/connect+proto", status: 200,
			body: append(envelope(0, msg), envelope(flagConnectEnd, []byte("{}"))...), wantCode: CodeOK, wantMsgsOut: 1},
		{name: "connect streaming end error", contentType: "application/connect+json", status: 200,
			body: envelope(flagConnectEnd, connectErr), wantCode: CodeNotFound, wantMsg: `no team plays in "Miami"`},
		{name: "connect streaming compressed end", contentType: "application/connect+proto", status: 200,
			body: envelope(flagConnectEnd|flagCompressed, gzipped(connectErr)), wantCode: CodeNotFound, wantMsg: `no team plays in "Miami"`},
		{name: "connect streaming compressed end cut off", contentType: "application/connect+proto", status: 200,
			body: envelope(flagConnectEnd|flagCompressed, gzipped(incompressible(2*captureBytes))), wantCode: CodeUnknown,
			wantMsg: "the end-of-stream message could not be read"},
		{name: "connect unary ok", contentType: "application/proto", status: 200, body: msg, wantCode: CodeOK, wantMsgsOut: 1},
		{name: "connect unary error", contentType: "application/json", status: 404,
			body: []byte(`{"code":"not_found","message":"gone"}`), wantCode: CodeNotFound, wantMsg: "gone"},
		{name: "connect unary error cut off", contentType: "application/json", status: 400,
			body: []byte(`{"code":"invalid_argument","message":"` + strings.Repeat("x", 2*captureBytes) + `"}`), wantCode: CodeInvalidArgument},
		{name: "connect GET", method: http.MethodGet, status: 200, body: msg, wantCode: CodeOK, wantMsgsOut: 1},
		{name: "no content type (415)", status: 415, body: []byte("the request has no Content-Type header\n"), wantCode: CodeUnknown},
		{name: "a page", method: http.MethodGet, contentType: "", status: 200, body: []byte("<html>"), wantCode: CodeOK},
	}
	for _, tc := range cases {
		for _, piece := range []int{1, 3, 7, 1 << 20} {
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			target := "/teams.v1.TeamsService/GetTeam"
			if tc.name == "connect GET" {
				target += "?encoding=proto&message=CgdDaGljYWdv"
			}
			if tc.name == "a page" {
				target = "/"
			}
			req := httptest.NewRequest(method, target, nil)
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			var r Record
			start := time.Now()
			r.Begin(req, start)
			r.WroteHeader(tc.status)
			feedInPieces(&r, tc.body, piece)
			header := tc.header
			if header == nil {
				header = http.Header{}
			}
			r.Finish(start.Add(time.Millisecond), tc.status, header, EndSent, CodeInternal)
			if r.Code != tc.wantCode || (tc.wantMsg != "" && r.Message != tc.wantMsg) || r.MsgsOut != tc.wantMsgsOut {
				t.Errorf("%s (pieces of %d): code %v message %q msgs out %d, want %v %q %d",
					tc.name, piece, r.Code, r.Message, r.MsgsOut, tc.wantCode, tc.wantMsg, tc.wantMsgsOut)
			}
			if r.BytesOut != int64(len(tc.body)) || r.Duration != time.Millisecond {
				t.Errorf("%s: %d bytes out, duration %v", tc.name, r.BytesOut, r.Duration)
			}
		}
	}
}

// incompressible is n bytes that gzip cannot shrink.
func incompressible(n int) []byte {
	p := make([]byte, n)
	x := uint32(1)
	for i := range p {
		x = x*1664525 + 1013904223
		p[i] = byte(x >> 24)
	}
	return p
}

// TestRecordBuffersOnlyFinalFrames: a gRPC response's body (its status is
// in the trailers) costs the record no allocation; the final frame of a
// gRPC-Web response is kept, up to captureBytes.
func TestRecordBuffersOnlyFinalFrames(t *testing.T) {
	body := envelope(0, []byte("\x0a\x07Chicago"))
	grpc := httptest.NewRequest(http.MethodPost, "/teams.v1.TeamsService/GetTeam", nil)
	grpc.Header.Set("Content-Type", "application/grpc")
	var r Record
	r.Begin(grpc, time.Now())
	r.WroteHeader(http.StatusOK)
	if n := testing.AllocsPerRun(100, func() { r.WroteBody(body) }); n != 0 {
		t.Errorf("a gRPC body: %v allocations per write, want 0", n)
	}
	web := httptest.NewRequest(http.MethodPost, "/teams.v1.TeamsService/GetTeam", nil)
	web.Header.Set("Content-Type", "application/grpc-web")
	r = Record{}
	r.Begin(web, time.Now())
	r.WroteHeader(http.StatusOK)
	r.WroteBody(envelope(flagGRPCWebTrailer, append([]byte("grpc-status: 0\r\nx-long: "), bytes.Repeat([]byte("y"), 2*captureBytes)...)))
	if len(r.endFrame.buf) != captureBytes || !r.endFrame.cut {
		t.Errorf("a long trailer frame kept %d bytes (cut %v), want the first %d", len(r.endFrame.buf), r.endFrame.cut, captureBytes)
	}
}

// A pooled observed writer comes back empty but for its final-frame
// buffer, which it keeps for the next call that captures one.
func TestObservedWriterKeepsItsBuffer(t *testing.T) {
	w := &observedWriter{status: http.StatusBadRequest, wroteHeader: true}
	w.rec.Procedure = "/teams.v1.TeamsService/GetTeam"
	w.rec.endFrame.add([]byte(`{"code":"invalid_argument"}`))
	w.release()
	buf := w.rec.endFrame.buf
	if len(buf) != 0 || cap(buf) != captureBytes {
		t.Errorf("released writer's buffer: len %d cap %d, want 0 and %d", len(buf), cap(buf), captureBytes)
	}
	if w.status != 0 || w.wroteHeader || w.rec.Procedure != "" || w.rec.endFrame.kind != frameNone {
		t.Errorf("released writer not reset: status %d wrote %v procedure %q frame kind %v",
			w.status, w.wroteHeader, w.rec.Procedure, w.rec.endFrame.kind)
	}
}

func TestRecordProtocols(t *testing.T) {
	for ct, want := range map[string]Protocol{
		"application/grpc": ProtocolGRPC, "application/grpc+json": ProtocolGRPC,
		"application/grpc-web": ProtocolGRPCWeb, "application/grpc-web-text+proto": ProtocolGRPCWeb,
		"application/connect+proto": ProtocolConnect, "application/json": ProtocolConnect, "application/proto": ProtocolConnect,
		"": ProtocolHTTP, "text/plain": ProtocolHTTP, "application/xml": ProtocolHTTP,
		// connect-go compares content types in lower case.
		"Application/gRPC": ProtocolGRPC, "application/GRPC-WEB": ProtocolGRPCWeb, "application/JSON": ProtocolConnect,
		"APPLICATION/CONNECT+PROTO": ProtocolConnect, "Text/Plain": ProtocolHTTP,
	} {
		req := httptest.NewRequest(http.MethodPost, "/x.Y/Z", nil)
		req.Header.Set("Content-Type", ct)
		var r Record
		r.Begin(req, time.Now())
		if r.Protocol != want {
			t.Errorf("%q: %v, want %v", ct, r.Protocol, want)
		}
	}
	// connect-go serves a GET as a Connect unary call, chosen by the
	// encoding its query names, whatever the request's Content-Type.
	for _, tc := range []struct {
		query, contentType string
		want               Protocol
	}{
		{"encoding=proto&base64=1&message=CgdDaGljYWdv", "", ProtocolConnect},
		{"encoding=json&message=%7B%7D", "application/json", ProtocolConnect},
		{"encoding=proto&message=", "application/grpc", ProtocolConnect},
		{"enc%6Fding=proto&mess%61ge=", "", ProtocolConnect},
		{"message=%7B%7D", "", ProtocolHTTP}, // no encoding: connect-go answers 415
		{"", "application/grpc", ProtocolHTTP},
		{"", "application/json", ProtocolHTTP},
		{"page=2", "", ProtocolHTTP},
	} {
		req := httptest.NewRequest(http.MethodGet, "/x.Y/Z?"+tc.query, nil)
		if tc.contentType != "" {
			req.Header.Set("Content-Type", tc.contentType)
		}
		var r Record
		r.Begin(req, time.Now())
		if r.Protocol != tc.want || (tc.want == ProtocolConnect) != (r.wire == wireUnary) {
			t.Errorf("GET ?%s (%q): %v, want %v", tc.query, tc.contentType, r.Protocol, tc.want)
		}
	}
}

// Request messages are counted as the body arrives, in any pieces, and
// gRPC-Web text bodies are counted through their base64.
func TestRecordRequestMessages(t *testing.T) {
	body := bytes.Repeat(envelope(0, []byte("\x08\x01\x10\x02")), 5)
	for _, text := range []bool{false, true} {
		ct, wire := "application/grpc-web", body
		if text {
			ct = "application/grpc-web-text"
			// Separately padded chunks, as text clients send them.
			wire = []byte(base64.StdEncoding.EncodeToString(body[:7]) + base64.StdEncoding.EncodeToString(body[7:]))
		}
		req := httptest.NewRequest(http.MethodPost, "/routeguide.v1.RouteGuideService/RecordRoute", nil)
		req.Header.Set("Content-Type", ct)
		var r Record
		r.Begin(req, time.Now())
		for _, b := range wire {
			r.ReadBody([]byte{b})
		}
		r.Finish(time.Now(), 200, http.Header{"Grpc-Status": {"0"}}, EndSent, CodeInternal)
		if r.MsgsIn != 5 || r.BytesIn != int64(len(wire)) {
			t.Errorf("text %v: %d messages, %d bytes in; want 5, %d", text, r.MsgsIn, r.BytesIn, len(wire))
		}
	}
}

// A Connect unary request is one message once its body came, or its
// handler had it (an empty message has no bytes); one refused unread is
// none.
func TestRecordUnaryRequestMessage(t *testing.T) {
	for _, tc := range []struct {
		body    string
		handled bool
		status  int
		want    int64
	}{
		{`{"name":"x"}`, true, http.StatusOK, 1},
		{"", true, http.StatusOK, 1},
		{"{", false, http.StatusBadRequest, 1},
		{"", false, http.StatusNotFound, 0},
	} {
		req := httptest.NewRequest(http.MethodPost, "/x.Y/Z", nil)
		req.Header.Set("Content-Type", "application/json")
		var r Record
		r.Begin(req, time.Now())
		r.ReadBody([]byte(tc.body))
		r.Handled = tc.handled
		r.WroteHeader(tc.status)
		r.Finish(time.Now(), tc.status, http.Header{}, EndSent, CodeInternal)
		if r.MsgsIn != tc.want {
			t.Errorf("body %q, handled %v, %d: %d messages in, want %d", tc.body, tc.handled, tc.status, r.MsgsIn, tc.want)
		}
	}
}

// A call that did not end with its status on the wire has the code its
// client reports: deadline_exceeded once the deadline its header set has
// passed, else canceled for its own reset, the transport's code for a
// closed connection (canceled when the peer closed it, unavailable when
// the server did), a server reset's mapping.
func TestRecordEnds(t *testing.T) {
	for _, tc := range []struct {
		contentType, header, timeout string
		took                         time.Duration
		end                          End
		endCode, want                Code
	}{
		{"application/grpc", "", "", time.Second, EndClientReset, CodeInternal, CodeCanceled},
		{"application/grpc", "", "", time.Second, EndConnClosed, CodeCanceled, CodeCanceled},
		{"application/grpc", "", "", time.Second, EndConnClosed, CodeUnavailable, CodeUnavailable},
		{"application/grpc", "", "", time.Second, EndServerReset, CodeFromReset(0xb), CodeResourceExhausted},
		{"application/grpc", "Grpc-Timeout", "300m", time.Second, EndClientReset, CodeInternal, CodeDeadlineExceeded},
		{"application/grpc", "Grpc-Timeout", "300m", time.Second, EndConnClosed, CodeUnavailable, CodeDeadlineExceeded},
		{"application/grpc", "Grpc-Timeout", "300m", time.Second, EndServerReset, CodeCanceled, CodeDeadlineExceeded},
		{"application/grpc", "Grpc-Timeout", "300m", 100 * time.Millisecond, EndClientReset, CodeInternal, CodeCanceled},
		{"application/grpc", "Grpc-Timeout", "300m", 100 * time.Millisecond, EndConnClosed, CodeUnavailable, CodeUnavailable},
		// The client's clock started before the server read the headers.
		{"application/grpc", "Grpc-Timeout", "300m", 290 * time.Millisecond, EndClientReset, CodeInternal, CodeDeadlineExceeded},
		{"application/grpc-web", "Grpc-Timeout", "1S", 2 * time.Second, EndConnClosed, CodeCanceled, CodeDeadlineExceeded},
		{"application/grpc", "Grpc-Timeout", "bogus", time.Hour, EndClientReset, CodeInternal, CodeCanceled},
		{"application/connect+proto", "Connect-Timeout-Ms", "300", time.Second, EndConnClosed, CodeCanceled, CodeDeadlineExceeded},
		{"application/json", "Connect-Timeout-Ms", "300", time.Second, EndConnClosed, CodeCanceled, CodeDeadlineExceeded},
		{"application/json", "Connect-Timeout-Ms", "300", 100 * time.Millisecond, EndConnClosed, CodeCanceled, CodeCanceled},
		// Each protocol has its own header.
		{"application/json", "Grpc-Timeout", "300m", time.Second, EndConnClosed, CodeCanceled, CodeCanceled},
		{"application/grpc", "Connect-Timeout-Ms", "300", time.Second, EndConnClosed, CodeCanceled, CodeCanceled},
	} {
		req := httptest.NewRequest(http.MethodPost, "/x.Y/Z", nil)
		req.Header.Set("Content-Type", tc.contentType)
		if tc.header != "" {
			req.Header.Set(tc.header, tc.timeout)
		}
		start := time.Now()
		var r Record
		r.Begin(req, start)
		r.Finish(start.Add(tc.took), 200, http.Header{"Grpc-Status": {"0"}}, tc.end, tc.endCode)
		if r.Code != tc.want || r.End != tc.end {
			t.Errorf("%s %s: %s after %v, %v (transport's code %v): code %v, want %v",
				tc.contentType, tc.header, tc.timeout, tc.took, tc.end, tc.endCode, r.Code, tc.want)
		}
	}
}

// A message, which may repeat what the client sent, is bounded for every
// sink, and cut on a rune's boundary.
func TestMessageBounded(t *testing.T) {
	long := strings.Repeat("é", maxMessageBytes) // two bytes each
	req := httptest.NewRequest(http.MethodPost, "/x.Y/Z", nil)
	req.Header.Set("Content-Type", "application/grpc")
	var r Record
	r.Begin(req, time.Now())
	r.WroteHeader(http.StatusOK)
	r.Finish(time.Now(), http.StatusOK, http.Header{"Grpc-Status": {"12"}, "Grpc-Message": {long}}, EndSent, CodeInternal)
	if len(r.Message) > maxMessageBytes || !strings.HasSuffix(r.Message, "é...") || !utf8.ValidString(r.Message) {
		t.Errorf("message of %d bytes ending %q, want at most %d, cut after a whole rune", len(r.Message), r.Message[len(r.Message)-8:], maxMessageBytes)
	}
	if got := Shorten("short", 10); got != "short" {
		t.Errorf("Shorten(short) = %q", got)
	}
	// The user agent too: it reaches every sink, and HPACK lets a client
	// send 64 KiB of it again and again for a byte.
	req.Header.Set("User-Agent", strings.Repeat("a", 60000))
	r.Reset()
	r.Begin(req, time.Now())
	if len(r.UserAgent) > maxUserAgent || !strings.HasSuffix(r.UserAgent, "a...") {
		t.Errorf("user agent of %d bytes, want at most %d", len(r.UserAgent), maxUserAgent)
	}
}
