package h2

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// A response's header fields, as net/http's HTTP/2 server sends them: the
// map as WriteHeader found it, informational responses, and Date.

// headerSnap is a copy of a handler's header map: what the HEADERS frame
// is made from once WriteHeader fixed the fields. Its values share one
// slice, and it is pooled: taking one allocates nothing once warm.
type headerSnap struct {
	h    http.Header
	vals []string
}

var snapPool = sync.Pool{New: func() any { return &headerSnap{h: make(http.Header, 8)} }}

// takeSnap copies h, values included: a handler may change a value in
// place (h[k][0] = v) as well as set and delete keys.
func takeSnap(h http.Header) *headerSnap {
	s := snapPool.Get().(*headerSnap)
	for k, vv := range h {
		n := len(s.vals)
		s.vals = append(s.vals, vv...)
		s.h[k] = s.vals[n:len(s.vals):len(s.vals)]
	}
	return s
}

// release empties s into the pool, unless it grew too large to keep.
func (s *headerSnap) release() {
	if len(s.h) > 32 || cap(s.vals) > 128 {
		return
	}
	clear(s.h)
	clear(s.vals)
	s.vals = s.vals[:0]
	snapPool.Put(s)
}

// snapshot fixes the header fields at WriteHeader: the handler may go on
// changing its map before the fields go out.
func (w *responseWriter) snapshot() {
	w.fixed = true
	if len(w.header) > 0 {
		w.snap = takeSnap(w.header)
	}
}

// fields is the header map the HEADERS frame is made from: the copy taken
// at WriteHeader, or the handler's own map when the server decided the
// status itself (Flush or the handler's return before WriteHeader) and
// the block goes out before the handler can change the map again.
func (w *responseWriter) fields() http.Header {
	if w.snap != nil {
		return w.snap.h
	}
	if w.fixed {
		return nil // the map was empty at WriteHeader
	}
	return w.header
}

// ownFields is fields, for the server to add to: a copy, so that what it
// adds (a sniffed Content-Type, a rejection's) stays out of the
// handler's map, as with net/http's server.
func (w *responseWriter) ownFields() http.Header {
	if w.snap == nil {
		w.snap = takeSnap(w.fields())
		w.fixed = true
	}
	return w.snap.h
}

// informational sends a 1xx response at once, with the fields set so far
// but Content-Length, which belongs to the final response: a 103 Early
// Hints names what a page will need while the server still prepares it
// (RFC 8297). 101 is not sent: HTTP/2 has no protocol switch (RFC 9113
// section 8.6), and a client takes the stream's response for malformed.
func (w *responseWriter) informational(code int) {
	if code == http.StatusSwitchingProtocols {
		return
	}
	h := w.header
	if _, ok := h["Content-Length"]; ok {
		s := takeSnap(h)
		defer s.release()
		delete(s.h, "Content-Length")
		h = s.h
	}
	w.st.c.writeInformational(w.st, code, h)
}

// dateValue is the Date field for one second.
type dateValue struct {
	unix int64
	text string
}

var dateNow atomic.Pointer[dateValue]

// httpDate is the Date field's value now (RFC 9110 section 6.6.1; an
// origin server with a clock sends it), formatted once a second.
func httpDate() string {
	now := time.Now()
	if d := dateNow.Load(); d != nil && d.unix == now.Unix() {
		return d.text
	}
	d := &dateValue{unix: now.Unix(), text: now.UTC().Format(http.TimeFormat)}
	dateNow.Store(d)
	return d.text
}
