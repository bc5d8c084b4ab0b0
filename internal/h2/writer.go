package h2

import (
	"net/http"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/net/http2"

	"github.com/switchyard/switchyard/internal/outcome"
)

// bufferedBody is how much of a response the writer holds before it sends
// DATA without being asked to flush.
const bufferedBody = 16 << 10

var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// responseWriter is a stream's http.ResponseWriter and http.Flusher. It is
// used by the handler's goroutine only, as net/http requires.
type responseWriter struct {
	st          *stream
	header      http.Header // the handler's (Header)
	snap        *headerSnap // the header fields, once fixed (fields)
	status      int
	wroteHeader bool     // the status is decided
	sentHeader  bool     // the HEADERS frame is written (set under c.wmu: writeInformational reads it)
	ended       bool     // END_STREAM is written (or the stream is gone)
	sent        bool     // the end of the stream was handed to the socket
	head        bool     // the request's method was HEAD (isHead)
	trailers    []string // declared with the Trailer header
	buf         *[]byte  // body not yet sent
	err         error    // the stream's end, once writes fail
	declared    int64    // Content-Length at WriteHeader, or -1
	written     int64    // body bytes accepted
}

// headerPool recycles response header maps, emptied: a map's table was a
// tenth of a unary call's allocated bytes. The http.ResponseWriter
// contract (no use after the handler returns) is what makes it safe.
var headerPool = sync.Pool{New: func() any { return make(http.Header, 8) }}

func (w *responseWriter) Header() http.Header {
	if w.header == nil {
		w.header = headerPool.Get().(http.Header)
	}
	return w.header
}

// WriteHeader decides the response's status and fixes its header fields
// (http.ResponseWriter: what the handler changes in the map afterwards
// goes out only as trailers). An informational status (1xx) goes out at
// once instead (informational).
func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader || w.ended {
		return
	}
	if code < 100 || code > 999 {
		panic("h2: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code < 200 {
		w.informational(code)
		return
	}
	w.decide(code)
	w.fields()
}

// decide decides the status, leaving the fields to the caller: WriteHeader
// fixes them, and the server's own calls, which send the header block
// before the handler can run again, leave them to the send (fields).
func (w *responseWriter) decide(code int) {
	w.wroteHeader = true
	w.status = code
	if w.st.observed {
		w.st.rec.WroteHeader(code)
	}
	w.declared = -1
	// The canonical key, as Get would look it up, without canonicalizing
	// it on every response.
	if cl := w.header["Content-Length"]; len(cl) > 0 {
		if v, err := strconv.ParseUint(cl[0], 10, 63); err == nil {
			w.declared = int64(v)
		}
	}
}

// statusHasBody: 204 and 304 responses have no body.
func (w *responseWriter) statusHasBody() bool {
	return w.status != http.StatusNoContent && w.status != http.StatusNotModified
}

func (w *responseWriter) bodyAllowed() bool { return !w.isHead() && w.statusHasBody() }

// isHead: a HEAD response's body is counted (for its Content-Length) and
// dropped, its start kept for the sniffed Content-Type, as net/http does.
// It is the method the request came with: the handler may change its
// *http.Request, not what the response is.
func (w *responseWriter) isHead() bool { return w.head }

func (w *responseWriter) Write(p []byte) (int, error) {
	return w.write(len(p), p, "")
}

func (w *responseWriter) WriteString(s string) (int, error) {
	return w.write(len(s), nil, s)
}

func (w *responseWriter) write(n int, p []byte, s string) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.ended {
		return 0, errStreamClosed
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK) // the handler runs again before the header block goes out
	}
	if w.isHead() && w.statusHasBody() {
		w.written += int64(n)
		w.keepForSniff(p, s)
		return n, nil
	}
	if !w.bodyAllowed() {
		return 0, http.ErrBodyNotAllowed
	}
	var tooLong error
	if w.declared >= 0 && w.written+int64(n) > w.declared {
		// As net/http: what fits the declared length is sent.
		n, tooLong = int(w.declared-w.written), http.ErrContentLength
		if p != nil {
			p = p[:n]
		} else {
			s = s[:n]
		}
	}
	w.written += int64(n)
	if w.buf == nil {
		w.buf = bodyPool.Get().(*[]byte)
	}
	if p != nil {
		*w.buf = append(*w.buf, p...)
	} else {
		*w.buf = append(*w.buf, s...)
	}
	if len(*w.buf) >= bufferedBody {
		if err := w.send(false); err != nil {
			return 0, err
		}
	}
	return n, tooLong
}

