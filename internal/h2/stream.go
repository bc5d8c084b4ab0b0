package h2

import (
	"context"
	"io"
	"iter"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"

	"github.com/switchyard/switchyard/internal/outcome"
)

// stream is one request and its response. The request body, the response
// writer and the stream are one allocation.
type stream struct {
	c   *conn
	ctx streamCtx
	rw  responseWriter
	rb  requestBody
	id  uint32
	// observed: the call has an outcome record (rec, outcome.go), set
	// before its handler starts.
	observed bool

	// Guarded by c.mu. (The small fields are grouped, here and below: the
	// stream is one allocation per request, and its size class is bytes
	// every call allocates.)
	sendDelta      int32 // send window less conn.peerWindow (sendWindowLocked)
	recvAvail      int32 // stream receive window the client may still use
	recvUnacked    int32
	rtaken         int32  // the size of rbuf when taken: consumed, window not yet returned
	remoteClosed   bool   // the client ended its side (END_STREAM)
	bodyWaiting    bool   // the handler waits in Read
	bodyClosed     bool   // the handler closed the body: arriving data is dropped
	reset          bool   // reset or connection gone: nothing more is written
	expired        bool   // its context's deadline passed (streamCtx.expire): it waits no more
	ended          bool   // the server ended the call (conn.endCalls): its Reads wait no more
	lateTicked     bool   // its late reset waited out a watchdog tick (sendLateResets)
	wantContinue   bool   // Expect: 100-continue; the first Read sends 100 Continue (Read's only, not c.mu)
	received       int64  // body bytes received
	declaredLength int64  // content-length, or -1
	body           []byte // arrived, not yet taken by the handler
	bodyOff        int
	bodyErr        error // io.EOF at the end of the body
	trailer        *requestTrailers
	resetErr       error // why, for the handler's writes

	// Not guarded by c.mu: whether its handler counts against the worker
	// pool's limit, and the pool's generation when it started (p.mu).
	counted atomic.Bool
	gen     uint32

	// The call's outcome record (outcome.go), when the server has an
	// Observer: filled by the serve goroutine (request side, under c.mu)
	// and the handler's (response side).
	rec outcome.Record

	// rbuf is the body the handler took in one go, rbuf[roff:] still to
	// read: most Reads (connect reads a message's prefix, then its bytes)
	// copy from it without the connection's lock. The handler's goroutine
	// only.
	rbuf []byte
	roff int

	// reqTrailer is the handler's r.Trailer, its declared names with nil
	// values: Read copies trailer.got into it at EOF. The handler's
	// goroutine only.
	reqTrailer http.Header

	// In the stream's one allocation too (newRequest): the request as the
	// handler sees it and its URL, the header values of a request of few
	// fields, and the body of a small request (a unary call's message):
	// five allocations a call fewer (TestStreamSizeClass).
	req        http.Request
	url        url.URL
	values     [inlineValues]string
	inlineBody [inlineBody]byte
}

const (
	// inlineValues covers the regular fields of gRPC and Connect clients'
	// requests (content-type, te, user-agent, grpc-timeout, the encodings
	// they accept); a browser's requests have more, and get an array of
	// their own.
	inlineValues = 8
	// inlineBody is bytes: a GetTeam or PutTeam request, gRPC's prefix
	// included; a longer body is appended out of it into an array of its
	// own.
	inlineBody = 48
)

// abortLocked ends the stream: its handler's context is cancelled, reads
// and writes fail with err, and the body it held is dropped
// (dropBodyLocked).
func (st *stream) abortLocked(err error) (connInc uint32) {
	if st.reset {
		return 0
	}
	st.reset = true
	st.resetErr = err
	st.bodyErr = err
	st.ctx.cancel(context.Canceled)
	return st.dropBodyLocked()
}

// dropBodyLocked drops the body bytes the server holds for the handler,
// arrived or taken and not yet consumed, and returns their connection
// window: it reports the WINDOW_UPDATE increment to send, if any.
func (st *stream) dropBodyLocked() (connInc uint32) {
	connInc = st.c.refundLocked(int32(len(st.body)-st.bodyOff) + st.rtaken)
	st.rtaken = 0
	st.body = nil
	st.bodyOff = 0
	return connInc
}

