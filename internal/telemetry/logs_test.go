package telemetry

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/outcome"
)

func record(t *testing.T, contentType string, handled bool, start time.Time) *outcome.Record {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/teams.v1.TeamsService/GetTeam", nil)
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "test/1")
	r := &outcome.Record{}
	r.Begin(req, start)
	r.Handled = handled
	r.Finish(start.Add(time.Millisecond), http.StatusUnsupportedMediaType, http.Header{}, outcome.EndSent, outcome.CodeInternal)
	return r
}

// TestRejectedCallLinesAreSampled: a flood of calls rejected before any
// handler writes at most the burst and the refill of lines, and one line
// saying how many were dropped; the counts stay exact (every call is
// still counted); calls that reached a handler are never dropped.
func TestRejectedCallLinesAreSampled(t *testing.T) {
	tel, out := textTelemetry(t)
	tel.ServeProcedures([]string{"/teams.v1.TeamsService/GetTeam"})
	start := time.Now()
	const flood = 2000
	for i := range flood {
		// All within 100 ms: the refill adds at most 2 lines.
		r := record(t, "text/plain", false, start.Add(time.Duration(i)*50*time.Microsecond))
		tel.CallStarted(r)
		tel.CallEnded(r)
	}
	handled := record(t, "application/json", true, start.Add(100*time.Millisecond))
	tel.CallStarted(handled)
	tel.CallEnded(handled)
	lines := strings.Count(out.String(), "msg=rpc ")
	if lines > rejectedBurst+3+1 || lines < rejectedBurst {
		t.Errorf("%d rpc lines for %d rejected calls and one handled one; want about %d", lines, flood, rejectedBurst+1)
	}
	if !strings.Contains(out.String(), "http_status=415") {
		t.Error("the rejected calls' lines do not say their HTTP status")
	}
	dropped := tel.metrics.linesDropped.Load()
	if int(dropped)+lines-1 != flood {
		t.Errorf("%d lines dropped + %d written != %d rejected calls", dropped, lines-1, flood)
	}
	s := tel.metrics.seriesOf(tel.procedure("/teams.v1.TeamsService/GetTeam"), outcome.ProtocolHTTP)
	if n := s.calls[outcome.CodeUnknown][outcome.EndSent].Load(); n != flood {
		t.Errorf("%d rejected calls counted, want %d", n, flood)
	}
	// Once lines flow again, a summary says how many were dropped.
	later := record(t, "text/plain", false, start.Add(10*time.Second))
	tel.CallStarted(later)
	tel.CallEnded(later)
	if !strings.Contains(out.String(), "rejected-call log lines dropped") {
		t.Errorf("no summary line of the dropped lines:\n%s", out.String()[max(0, out.Len()-500):])
	}
}

// A long path is cut in the log line at a character's start, not inside
// it: the text line showed a stray \xc3, the JSON line U+FFFD.
func TestLoggedPathCutOnARune(t *testing.T) {
	long := "/" + strings.Repeat("é", 200)
	want := long[:255] + "..."
	var text, js bytes.Buffer
	for _, h := range []slog.Handler{NewTextHandler(&text, nil), slog.NewJSONHandler(&js, nil)} {
		tel, err := New(Options{Logger: slog.New(h)})
		if err != nil {
			t.Fatal(err)
		}
		r := record(t, "application/grpc", true, time.Now())
		r.Procedure = long
		tel.CallEnded(r)
	}
	if !strings.Contains(text.String(), " procedure="+want+" ") {
		t.Errorf("text line does not show the procedure %q:\n%s", want, text.String())
	}
	var line struct{ Procedure string }
	if err := json.Unmarshal(js.Bytes(), &line); err != nil || line.Procedure != want {
		t.Errorf("JSON line's procedure %q (%v), want %q:\n%s", line.Procedure, err, want, js.String())
	}
}

// droppedInSummaries adds up the "dropped" counts of the summary lines in
// a text log.
func droppedInSummaries(t *testing.T, log string) int64 {
	t.Helper()
	var sum int64
	for line := range strings.SplitSeq(log, "\n") {
		if !strings.Contains(line, "rejected-call log lines dropped") {
			continue
		}
		_, n, ok := strings.Cut(line, " dropped=")
		v, err := strconv.ParseInt(n, 10, 64)
		if !ok || err != nil {
			t.Fatalf("summary line without its count: %s", line)
		}
		sum += v
	}
	return sum
}

