package telemetry

import (
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/switchyard/switchyard/internal/coalesce"
	"github.com/switchyard/switchyard/internal/outcome"
)

// TextHandler is slog's text handler on a writer, whose per-call lines
// the telemetry writes itself: the same bytes slog would write, without
// slog's generic walk over the attributes, which cost about 1 µs of a
// 15 µs GetTeam call. Every other line goes through slog.
type TextHandler struct {
	slog.Handler // *slog.TextHandler on w
	w            io.Writer
	stamp        lastStamp
}

// NewTextHandler is slog.NewTextHandler(w, &slog.HandlerOptions{Level:
// level}), with the call lines written directly. Each line is one Write;
// lines from many goroutines are kept whole by a lock around w, except
// on a *coalesce.Writer (what cmd/switchyard logs through), whose every
// Write is whole already: a second lock there would be one more that
// every call takes on every core.
func NewTextHandler(w io.Writer, level slog.Leveler) *TextHandler {
	if _, whole := w.(*coalesce.Writer); !whole {
		w = &lineWriter{w: w}
	}
	return &TextHandler{Handler: slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}), w: w}
}

// lineWriter serializes the whole lines of slog and of the call lines.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

var lineBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// writeCallLine writes r's line: what logSink.write would hand slog, in
// the text handler's format.
func (h *TextHandler) writeCallLine(now time.Time, level slog.Level, r *outcome.Record, procedure, traceID string) {
	buf := lineBuffers.Get().(*[]byte)
	b := appendCallLine((*buf)[:0], &h.stamp, now, level, r, procedure, traceID)
	_, _ = h.w.Write(b)
	*buf = b
	lineBuffers.Put(buf)
}

func appendCallLine(b []byte, stamp *lastStamp, now time.Time, level slog.Level, r *outcome.Record, procedure, traceID string) []byte {
	if !now.IsZero() { // slog leaves a zero time out
		b = append(b, "time="...)
		b = stamp.append(b, now.Round(0))
		b = append(b, ' ')
	}
	b = append(b, "level="...)
	b = appendText(b, level.String())
	b = append(b, " msg=rpc procedure="...)
	b = appendText(b, procedure)
	b = append(b, " protocol="...)
	b = appendText(b, r.Protocol.String())
	b = append(b, " code="...)
	b = appendText(b, r.Code.String())
	b = append(b, " duration="...)
	b = append(b, r.Duration.String()...) // slog writes durations unquoted
	b = append(b, " peer="...)
	b = appendText(b, r.Peer)
	b = append(b, " user_agent="...)
	b = appendText(b, r.UserAgent)
	for _, a := range metadataOf(r.Header) {
		// slog's group form; a header field's name is a token, which
		// slog never quotes.
		b = append(b, " metadata."...)
		b = append(b, a.Key...)
		b = append(b, '=')
		b = appendText(b, a.Value.String())
	}
	if r.End != outcome.EndSent {
		b = append(b, " end="...)
		b = appendText(b, r.End.String())
	}
	if !r.Handled && r.HTTPStatus != 0 {
		b = append(b, " http_status="...)
		b = strconv.AppendInt(b, int64(r.HTTPStatus), 10)
	}
	if r.Code != outcome.CodeOK && r.Message != "" {
		b = append(b, " error="...)
		b = appendText(b, r.Message)
	}
	if traceID != "" {
		b = append(b, " trace_id="...)
		b = appendText(b, traceID)
	}
	return append(b, '\n')
}

// lastStamp keeps the last time appendMillis wrote: the calls that end
// in one millisecond (a hundred of them on a busy core) share its text.
type lastStamp struct{ p atomic.Pointer[stamp] }

type stamp struct {
	ms   int64 // t.UnixMilli()
	loc  *time.Location
	text string
}

// append writes t as appendMillis does. The same millisecond in the same
// Location is the same text: the offset is the Location's at that instant.
func (l *lastStamp) append(b []byte, t time.Time) []byte {
	ms, loc := t.UnixMilli(), t.Location()
	if s := l.p.Load(); s != nil && s.ms == ms && s.loc == loc {
		return append(b, s.text...)
	}
	n := len(b)
	b = appendMillis(b, t)
	l.p.Store(&stamp{ms: ms, loc: loc, text: string(b[n:])})
	return b
}

// appendMillis writes t as RFC 3339 with exactly three digits of
// milliseconds, truncated, as slog's text handler does. It goes through
// the RFC3339Nano layout, which AppendFormat formats fastest, with 100 µs
// added so that the fraction always has at least four digits, and drops
// the fourth.
func appendMillis(b []byte, t time.Time) []byte {
	const upToMillis = len("2006-01-02T15:04:05.000")
	n := len(b)
	b = t.Truncate(time.Millisecond).Add(100*time.Microsecond).AppendFormat(b, time.RFC3339Nano)
	if len(b) <= n+upToMillis { // cannot be: the fraction has four digits
		return b
	}
	// (Beyond year 9999 or before year 0 the digit dropped is another,
	// as in slog: the lines stay the same.)
	return append(b[:n+upToMillis], b[n+upToMillis+1:]...)
}

// appendText writes s as slog's text handler writes a string value: bare
// unless it is empty or holds a space, '=', '"', a control character, or
// a rune that is invalid, a space or unprintable; then Go-quoted.
func appendText(b []byte, s string) []byte {
	if textNeedsQuotes(s) {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}

func textNeedsQuotes(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < ' ' || c == ' ' || c == '=' || c == '"' {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
		i += size
	}
	return false
}
