package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"connectrpc.com/connect"

	"github.com/switchyard/switchyard/internal/h2"
	"github.com/switchyard/switchyard/internal/outcome"
)

// limitBody bounds the read of a call's request body by the call's
// deadline, counted from the request's headers: a unary call's (unary
// set) by the server's unary one or the client's (Connect-Timeout-Ms,
// Grpc-Timeout) if shorter, a stream's by its client's, if it sets one.
// Otherwise a unary call's deadline would start once its message was in,
// and neither HTTP server bounds a body's read (net/http bounds only the
// headers', ReadHeaderTimeout): a client that sent its body slowly, or
// never, or part of its stream and then nothing, would hold a handler,
// and its stream or connection (one of MaxConnections over HTTP/1.x),
// for as long as it kept the connection. A read past the deadline fails
// DEADLINE_EXCEEDED.
//
// Served by internal/h2, the stream's context takes a unary call's
// deadline (a stream's, DeadlineInterceptor), and its body's Read gives
// up at it. Served by net/http, the request gets a
// context with the deadline (the cancel returned, to call once the call
// is served) and a read deadline: of the stream over HTTP/2, of the
// connection over HTTP/1.x, which net/http closes after the answer, and
// whose deadline it clears as it starts the read that watches for the
// client going away once the body is read.
func (s *Server) limitBody(w http.ResponseWriter, r *http.Request, unary bool) (*http.Request, context.CancelFunc) {
	if r.Body == nil || r.Body == http.NoBody {
		return r, nil
	}
	d := time.Duration(0)
	if unary {
		d = s.unaryTimeout
	}
	if t, ok := outcome.ParseConnectTimeout(header(r.Header, "Connect-Timeout-Ms")); ok && (d == 0 || t < d) {
		d = t
	}
	// A Grpc-Timeout of more hours than a time.Duration holds parses as
	// 0: no deadline, as connect-go and grpc-go read it.
	if t, ok := outcome.ParseGRPCTimeout(header(r.Header, "Grpc-Timeout")); ok && t > 0 && (d == 0 || t < d) {
		d = t
	}
	if d == 0 { // a stream whose client sets no deadline
		return r, nil
	}
	// A stream served by internal/h2 takes no read deadline: its
	// ResponseWriter has none to set.
	if unary && h2.LimitDuration(r.Context(), d) {
		return r, nil
	}
	deadline := time.Now().Add(d)
	rc := http.NewResponseController(w)
	if rc.SetReadDeadline(deadline) != nil {
		return r, nil
	}
	ctx, cancel := context.WithDeadline(r.Context(), deadline)
	// A stream's writes end too, EndCallsWithin after its deadline, time
	// enough for its handler to answer it: one whose client reads
	// nothing, blocked writing, would otherwise hold its handler, and
	// over HTTP/1.x its connection, for as long as the client kept it
	// (internal/h2 resets such a stream at the deadline). Over HTTP/2
	// net/http then resets the stream; over HTTP/1.x it clears the write
	// deadline once the answer is written, before the connection's next
	// request.
	if !unary {
		_ = rc.SetWriteDeadline(deadline.Add(EndCallsWithin))
	}
	r = r.WithContext(ctx)
	r.Body = &deadlineBody{ReadCloser: r.Body, d: d, unary: unary}
	return r, cancel
}

func header(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// deadlineBody is a request body whose read deadline, its connection's
// over HTTP/1.x or its stream's over net/http's HTTP/2, is d from the
// request's headers (limitBody): its timeout is the call's.
type deadlineBody struct {
	io.ReadCloser
	d     time.Duration
	unary bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		what := "the request's message did not arrive"
		if !b.unary {
			what = "the client's stream did not end"
		}
		err = connect.NewError(connect.CodeDeadlineExceeded, fmt.Errorf("%s within the call's deadline (%v)", what, b.d))
	}
	return n, err
}

// answerFirst has a stream's answer over HTTP/1.x written before what
// its client has not sent yet of its request is discarded. net/http
// discards the rest of a body, up to 256 KiB, so that the connection can
// serve another request: as the answer's headers are written (unless the
// request is full duplex) and as the body is closed, which connect-go
// does as the call ends, before it flushes its last bytes. A call that
// ended before its client's stream did (an error, too many points, the
// end of a shutdown's grace) kept its answer (Connect's end-stream
// message, gRPC-Web's last chunk) for as long as the client sent nothing
// more. Its body is now closed by net/http once the answer is written.
func answerFirst(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 && r.Body != nil && r.Body != http.NoBody && http.NewResponseController(w).EnableFullDuplex() == nil {
		r.Body = &answerFirstBody{ReadCloser: r.Body}
	}
}

// answerFirstBody is a request body whose Close leaves a body not read
// to its end for net/http to close after the answer.
type answerFirstBody struct {
	io.ReadCloser
	eof bool
}

func (b *answerFirstBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.eof = b.eof || err == io.EOF
	return n, err
}

func (b *answerFirstBody) Close() error {
	if !b.eof {
		return nil
	}
	return b.ReadCloser.Close()
}