// The lines dropped are all told: the next line of any call, handled or
// not, is preceded by the summary of those dropped before it (once the
// sample allows one), and the shutdown writes the last; their counts add up to the metric. (The
// summary waited for the next rejected line, so handled calls after a
// flood left it unsaid.)
func TestDroppedLinesAllSummed(t *testing.T) {
	for _, then := range []string{"handled calls", "shutdown"} {
		tel, out := textTelemetry(t)
		tel.ServeProcedures([]string{"/teams.v1.TeamsService/GetTeam"})
		start := time.Now()
		for i := range 400 {
			r := record(t, "text/plain", false, start.Add(time.Duration(i)*time.Millisecond))
			tel.CallStarted(r)
			tel.CallEnded(r)
		}
		if then == "handled calls" {
			for i := range 3 {
				r := record(t, "application/json", true, start.Add(time.Second+time.Duration(i)*time.Millisecond))
				tel.CallStarted(r)
				tel.CallEnded(r)
			}
		} else if err := tel.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
		dropped := tel.metrics.linesDropped.Load()
		if dropped == 0 {
			t.Fatalf("%s: no line dropped; the test drops none", then)
		}
		if sum := droppedInSummaries(t, out.String()); sum != dropped {
			t.Errorf("%s: the summary lines count %d lines dropped, the metric %d", then, sum, dropped)
		}
	}
}

// net/http's error log: a flood of failed TLS handshakes, which any
// client can make, is sampled with the rejected calls' lines, and what
// it drops is summed before the next line; a handler's panic after it is
// written all the same, at ERROR.
func TestErrorLogSamplesOnlyHandshakes(t *testing.T) {
	tel, out := textTelemetry(t)
	el := tel.ErrorLog()
	const handshakes = 150
	for i := range handshakes {
		el.Printf("http: TLS handshake error from 10.0.0.%d:1234: EOF", i)
	}
	el.Printf("h2: panic serving 10.0.0.9:5555 /teams.v1.TeamsService/GetTeam: runtime error: invalid memory address")
	el.Printf("http: Accept error: accept tcp [::]:50051: accept4: too many open files; retrying in 5ms")
	logged := out.String()
	written := strings.Count(logged, "TLS handshake error")
	if written >= handshakes || written == 0 {
		t.Errorf("%d of %d handshake failures written; want the burst, not all", written, handshakes)
	}
	m := regexp.MustCompile(`lines dropped under load.* dropped=(\d+)`).FindStringSubmatch(logged)
	if m == nil {
		t.Fatalf("no summary of the dropped lines:\n%s", logged)
	}
	if dropped, _ := strconv.Atoi(m[1]); written+dropped != handshakes {
		t.Errorf("%d written and %d dropped; want %d in all", written, dropped, handshakes)
	}
	for _, want := range []string{`level=ERROR msg="h2: panic serving`, `level=WARN msg="http: Accept error`} {
		if !strings.Contains(logged, want) {
			t.Errorf("no line %s…:\n%s", want, logged)
		}
	}
}

// A flood of rejected calls mixed with handled ones, whose lines are
// never sampled, writes no more summary lines than the sample allows:
// the summaries keep to the rejected lines' rate (each handled line wrote
// one of its own, so the summaries outnumbered the rejected lines the
// sampling kept). They still add up to the metric, the last one at the
// shutdown.
func TestDroppedLineSummariesAreSampled(t *testing.T) {
	tel, out := textTelemetry(t)
	tel.ServeProcedures([]string{"/teams.v1.TeamsService/GetTeam"})
	start := time.Now()
	const flood = 2000
	const within = 500 * time.Millisecond
	for i := range flood {
		at := start.Add(time.Duration(i) * within / flood)
		for _, handled := range []bool{false, true} {
			r := record(t, "application/json", handled, at)
			tel.CallStarted(r)
			tel.CallEnded(r)
		}
	}
	rejected := strings.Count(out.String(), "msg=rpc ") - flood // the handled calls' lines are all written
	summaries := strings.Count(out.String(), "rejected-call log lines dropped")
	// A summary goes with a rejected line the sample lets out, once the
	// burst is spent: at most as many as its rate refills.
	refill := int(within.Seconds()*rejectedPerSecond) + 1
	if rejected > rejectedBurst+refill || summaries > refill {
		t.Errorf("%d rejected calls' lines and %d summaries in %v; want at most %d and %d, the sample's burst and rate", rejected, summaries, within, rejectedBurst+refill, refill)
	}
	if err := tel.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if sum, dropped := droppedInSummaries(t, out.String()), tel.metrics.linesDropped.Load(); sum != dropped || dropped == 0 {
		t.Errorf("the summary lines count %d lines dropped, the metric %d", sum, dropped)
	}
}

// textTelemetry is telemetry with metrics whose log lines, slog's text,
// go to out.
func textTelemetry(t *testing.T) (*Telemetry, *bytes.Buffer) {
	t.Helper()
	out := &bytes.Buffer{}
	tel, err := New(Options{Logger: slog.New(slog.NewTextHandler(out, nil)), Metrics: true})
	if err != nil {
		t.Fatal(err)
	}
	return tel, out
}
