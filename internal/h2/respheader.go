package h2

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A response's header fields, as net/http's HTTP/2 server sends them: the
// map as WriteHeader found it, informational responses, and Date.

// headerSnap is a copy of a handler's header map, flat, trailers (keys
// with http.TrailerPrefix) left out: the fields the HEADERS frame is made
// from. Its values share one slice, and it is pooled: taking one
// allocates nothing once warm, and, being no map, it costs no hashing to
// fill, look up or empty (a map's cost a tenth of the time a unary
// response spent in the writer).
type headerSnap struct {
	fields []memoField
	vals   []string
}

var snapPool = sync.Pool{New: func() any { return &headerSnap{fields: make([]memoField, 0, 8), vals: make([]string, 0, 8)} }}

// takeSnap copies h's fields, values included: a handler may change a
// value in place (h[k][0] = v) as well as set and delete keys.
func takeSnap(h http.Header) *headerSnap {
	s := snapPool.Get().(*headerSnap)
	for k, vv := range h {
		if !strings.HasPrefix(k, http.TrailerPrefix) {
			n := len(s.vals)
			s.vals = append(s.vals, vv...)
			s.fields = append(s.fields, memoField{key: k, values: s.vals[n:len(s.vals):len(s.vals)]}) // a map's keys are unique
		}
	}
	return s
}

// get returns the values of key (canonical) and whether s has it.
func (s *headerSnap) get(key string) ([]string, bool) {
	for i := range s.fields {
		if s.fields[i].key == key {
			return s.fields[i].values, true
		}
	}
	return nil, false
}

// first is the first value of key, or "" (http.Header.Get).
func (s *headerSnap) first(key string) string {
	if vv, _ := s.get(key); len(vv) > 0 {
		return vv[0]
	}
	return ""
}

// set gives key (canonical) a copy of vv as its values.
func (s *headerSnap) set(key string, vv []string) {
	n := len(s.vals)
	s.vals = append(s.vals, vv...)
	f := memoField{key: key, values: s.vals[n:len(s.vals):len(s.vals)]}
	for i := range s.fields {
		if s.fields[i].key == key {
			s.fields[i] = f
			return
		}
	}
	s.fields = append(s.fields, f)
}

// del removes key.
func (s *headerSnap) del(key string) {
	s.fields = slices.DeleteFunc(s.fields, func(f memoField) bool { return f.key == key })
}

// release empties s into the pool, unless it grew too large to keep.
func (s *headerSnap) release() {
	if cap(s.fields) > 32 || cap(s.vals) > 128 {
		return
	}
	clear(s.fields[:cap(s.fields)])
	clear(s.vals[:cap(s.vals)])
	s.fields, s.vals = s.fields[:0], s.vals[:0]
	snapPool.Put(s)
}

// fields is the response's header fields: the copy WriteHeader took, or,
// where the server decided the status itself (Flush, or the handler's
// return, before WriteHeader), one taken now, the block going out before
// the handler can change its map again. The server adds to it what it
// adds (a sniffed Content-Type, a rejection's explanation), which so
// stays out of the handler's map, as with net/http's server.
func (w *responseWriter) fields() *headerSnap {
	if w.snap == nil {
		w.snap = takeSnap(w.header)
	}
	return w.snap
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
	s := takeSnap(w.header)
	defer s.release()
	s.del("Content-Length")
	w.st.c.writeInformational(w.st, code, s.fields)
}

// dateClock keeps the Date field's value for the current second
// (httpDate). It reads the clock once a second, on a timer due at each
// second's start, and not on every response, where time.Now and the
// formatting cost about 0.4% of a unary call's CPU; as servers that keep
// the field (nginx refreshes it once per turn of its event loop), a
// response in the first moments of a second, before the timer has run,
// may carry the second before. A second without a response stops the
// timer; the next response starts it again.
var dateClock struct {
	text atomic.Pointer[string] // nil while stopped
	used atomic.Bool            // a response took the value since the last tick
	mu   sync.Mutex             // held to start, tick or stop
}

// httpDate is the Date field's value now (RFC 9110 section 6.6.1; an
// origin server with a clock sends it).
func httpDate() string {
	if p := dateClock.text.Load(); p != nil {
		if !dateClock.used.Load() {
			dateClock.used.Store(true)
		}
		return *p
	}
	dateClock.mu.Lock()
	defer dateClock.mu.Unlock()
	if p := dateClock.text.Load(); p != nil {
		return *p
	}
	return setDate()
}

// setDate reads the clock, keeps its second's value and arms the next
// tick. Called with dateClock.mu.
func setDate() string {
	now := time.Now()
	text := now.UTC().Format(http.TimeFormat)
	dateClock.text.Store(&text)
	dateClock.used.Store(false)
	time.AfterFunc(now.Truncate(time.Second).Add(time.Second).Sub(now), dateTick)
	return text
}

// dateTick runs at a second's start: the new value, or, when no response
// took one for the whole second past, a stop.
func dateTick() {
	dateClock.mu.Lock()
	defer dateClock.mu.Unlock()
	if !dateClock.used.Load() {
		dateClock.text.Store(nil)
		return
	}
	setDate()
}
