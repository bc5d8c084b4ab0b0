// Package logsample writes a log line that every call of a failing
// dependency would repeat at most once a second, with the count of those
// it left out: while a database is down or cut off every call fails the
// same way, and a line per call (thousands a second under load, beside
// each call's own line) would bury the log.
package logsample

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Line is one such line; the zero Line is ready.
type Line struct {
	mu         sync.Mutex
	next       time.Time
	suppressed int
	// Clock is time.Now when nil (tests set it).
	Clock func() time.Time
}

// admit reports whether to write the line now, and how many lines it
// turned away since the last it admitted.
func (l *Line) admit() (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now
	if l.Clock != nil {
		now = l.Clock
	}
	t := now()
	if t.Before(l.next) {
		l.suppressed++
		return false, 0
	}
	l.next = t.Add(time.Second)
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}

// Log writes msg with err through logger at level if the line is due,
// with suppressed=N, the lines left out since the last, when there were.
func (l *Line) Log(ctx context.Context, logger *slog.Logger, level slog.Level, msg string, err error) {
	ok, suppressed := l.admit()
	if !ok {
		return
	}
	attrs := []slog.Attr{slog.String("err", err.Error())}
	if suppressed > 0 {
		attrs = append(attrs, slog.Int("suppressed", suppressed))
	}
	logger.LogAttrs(ctx, level, msg, attrs...)
}