// sendWindowLocked is the stream's send window: the peer's
// SETTINGS_INITIAL_WINDOW_SIZE plus sendDelta, its WINDOW_UPDATE
// increments less the bytes sent. It reports false when a change of the
// setting took the window past 2^31-1, a connection error
// FLOW_CONTROL_ERROR (RFC 9113 section 6.9.2). Called with c.mu.
func (st *stream) sendWindowLocked() (int32, bool) {
	w := int64(st.c.peerWindow) + int64(st.sendDelta)
	if w > maxWindow {
		return 0, false
	}
	return int32(w), true
}

// consumeLocked returns n bytes of stream receive window and reports the
// WINDOW_UPDATE increment to send, if any (batched by quarter windows).
func (st *stream) consumeLocked(n int32) uint32 {
	if st.remoteClosed || st.reset {
		return 0
	}
	st.recvUnacked += n
	if st.recvUnacked < st.c.conf.MaxReceiveBufferPerStream/4 {
		return 0
	}
	inc := st.recvUnacked
	st.recvAvail += inc
	st.recvUnacked = 0
	return uint32(inc)
}

// requestBody is a request's Body: the DATA the serve goroutine queued.
type requestBody struct{ st *stream }

func (b *requestBody) Read(p []byte) (int, error) {
	st := b.st
	if st.wantContinue {
		st.wantContinue = false
		st.c.writeContinue(st)
	}
	if st.roff < len(st.rbuf) {
		n := copy(p, st.rbuf[st.roff:])
		st.roff += n
		return n, nil
	}
	c := st.c
	c.mu.Lock()
	// rbuf is used up: its bytes are consumed, their window goes back.
	var connInc, streamInc uint32
	for {
		if st.rtaken > 0 {
			connInc += c.refundLocked(st.rtaken)
			streamInc += st.consumeLocked(st.rtaken)
			st.rtaken = 0
		}
		if st.bodyOff < len(st.body) || st.bodyErr != nil {
			break
		}
		if connInc != 0 || streamInc != 0 {
			// The client may be waiting for this window before it sends.
			c.mu.Unlock()
			c.writeWindowUpdates(connInc, st.id, streamInc)
			connInc, streamInc = 0, 0
			c.mu.Lock()
			continue
		}
		if st.expired || st.ended {
			c.mu.Unlock()
			if st.expired {
				return 0, errBodyDeadline
			}
			return 0, errCallEnded
		}
		if st.releaseUnlocked(&c.mu) {
			continue // waiting for the client: the handler counts no more
		}
		st.bodyWaiting = true
		c.cond.Wait()
		st.bodyWaiting = false
	}
	if st.bodyOff == len(st.body) || len(p) == 0 {
		err := st.bodyErr
		if len(p) == 0 && st.bodyOff < len(st.body) {
			err = nil
		}
		c.mu.Unlock()
		c.writeWindowUpdates(connInc, st.id, streamInc)
		if err == io.EOF && st.reqTrailer != nil {
			// The serve goroutine wrote st.trailer before the EOF that
			// c.mu handed over, and writes it no more.
			maps.Copy(st.reqTrailer, st.trailer.got)
			st.reqTrailer = nil
		}
		return 0, err
	}
	// Take everything that has arrived; the used-up rbuf becomes the
	// serve goroutine's buffer.
	st.rbuf, st.body = st.body[st.bodyOff:], st.rbuf[:0]
	st.bodyOff = 0
	st.rtaken = int32(len(st.rbuf))
	c.mu.Unlock()
	c.writeWindowUpdates(connInc, st.id, streamInc)
	n := copy(p, st.rbuf)
	st.roff = n
	return n, nil
}

// Buffered is how many body bytes a Read returns without waiting.
func (b *requestBody) Buffered() int {
	st := b.st
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(st.rbuf) - st.roff + len(st.body) - st.bodyOff
}

// Close drops what is unread; data arriving later is dropped too (its
// flow-control window is returned at once).
func (b *requestBody) Close() error {
	st := b.st
	c := st.c
	c.mu.Lock()
	if st.bodyClosed {
		c.mu.Unlock()
		return nil
	}
	st.bodyClosed = true
	if st.bodyErr == nil {
		st.bodyErr = http.ErrBodyReadAfterClose
	}
	inc := st.dropBodyLocked()
	c.mu.Unlock()
	c.writeWindowUpdates(inc, 0, 0)
	return nil
}