// sniffLen is how much of a body http.DetectContentType reads.
const sniffLen = 512

// keepForSniff keeps the start of a HEAD response's body, which is not
// sent, until the header block goes out: its Content-Type is sniffed from
// it, as net/http does.
func (w *responseWriter) keepForSniff(p []byte, s string) {
	if w.sentHeader {
		return
	}
	if w.buf == nil {
		w.buf = bodyPool.Get().(*[]byte)
	}
	room := sniffLen - len(*w.buf)
	if room <= 0 {
		return
	}
	if p != nil {
		*w.buf = append(*w.buf, p[:min(room, len(p))]...)
	} else {
		*w.buf = append(*w.buf, s[:min(room, len(s))]...)
	}
}

// Flush sends the headers and the body written so far.
func (w *responseWriter) Flush() { _ = w.FlushError() }

// FlushError is Flush for http.ResponseController.
func (w *responseWriter) FlushError() error {
	if w.ended {
		return errStreamClosed
	}
	if !w.wroteHeader {
		w.decide(http.StatusOK) // the header block goes out now
	}
	if !w.sentHeader && w.grpcEnding() {
		// Left to the response's end, which the handler is about to
		// reach (connect-go flushes as it returns): the response then
		// goes out Trailers-Only (send).
		return nil
	}
	return w.send(false)
}

// grpcEnding reports whether the response is one grpcBare describes
// whose grpc-status trailer is set: the handler is ending the call.
func (w *responseWriter) grpcEnding() bool {
	// Spelt as hasTrailers finds it, so that a held flush is always
	// followed by the trailers that end the response.
	return len(w.header[http.TrailerPrefix+"Grpc-Status"]) > 0 && w.grpcBare()
}

// finish ends the response after the handler returned, and the stream.
func (w *responseWriter) finish() {
	if !w.ended && w.err == nil {
		if !w.wroteHeader {
			w.decide(http.StatusOK) // the handler has returned
		}
		w.explainRejection()
		_ = w.send(true)
	}
	w.closeStream()
}

// closeStream releases the stream once its handler is done (or panicked),
// dropping what is left of its request body (abortLocked). A response that
// did not end is reset with INTERNAL_ERROR; a complete one whose client is
// still sending with NO_ERROR, which tells the client to stop (RFC 9113
// section 8.1), after the frames the client has already sent on it are
// read (resetLateLocked).
func (w *responseWriter) closeStream() {
	st := w.st
	c := st.c
	c.mu.Lock()
	rst, code, late := false, http2.ErrCodeNo, false
	wasReset, why := st.reset, st.resetErr
	if !st.reset {
		switch {
		case !w.ended:
			rst, code = true, http2.ErrCodeInternal
		case !st.remoteClosed:
			late = true // NO_ERROR, lateResetGrace from now (resetLateLocked)
		}
	}
	if c.streams[st.id] == st && !late {
		delete(c.streams, st.id)
	}
	inc := st.abortLocked(errStreamClosed)
	if late {
		c.resetLateLocked(st.id)
	}
	// The handler is done: the stream stops counting as running, so a
	// graceful close may proceed, and counts as finishing until its record
	// has reached the Observer (Config.MaxConcurrentStreams).
	c.running--
	c.finishing.Add(1)
	closeNow := c.running == 0 && c.goingAway && !c.failed
	c.mu.Unlock()
	c.writeWindowUpdates(inc, 0, 0)
	if rst {
		c.writeControl(func(fr *http2.Framer) error { return fr.WriteRSTStream(st.id, code) })
		c.noteServerReset(code)
	}
	if late {
		c.armLateResets()
	}
	if closeNow {
		c.closeGracefully()
	}
	w.endRecord(wasReset, why, rst && code != http2.ErrCodeNo)
	if w.header != nil {
		if len(w.header) <= 32 {
			clear(w.header)
			headerPool.Put(w.header)
		}
		w.header = nil
	}
	if w.snap != nil {
		w.snap.release()
		w.snap = nil
	}
	if w.buf != nil {
		if cap(*w.buf) <= 64<<10 {
			*w.buf = (*w.buf)[:0]
			bodyPool.Put(w.buf)
		}
		w.buf = nil
	}
	c.finishing.Add(-1)
}

