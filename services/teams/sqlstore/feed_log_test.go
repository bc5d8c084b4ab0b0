package sqlstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/services/teams"
)

// logLine is one JSON log record of a feedLog.
type logLine struct {
	Msg      string        `json:"msg"`
	Err      string        `json:"err"`
	Failures int           `json:"failures"`
	DownFor  time.Duration `json:"down_for"` // slog writes nanoseconds
}

// clockedLog is a feedLog on a clock the test moves, writing JSON lines.
func clockedLog(live bool) (*feedLog, *time.Time, func() []logLine) {
	var buf bytes.Buffer
	l := newFeedLog(slog.New(slog.NewJSONHandler(&buf, nil)), teams.NewFeed(live), "test")
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return now }
	lines := func() []logLine {
		var out []logLine
		for _, s := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			if s == "" {
				continue
			}
			var ll logLine
			if err := json.Unmarshal([]byte(s), &ll); err != nil {
				panic(err)
			}
			out = append(out, ll)
		}
		buf.Reset()
		return out
	}
	return l, &now, lines
}

// A source down for ten minutes, retried every 200 ms as SQLite's poller
// does, is logged a handful of times, further and further apart, not 3000.
func TestFeedLogStillDownIsQuiet(t *testing.T) {
	l, now, lines := clockedLog(true)
	refused := errors.New("connection refused")
	start := *now
	l.down(refused, 200*time.Millisecond)
	got := lines()
	if len(got) != 1 || !strings.HasPrefix(got[0].Msg, "team feed down;") {
		t.Fatalf("going down logged %+v, want one \"team feed down\" line", got)
	}

	var at []time.Duration // when each "still down" line was written
	for i := 1; i <= 3000; i++ {
		*now = now.Add(200 * time.Millisecond)
		l.down(refused, 200*time.Millisecond)
		for _, ll := range lines() {
			if ll.Msg != "team feed still down" || ll.Err != refused.Error() {
				t.Fatalf("line %+v, want \"team feed still down\" with err %q", ll, refused)
			}
			if ll.Failures != i+1 {
				t.Errorf("failures = %d after %d failed tries", ll.Failures, i+1)
			}
			if want := now.Sub(start); ll.DownFor != want {
				t.Errorf("down_for = %s, want %s", ll.DownFor, want)
			}
			at = append(at, now.Sub(start))
		}
	}
	// 1, 3, 7, 15, 31, 63 s, then every minute: 15 lines in ten minutes.
	if len(at) < 10 || len(at) > 16 {
		t.Fatalf("%d \"still down\" lines in ten minutes of failures every 200 ms (the first at %v), want 10 to 16", len(at), at[:min(len(at), 20)])
	}
	if at[0] > 2*time.Second {
		t.Errorf("first \"still down\" line after %v, want within 2 s", at[0])
	}
	for i := 1; i < len(at); i++ {
		gap, prev := at[i]-at[i-1], time.Duration(0)
		if i > 1 {
			prev = at[i-1] - at[i-2]
		}
		if gap < prev || gap > stillDownEvery+200*time.Millisecond {
			t.Errorf("gap %v after %v (lines at %v): want gaps that grow up to a minute", gap, prev, at)
		}
	}

	// An error whose text changes at every try (a local port in it) is
	// no news: still once a minute, each line with the latest error.
	var changing []logLine
	for i := range 3000 {
		*now = now.Add(200 * time.Millisecond)
		l.down(fmt.Errorf("read tcp 10.0.0.2:%d: connection reset by peer", 40000+i), 200*time.Millisecond)
		for _, ll := range lines() {
			if want := fmt.Sprintf("read tcp 10.0.0.2:%d: connection reset by peer", 40000+i); ll.Err != want {
				t.Errorf("a line with err %q, want the latest, %q", ll.Err, want)
			}
			changing = append(changing, ll)
		}
	}
	if len(changing) < 9 || len(changing) > 11 {
		t.Errorf("%d lines in ten minutes of errors that change at every try, want one a minute", len(changing))
	}

	// Back: one line with how long it was down; a later outage starts a
	// new count and is logged as going down again.
	*now = now.Add(time.Second)
	l.live()
	if got := lines(); len(got) != 1 || !strings.HasPrefix(got[0].Msg, "team feed live again") || got[0].DownFor != now.Sub(start) {
		t.Fatalf("coming back logged %+v, want \"team feed live again\" with down_for %v", got, now.Sub(start))
	}
	*now = now.Add(time.Minute)
	l.down(refused, 50*time.Millisecond)
	*now = now.Add(time.Second)
	l.down(refused, 50*time.Millisecond)
	got = lines()
	if len(got) != 2 || !strings.HasPrefix(got[0].Msg, "team feed down;") || got[1].Failures != 2 || got[1].DownFor != time.Second {
		t.Fatalf("the next outage logged %+v, want \"team feed down\", then \"still down\" with failures 2, down_for 1s", got)
	}
}

// A source not reached at start is logged at its first failure, and
// "live again" once it is reached.
func TestFeedLogDownAtStart(t *testing.T) {
	l, now, lines := clockedLog(false)
	l.down(errors.New("connection refused"), 50*time.Millisecond)
	if got := lines(); len(got) != 1 || got[0].Msg != "team feed still down" || got[0].Failures != 1 {
		t.Fatalf("the first failure logged %+v, want \"team feed still down\" with failures 1", got)
	}
	*now = now.Add(300 * time.Millisecond)
	l.live()
	if got := lines(); len(got) != 1 || !strings.HasPrefix(got[0].Msg, "team feed live again") || got[0].DownFor != 300*time.Millisecond {
		t.Fatalf("coming up logged %+v, want \"team feed live again\" with down_for 300ms", got)
	}
}
