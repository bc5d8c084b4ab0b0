package main

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// OpenTelemetry's errors are at most one line every 10 s, the next
// counting those left out: a collector that refuses every batch must not
// write a line per batch.
func TestTracingErrorsBounded(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	l := newTracingErrorLog(slog.New(slog.NewTextHandler(&buf, nil)), func() time.Time { return now })
	for range 1000 { // 100 s of an error every 100 ms
		l.log(errors.New("OTLP export: 400 Bad Request"))
		now = now.Add(100 * time.Millisecond)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 10 {
		t.Fatalf("%d lines for 100 s of errors, want 10:\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[0], "errors_not_logged=0") || !strings.Contains(lines[1], "errors_not_logged=99") {
		t.Errorf("the lines do not count the errors left out:\n%s", buf.String())
	}
}