// newRequest builds the request of a stream's HEADERS, or reports why it
// is malformed (RFC 9113 section 8.1.1: a stream error PROTOCOL_ERROR).
func (c *conn) newRequest(f *headerBlock) (*http.Request, *stream, error) {
	id := f.id
	malformed := http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
	method, path := f.pseudo("method"), f.pseudo("path")
	scheme, authority := f.pseudo("scheme"), f.pseudo("authority")
	if method == "" || scheme == "" || path == "" || method == "CONNECT" || f.pseudo("protocol") != "" {
		return nil, nil, malformed
	}
	// The method is a token (RFC 9110 section 9), as net/http's
	// NewRequest requires.
	if !httpguts.ValidHeaderFieldName(method) {
		return nil, nil, malformed
	}
	if path[0] != '/' && (method != "OPTIONS" || path != "*") {
		return nil, nil, malformed
	}
	fields := f.regular()
	header := make(http.Header, len(fields))
	st := &stream{
		c:         c,
		id:        id,
		recvAvail: c.conf.MaxReceiveBufferPerStream,
	}
	// One backing array for every value: a header's slice is capped at its
	// one value, so a repeated header's append copies out of it.
	values := st.values[:]
	if len(fields) > len(values) {
		values = make([]string, len(fields))
	}
	declared := int64(-1)
	for i, hf := range fields {
		if connectionSpecific(hf.Name) {
			return nil, nil, malformed
		}
		switch hf.Name {
		case "te":
			if hf.Value != "trailers" {
				return nil, nil, malformed
			}
		case "host":
			if authority == "" {
				authority = hf.Value
			}
			continue
		case "content-length":
			n, err := strconv.ParseUint(hf.Value, 10, 63)
			if err != nil || (declared >= 0 && int64(n) != declared) {
				return nil, nil, malformed
			}
			declared = int64(n)
		}
		key := canonicalHeader(hf.Name)
		if vv, ok := header[key]; ok {
			header[key] = append(vv, hf.Value)
		} else {
			values[i] = hf.Value
			header[key] = values[i : i+1 : i+1]
		}
	}
	if cookies := header["Cookie"]; len(cookies) > 1 {
		header["Cookie"] = []string{strings.Join(cookies, "; ")}
	}
	if f.endStream && declared > 0 {
		return nil, nil, malformed
	}

	st.declaredLength = declared
	st.body = st.inlineBody[:0]
	st.rb.st = st
	st.rw.st = st
	st.rw.head = method == http.MethodHead
	st.ctx.base = c.baseCtx
	st.ctx.st = st
	st.ctx.dl = &c.deadlines

	if err := setRequestURL(&st.url, path); err != nil {
		return nil, nil, malformed
	}
	// WithContext is the one way to set a request's context; the copy it
	// makes is copied on into the stream, and does not escape.
	tmpl := http.Request{
		Method: method, URL: &st.url, Proto: "HTTP/2.0", ProtoMajor: 2,
		Header: header, Host: authority, RemoteAddr: c.remote, RequestURI: path, TLS: c.tlsState,
	}
	st.req = *tmpl.WithContext(&st.ctx)
	req := &st.req
	if f.endStream {
		st.remoteClosed = true
		st.bodyErr = io.EOF
		req.Body = http.NoBody
	} else {
		req.Body = &st.rb
		req.ContentLength = declared
		// As net/http's server: the handler sees no Expect, and its
		// first read of the body tells the client to send it.
		if ex := header["Expect"]; len(ex) > 0 && httpguts.HeaderValuesContainsToken(ex, "100-continue") {
			st.wantContinue = true
			delete(header, "Expect")
		}
	}
	if names := header["Trailer"]; len(names) > 0 {
		// One map of the declared names, the handler's: the serve
		// goroutine keeps the header's values and makes its own when the
		// trailers arrive (processTrailersLocked). A declared name costs
		// a map entry for as long as the stream lasts (GO-2026-6603).
		st.reqTrailer = declaredTrailers(names)
		st.trailer = &requestTrailers{names: slices.Clone(names)}
		req.Trailer = st.reqTrailer
	}
	return req, st, nil
}