// send writes what is pending: the HEADERS frame if not yet written, the
// buffered body as DATA within the flow-control windows (waiting for them
// as needed), and with end, the end of the stream: trailers, or
// END_STREAM on the last frame.
func (w *responseWriter) send(end bool) error {
	st := w.st
	c := st.c
	var data []byte
	if w.buf != nil && w.bodyAllowed() { // a HEAD response's is kept for sniffing only
		data = *w.buf
	}
	if !w.sentHeader {
		w.declareTrailers()
		if w.fields().first("Connection") == "close" {
			// As over HTTP/1.1 (and net/http's server): the handler
			// asks for the connection to end once what runs on it has.
			c.shutdown(outcome.GoAwayHandler)
		}
	}
	trailers := end && w.hasTrailers()
	// A gRPC response that ends before any of its body is sent, with no
	// header metadata of its own, goes out as gRPC's Trailers-Only
	// response: its header fields and trailers in one HEADERS frame that
	// ends the stream, as grpc-go's server sends it. gRPC clients retry a
	// call under a retry policy only when its answer is Trailers-Only
	// (gRFC A6: response headers commit the call).
	trailersOnly := trailers && !w.sentHeader && w.grpcBare()
	for {
		c.wmu.Lock()
		c.waitRoomLocked(st)
		c.mu.Lock()
		if st.reset || c.wbroken || c.closed {
			err := st.resetErr
			if err == nil {
				err = errConnClosed
			}
			c.mu.Unlock()
			c.wmu.Unlock()
			w.err = err
			w.ended = true
			return err
		}
		win, ok := st.sendWindowLocked()
		if !ok {
			c.mu.Unlock()
			c.wmu.Unlock()
			c.goAway(http2.ErrCodeFlowControl, true, outcome.GoAwayError)
			w.err, w.ended = errConnClosed, true
			return errConnClosed
		}
		n := min(len(data), int(max(0, min(win, c.sendWindow))))
		st.sendDelta -= int32(n)
		c.sendWindow -= int32(n)
		frameSize := int(c.peerFrameSize)
		c.mu.Unlock()

		chunk := data[:n]
		data = data[n:]
		if st.observed {
			st.rec.WroteBody(chunk) // what goes on the wire, as it goes
		}
		last := end && len(data) == 0 // this round ends the stream
		if !w.sentHeader && trailersOnly {
			w.encodeHeaderLocked(false)
			c.enc.appendTrailers(w.trailers, w.header)
			c.writeHeaderBlockLocked(st.id, true)
			w.sentHeader, w.ended = true, true
		}
		if !w.sentHeader {
			w.encodeHeaderLocked(end && !trailers && len(w.trailers) == 0)
			c.writeHeaderBlockLocked(st.id, last && len(chunk) == 0 && !trailers)
			w.sentHeader = true
			if last && len(chunk) == 0 && !trailers {
				w.ended = true
			}
		}
		for len(chunk) > 0 {
			k := min(len(chunk), frameSize)
			endStream := last && k == len(chunk) && !trailers
			c.writeDataLocked(st.id, endStream, chunk[:k], frameSize)
			chunk = chunk[k:]
			w.ended = w.ended || endStream
		}
		if last && !w.ended {
			if trailers {
				w.encodeTrailersLocked()
			}
			// A trailer block without fields (every value one HTTP
			// forbids) is not sent: it could not carry a pending table
			// size update, which RFC 7541 section 4.2 requires in the
			// first block after the change.
			if trailers && c.enc.buf.Len() > 0 {
				c.writeHeaderBlockLocked(st.id, true)
			} else {
				c.writeDataLocked(st.id, true, nil, frameSize)
			}
			w.ended = true
		}
		c.flushLocked()
		w.sent = w.ended && !c.wbroken
		if w.ended {
			c.responseEndedLocked()
		}
		c.wmu.Unlock()
		if len(data) == 0 {
			break
		}
		// Out of window: wait for WINDOW_UPDATE (or the stream's end).
		c.waitSendWindow(st)
	}
	if w.buf != nil {
		*w.buf = (*w.buf)[:0]
	}
	return nil
}

