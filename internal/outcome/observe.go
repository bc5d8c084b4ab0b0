package outcome

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

// Observe records the calls that h serves over HTTP/1.1, and over HTTP/2
// when net/http's own HTTP/2 server carries them (-http2-server net/http).
// Requests that internal/h2 serves pass straight through: its stream keeps
// its own record (Recorder). Put it outermost, so that it sees what the
// client sent and what goes back.
//
// What it can see is less than internal/h2 sees. net/http writes the end
// of a response (HTTP/2 trailers, the last chunk) after the handler
// returns, so "sent" here means the handler's response was handed to
// net/http with every write and the request context intact; a context
// cancelled before the handler returned is the client's reset (HTTP/2) or
// the connection's end (HTTP/1.1), the two that net/http cannot tell
// apart, unless the server had ended the call (ErrCallEnded) and its
// answer found the connection closed: the server's close.
func Observe(h http.Handler, obs Observer) http.Handler {
	if obs == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(Recorder); ok {
			h.ServeHTTP(w, r)
			return
		}
		ow := observedWriters.Get().(*observedWriter)
		ow.ResponseWriter = w
		rec := &ow.rec
		rec.Begin(r, time.Now())
		obs.CallStarted(rec)
		req := r.WithContext(context.WithValue(r.Context(), ContextKey, rec))
		if r.Body != nil && r.Body != http.NoBody {
			ow.body = observedBody{ReadCloser: r.Body, rec: rec}
			req.Body = &ow.body
		}
		defer func() {
			p := recover()
			ow.finish(req, p != nil)
			obs.CallEnded(rec)
			ow.release()
			if p != nil {
				panic(p)
			}
		}()
		h.ServeHTTP(ow, req)
	})
}

var observedWriters = sync.Pool{New: func() any { return new(observedWriter) }}

// observedWriter is the ResponseWriter that Observe hands on.
type observedWriter struct {
	http.ResponseWriter
	rec         Record
	body        observedBody
	wroteHeader bool
	held        bool // WriteHeader(415) not yet passed on
	status      int
	err         error // the first write error
}

var _ Recorder = (*observedWriter)(nil)

// OutcomeRecord implements Recorder, so that an inner Observe passes.
func (w *observedWriter) OutcomeRecord() *Record { return &w.rec }

func (w *observedWriter) WriteHeader(code int) {
	if w.wroteHeader || code < 200 {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.wroteHeader = true
	w.status = code
	w.rec.WroteHeader(code)
	if Explained(code) {
		// Held back: finish explains it if no body follows (RejectionBody).
		w.held = true
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

// release sends a held-back status.
func (w *observedWriter) unhold() {
	if w.held {
		w.held = false
		w.ResponseWriter.WriteHeader(w.status)
	}
}

func (w *observedWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.unhold()
	n, err := w.ResponseWriter.Write(p)
	w.rec.WroteBody(p[:n])
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}

func (w *observedWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.unhold()
	if err := http.NewResponseController(w.ResponseWriter).Flush(); err != nil && w.err == nil {
		w.err = err
	}
}

// Unwrap lets http.ResponseController reach net/http's writer.
func (w *observedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finish completes the record once the handler has returned (or
// panicked).
func (w *observedWriter) finish(req *http.Request, panicked bool) {
	status := w.status
	if !w.wroteHeader && !panicked {
		status = http.StatusOK
	}
	if w.held {
		if body, ok := RejectionBody(req, status, w.Header()); ok {
			w.unhold()
			w.rec.Explain(body)
			if n, err := io.WriteString(w.ResponseWriter, body); err == nil {
				w.rec.WroteBody([]byte(body[:n]))
			}
		}
		w.unhold()
	}
	end := EndSent
	code := CodeInternal
	endedByServer := errors.Is(context.Cause(req.Context()), ErrCallEnded)
	switch {
	case panicked:
		end = EndServerReset // net/http aborts the response
	case endedByServer && (w.err != nil || w.body.cut && !w.body.pastDeadline):
		// The server ended the call (a shutdown's grace over), and its
		// connection closed before the answer went out: net/http's
		// request body does not watch the context, so a handler waiting
		// for the client's next message is let go only by the close that
		// follows, and its answer, or a write under way, finds the
		// connection gone. A read cut off by the body's read deadline
		// (pastDeadline) came before any close: its answer went out,
		// unless a write failed.
		end, code = EndConnClosed, CodeUnavailable
	case w.err != nil || req.Context().Err() != nil && !endedByServer && !w.body.pastDeadline:
		end = EndConnClosed
		// Over HTTP/1.1 the connection ends a call early when its
		// client goes: a browser's abort, a client's timeout. net/http
		// cancels the context for its own forced close at the end of a
		// shutdown too, which cannot be told from it here.
		code = CodeCanceled
		if req.ProtoMajor == 2 {
			end = EndClientReset
		}
	}
	if end != EndSent && !w.wroteHeader {
		// The 200 net/http answers for a handler that wrote nothing
		// never went out: the call has no status.
		status = 0
	}
	w.rec.Finish(time.Now(), status, w.Header(), end, code)
}

func (w *observedWriter) release() {
	// The final-frame buffer, made by the calls that capture one, stays
	// with the pooled writer.
	buf := w.rec.endFrame.buf[:0]
	*w = observedWriter{}
	w.rec.endFrame.buf = buf
	observedWriters.Put(w)
}

// observedBody counts a request body as the handler reads it.
type observedBody struct {
	io.ReadCloser
	rec *Record
	// cut: a read failed other than at the body's end (the stream or
	// the connection ended, or the server's read deadline passed).
	cut bool
	// pastDeadline: a read failed because the server's read deadline on
	// the body passed (the server's unary limit, internal/server's
	// limitBody). net/http then cancels the request's context as if
	// the client had closed the connection, but the call's answer is
	// the server's to send.
	pastDeadline bool
}

func (b *observedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.rec.ReadBody(p[:n])
	if err != nil && err != io.EOF {
		b.cut = true
		b.pastDeadline = b.pastDeadline || errors.Is(err, os.ErrDeadlineExceeded)
	}
	return n, err
}