// setRequestURL sets u from a request's :path; most paths need no
// unescaping or query work.
func setRequestURL(u *url.URL, path string) error {
	if strings.IndexAny(path, "?%#") < 0 && path[0] == '/' {
		*u = url.URL{Path: path}
		return nil
	}
	parsed, err := url.ParseRequestURI(path)
	if err != nil {
		return err
	}
	*u = *parsed
	return nil
}

// requestTrailers is what the serve goroutine keeps of the trailers a
// request declares: its Trailer header's values (the handler may change
// the header map), and the declared fields of the trailer block.
type requestTrailers struct {
	names []string
	got   http.Header
}

// declaredTrailers is the Trailer map for the names of a request's Trailer
// headers, without those a trailer may not carry.
func declaredTrailers(values []string) http.Header {
	t := http.Header{}
	for key := range trailerNames(values) {
		switch key {
		case "Transfer-Encoding", "Trailer", "Content-Length", "Host":
			continue
		}
		t[key] = nil
	}
	return t
}

// trailerNames yields the names listed in Trailer header values, in
// canonical form.
func trailerNames(values []string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, v := range values {
			for name := range strings.SplitSeq(v, ",") {
				if name = strings.TrimSpace(name); name != "" && !yield(http.CanonicalHeaderKey(name)) {
					return
				}
			}
		}
	}
}

// connectionSpecific reports whether a (lower-case) header field is one
// HTTP/2 forbids (RFC 9113 section 8.2.2).
func connectionSpecific(name string) bool {
	switch name {
	case "connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade":
		return true
	}
	return false
}

// Header names: HTTP/2 carries them in lower case, net/http in canonical
// form. The common ones convert without allocating.
var (
	commonCanonical = map[string]string{}
	commonLower     = map[string]string{}
)

func init() {
	for _, name := range []string{
		"Accept", "Accept-Encoding", "Accept-Language", "Access-Control-Allow-Credentials",
		"Access-Control-Allow-Headers", "Access-Control-Allow-Methods", "Access-Control-Allow-Origin",
		"Access-Control-Expose-Headers", "Access-Control-Max-Age", "Access-Control-Request-Headers",
		"Access-Control-Request-Method", "Authorization", "Cache-Control", "Connect-Accept-Encoding",
		"Connect-Content-Encoding", "Connect-Protocol-Version", "Connect-Timeout-Ms", "Content-Encoding",
		"Content-Length", "Content-Type", "Cookie", "Date", "Etag", "Grpc-Accept-Encoding",
		"Grpc-Encoding", "Grpc-Message", "Grpc-Status", "Grpc-Status-Details-Bin", "Grpc-Timeout",
		"If-Modified-Since", "If-None-Match", "Last-Modified", "Location", "Origin", "Referer",
		"Server", "Set-Cookie", "Te", "Trailer", "User-Agent", "Vary", "X-Content-Type-Options",
		"X-Grpc-Web", "X-User-Agent",
	} {
		lower := strings.ToLower(name)
		commonCanonical[lower] = name
		commonLower[name] = lower
	}
	for code := 100; code < len(statusStrings); code++ {
		statusStrings[code] = strconv.Itoa(code)
	}
}

func canonicalHeader(lower string) string {
	if v, ok := commonCanonical[lower]; ok {
		return v
	}
	return http.CanonicalHeaderKey(lower)
}

// wireName is a response field's name as HTTP/2 carries it, in lower
// case. ok is false for a name that is no token (RFC 9110 §5.1: a space, a
// colon, a byte beyond ASCII, or nothing), which no peer accepts: the
// encoder leaves such a field out, as net/http's server does, rather than
// send a block that fails the whole response.
func wireName(canonical string) (name string, ok bool) {
	if v, ok := commonLower[canonical]; ok {
		return v, true
	}
	if !httpguts.ValidHeaderFieldName(canonical) {
		return "", false
	}
	return strings.ToLower(canonical), true
}

var statusStrings [600]string

func statusText(code int) string {
	if code >= 100 && code < len(statusStrings) {
		return statusStrings[code]
	}
	return strconv.Itoa(code)
}