// grpcBare reports whether the response is a gRPC one of status 200, with
// no body so far and no header fields but the protocol's and the server's
// (grpcFields): one grpc-go's server sends Trailers-Only if it ends now.
// Metadata of the handler's own makes grpc-go send its headers apart, and
// clients read it as headers, not trailers.
func (w *responseWriter) grpcBare() bool {
	if w.written != 0 || w.buf != nil && len(*w.buf) != 0 || w.status != http.StatusOK {
		return false
	}
	h := w.fields()
	if !outcome.IsGRPC(h.first("Content-Type")) {
		return false
	}
	for _, f := range h.fields {
		if _, ok := grpcFields[f.key]; !ok {
			return false
		}
	}
	return true
}

// grpcFields are the header fields of a gRPC response that are not the
// handler's metadata: the protocol's, and those the server adds.
var grpcFields = map[string]struct{}{
	"Content-Type": {}, "Grpc-Accept-Encoding": {}, "Grpc-Encoding": {},
	"Vary": {}, "Date": {}, "Trailer": {},
}

// encodeHeaderLocked encodes the response's HEADERS. complete is set
// when the whole response is in hand and has no trailers: its length is
// then sent. Called with c.wmu.
func (w *responseWriter) encodeHeaderLocked(complete bool) {
	c := w.st.c
	h := w.fields()
	cl, hasLength := h.get("Content-Length")
	if len(cl) > 0 && (len(cl) != 1 || w.declared < 0) {
		// As net/http: the first value if it is a length (the one the
		// body is held to), else none and the server's own count. A key
		// without values stays: it keeps the server from adding one.
		if w.declared >= 0 {
			h.set("Content-Length", cl[:1])
		} else {
			h.del("Content-Length")
			hasLength = false
		}
	}
	if w.statusHasBody() && w.buf != nil && len(*w.buf) > 0 {
		if _, ok := h.get("Content-Type"); !ok && h.first("Content-Encoding") == "" {
			h.set("Content-Type", []string{http.DetectContentType(*w.buf)})
		}
	}
	status := statusText(w.status)
	var length string
	if !hasLength && complete {
		switch {
		case w.bodyAllowed() && w.buf != nil:
			length = strconv.Itoa(len(*w.buf))
		case w.bodyAllowed():
			length = "0"
		case w.isHead() && w.written > 0:
			length = strconv.FormatInt(w.written, 10)
		}
	}
	var date string
	if _, ok := h.get("Date"); !ok {
		date = httpDate()
	}
	c.enc.header(status, length, date, h.fields)
}

// declareTrailers notes the names of the Trailer header, before the
// headers are sent: their values, set later, go out as trailers.
func (w *responseWriter) declareTrailers() {
	vv, _ := w.fields().get("Trailer")
	for name := range trailerNames(vv) {
		w.trailers = append(w.trailers, name)
	}
}

// hasTrailers reports whether the response has trailers to send: values
// for the declared Trailer names or keys with http.TrailerPrefix.
func (w *responseWriter) hasTrailers() bool {
	for _, k := range w.trailers {
		if len(w.header[k]) > 0 {
			return true
		}
	}
	for k, vv := range w.header {
		if len(vv) > 0 && strings.HasPrefix(k, http.TrailerPrefix) {
			return true
		}
	}
	return false
}

// encodeTrailersLocked encodes the trailers. Called with c.wmu.
func (w *responseWriter) encodeTrailersLocked() {
	w.st.c.enc.trailers(w.trailers, w.header)
}

// writeDataLocked writes a DATA frame of stream id. When the last pending
// frame is a DATA frame of the same stream with room left, it grows that
// frame instead: the flushes of a stream that sends message after message
// (connect flushes each one) while the socket is busy go out as one frame,
// as they would through a buffer flushed only when the handler waits, but
// without holding anything back. An empty frame that ends the stream sets
// END_STREAM on the frame it follows. Called with c.wmu.
func (c *conn) writeDataLocked(id uint32, endStream bool, p []byte, frameSize int) {
	const header = 9 // RFC 9113 section 4.1
	if at := c.dataAt; at >= 0 && c.dataID == id && len(c.out)-at-header+len(p) <= frameSize {
		c.out = append(c.out, p...)
		n := len(c.out) - at - header
		c.out[at], c.out[at+1], c.out[at+2] = byte(n>>16), byte(n>>8), byte(n)
		if endStream {
			c.out[at+4] |= byte(http2.FlagDataEndStream)
			c.dataAt = -1
		}
		return
	}
	_ = c.fr.WriteData(id, endStream, p)
	if !endStream {
		c.dataAt, c.dataID = len(c.out)-len(p)-header, id
	}
}
