// Package grpcwebtext lets connect-go serve the text (base64) variant of
// gRPC-Web, application/grpc-web-text, which the official gRPC-Web
// JavaScript client uses by default and needs for server streaming.
//
// connect-go speaks binary gRPC-Web only. Handler sits in front of it: for a
// text request it decodes the body from base64 as it is read, presents the
// request to connect as binary gRPC-Web, and base64-encodes the binary
// response (messages and the trailer frame) on its way out, closing a base64
// segment at every flush so a server stream still arrives message by
// message. Every other request passes through after one header comparison.
package grpcwebtext

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"connectrpc.com/connect"
)

const (
	textPrefix   = "application/grpc-web-text"
	binaryPrefix = "application/grpc-web"
)

// Handler serves application/grpc-web-text and
// application/grpc-web-text+<codec> requests through next as binary
// gRPC-Web, and passes every other request to next untouched.
func Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A direct map lookup: the server already canonicalized the key, and
		// Header.Get would canonicalize it again on every request.
		// Media types are case-insensitive, as connect-go takes binary
		// gRPC-Web's.
		contentType := r.Header["Content-Type"]
		if len(contentType) == 0 || len(contentType[0]) < len(textPrefix) ||
			!strings.EqualFold(contentType[0][:len(textPrefix)], textPrefix) {
			next.ServeHTTP(w, r)
			return
		}
		serveText(next, w, r, contentType[0])
	})
}

func serveText(next http.Handler, w http.ResponseWriter, r *http.Request, contentType string) {
	// "application/grpc-web-text" + "" or "+proto" (or "+json") becomes
	// "application/grpc-web" + the same suffix.
	suffix := contentType[len(textPrefix):]
	if suffix != "" && suffix[0] != '+' {
		// e.g. application/grpc-web-textual: not ours; let connect refuse it.
		next.ServeHTTP(w, r)
		return
	}
	r = r.Clone(r.Context())
	r.Header.Set("Content-Type", binaryPrefix+suffix)
	r.Header.Del("Content-Length")
	r.ContentLength = -1
	r.Body = &decodingBody{src: r.Body}

	tw := &textWriter{ResponseWriter: w}
	defer tw.finish()
	next.ServeHTTP(tw, r)
}

// decodingBody decodes a base64 request body as it is read. gRPC-Web text
// clients may send several separately padded base64 chunks back to back, so
// it decodes in 4-character quanta and lets padding end a quantum anywhere,
// not only at the end of the body.
type decodingBody struct {
	src     io.ReadCloser
	in      []byte // undecoded input: fewer than 4 characters between reads
	out     []byte // decoded bytes not yet returned
	scratch [4096]byte
	err     error
}

func (b *decodingBody) Read(p []byte) (int, error) {
	for len(b.out) == 0 {
		if b.err != nil {
			return 0, b.err
		}
		n, err := b.src.Read(b.scratch[:])
		b.in = append(b.in, stripSpace(b.scratch[:n])...)
		whole := len(b.in) - len(b.in)%4
		if whole > 0 {
			decoded, decErr := decodeQuanta(b.in[:whole])
			if decErr != nil {
				b.err = decErr
				return 0, decErr
			}
			b.out = decoded
			b.in = append(b.in[:0], b.in[whole:]...)
		}
		switch {
		case errors.Is(err, io.EOF):
			if len(b.in) != 0 {
				b.err = invalidArgument(fmt.Errorf("gRPC-Web text request body ends with %d base64 characters; base64 comes in groups of 4", len(b.in)))
			} else {
				b.err = io.EOF
			}
		case err != nil:
			b.err = err
		}
	}
	n := copy(p, b.out)
	b.out = b.out[n:]
	return n, nil
}

func (b *decodingBody) Close() error { return b.src.Close() }

// decodeQuanta decodes base64 whose length is a multiple of 4 and in which
// every group that carries '=' padding ends a segment.
func decodeQuanta(src []byte) ([]byte, error) {
	dst := make([]byte, 0, len(src)/4*3)
	for len(src) > 0 {
		end := len(src)
		if i := bytes.IndexByte(src, '='); i >= 0 {
			end = (i/4 + 1) * 4
		}
		buf := make([]byte, base64.StdEncoding.DecodedLen(end))
		n, err := base64.StdEncoding.Decode(buf, src[:end])
		if err != nil {
			return nil, invalidArgument(fmt.Errorf("gRPC-Web text request body is not valid base64: %w", err))
		}
		dst = append(dst, buf[:n]...)
		src = src[end:]
	}
	return dst, nil
}

// stripSpace drops the line breaks some encoders insert into base64.
func stripSpace(p []byte) []byte {
	if bytes.IndexAny(p, "\r\n\t ") < 0 {
		return p
	}
	return bytes.Map(func(r rune) rune {
		switch r {
		case '\r', '\n', '\t', ' ':
			return -1
		}
		return r
	}, p)
}

func invalidArgument(err error) error {
	return connect.NewError(connect.CodeInvalidArgument, err)
}

// textWriter base64-encodes a binary gRPC-Web response. Anything else the
// handler answers (a plain 404 for an unknown path, a 415) passes through.
type textWriter struct {
	http.ResponseWriter
	wroteHeader bool
	encode      bool
	enc         io.WriteCloser // open base64 segment, nil between segments
}

func (w *textWriter) WriteHeader(code int) {
	if w.wroteHeader {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.wroteHeader = true
	h := w.ResponseWriter.Header()
	if ct := h.Get("Content-Type"); strings.HasPrefix(ct, binaryPrefix) {
		w.encode = true
		h.Set("Content-Type", textPrefix+ct[len(binaryPrefix):])
		h.Del("Content-Length")
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *textWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.encode {
		return w.ResponseWriter.Write(p)
	}
	if w.enc == nil {
		w.enc = base64.NewEncoder(base64.StdEncoding, w.ResponseWriter)
	}
	return w.enc.Write(p)
}

// Flush ends the current base64 segment (with its padding) so the client
// can decode everything written so far, then flushes the connection.
func (w *textWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.closeSegment()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *textWriter) closeSegment() {
	if w.enc != nil {
		// The encoder writes to the ResponseWriter, whose write errors the
		// handler already saw or will see on its next write.
		_ = w.enc.Close()
		w.enc = nil
	}
}

// finish ends the response. A handler that returned without writing or
// flushing (a trailers-only error whose flush was deferred) still gets its
// headers rewritten, rather than net/http sending them as they are.
func (w *textWriter) finish() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.closeSegment()
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *textWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var _ http.Flusher = (*textWriter)(nil)
