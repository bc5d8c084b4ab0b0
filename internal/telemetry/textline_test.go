package telemetry

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/coalesce"
	"github.com/switchyard/switchyard/internal/outcome"
)

// callLines logs r through a TextHandler (the direct path) and through
// slog's own text handler, and returns both outputs.
func callLines(t *testing.T, level slog.Level, records ...*outcome.Record) (direct, viaSlog string) {
	t.Helper()
	var a, b bytes.Buffer
	fast, err := New(Options{Logger: slog.New(NewTextHandler(&a, level))})
	if err != nil {
		t.Fatal(err)
	}
	if fast.logs.text == nil {
		t.Fatal("a TextHandler logger does not take the direct path")
	}
	slow, err := New(Options{Logger: slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: level}))})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range records {
		copyOf := *r
		fast.CallEnded(r)
		slow.CallEnded(&copyOf)
	}
	return a.String(), b.String()
}

func callRecord(procedure, peer, ua, message string, code, end, protocol uint8, handled bool, status int, d time.Duration, start time.Time) *outcome.Record {
	return &outcome.Record{
		Start: start, Duration: d, Procedure: procedure,
		Protocol:   outcome.Protocol(int(protocol) % outcome.NumProtocols),
		Code:       outcome.Code(int(code) % outcome.NumCodes),
		End:        outcome.End(int(end) % outcome.NumEnds),
		HTTPStatus: status, Peer: peer, UserAgent: ua, Message: message, Handled: handled,
	}
}

// The direct call line is byte for byte slog's, for every kind of call
// and every string slog would quote.
func TestCallLineIsSlogs(t *testing.T) {
	start := time.Date(2026, 12, 4, 22, 19, 39, 120_999_999, time.UTC)
	east := time.FixedZone("east", 5*3600+30*60)
	records := []*outcome.Record{
		callRecord("/teams.v1.TeamsService/GetTeam", "127.0.0.1:5555", "grpc-go/1.79.0", "", 0, 0, 0, true, 200, 1234567, start),
		callRecord("/teams.v1.TeamsService/GetTeam", "[::1]:80", "", "team \"Nowhere\" not found", 5, 0, 1, true, 200, 999, start.In(east)),
		callRecord("/x y=z", "p", "ua with spaces", "tab\there\nnewline", 2, 1, 2, false, 415, 0, start.Add(time.Hour)),
		callRecord("/zero/time", "", "", "", 0, 0, 0, true, 200, 0, time.Time{}),
		callRecord("/far/future", "", "", "", 0, 0, 0, true, 200, time.Millisecond, time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)),
		callRecord(strings.Repeat("/long", 100), "ü", "\x7f\xff", "\u00a0nbsp é", 13, 2, 3, false, 0, 90*time.Second, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)),
	}
	direct, viaSlog := callLines(t, slog.LevelInfo, records...)
	if direct != viaSlog {
		t.Errorf("direct call lines differ from slog's:\n%s\nslog:\n%s", direct, viaSlog)
	}
	if n := strings.Count(direct, "msg=rpc "); n != len(records) {
		t.Errorf("%d lines, want %d:\n%s", n, len(records), direct)
	}
	// A level that leaves out ok calls leaves them out of both.
	direct, viaSlog = callLines(t, slog.LevelWarn, records...)
	if direct != viaSlog || strings.Count(direct, "msg=rpc ") != 3 { // the three not ok
		t.Errorf("at level WARN: direct\n%s\nslog:\n%s", direct, viaSlog)
	}
}

// Lines written in one millisecond share its text (lastStamp), but only
// in the same Location: the same instant elsewhere, and the next
// millisecond, are written anew.
func TestCallLinesInOneMillisecond(t *testing.T) {
	start := time.Date(2026, 12, 5, 2, 30, 0, 7_000_000, time.UTC)
	east := time.FixedZone("east", 5*3600+30*60)
	var records []*outcome.Record
	for _, at := range []time.Time{start, start.Add(500 * time.Microsecond), start.In(east), start, start.In(time.Local),
		start.Add(999 * time.Microsecond), start.Add(time.Millisecond), start.In(east).Add(time.Millisecond), start} {
		records = append(records, callRecord("/p", "peer", "ua", "", 0, 0, 0, true, 200, 0, at))
	}
	direct, viaSlog := callLines(t, slog.LevelInfo, records...)
	if direct != viaSlog {
		t.Errorf("direct call lines differ from slog's:\n%s\nslog:\n%s", direct, viaSlog)
	}
}

func FuzzCallLineIsSlogs(f *testing.F) {
	f.Add("/teams.v1.TeamsService/GetTeam", "127.0.0.1:1", "grpc-go/1.79.0", "", uint8(0), uint8(0), uint8(0), true, 200, int64(1500), int64(1764886779123456789))
	f.Add("", "", "a=b", "\"quoted\" \\ back", uint8(3), uint8(1), uint8(2), false, 400, int64(-5), int64(0))
	f.Add("/\u2028", "\t", "\x00", "\ufffd", uint8(16), uint8(3), uint8(4), false, 431, int64(1<<62), int64(-1))
	f.Fuzz(func(t *testing.T, procedure, peer, ua, message string, code, end, protocol uint8, handled bool, status int, d, unixNano int64) {
		r := callRecord(procedure, peer, ua, message, code, end, protocol, handled, status, time.Duration(d), time.Unix(0, unixNano).UTC())
		r.Duration = time.Duration(d)
		direct, viaSlog := callLines(t, slog.LevelDebug, r)
		if direct != viaSlog {
			t.Errorf("direct call line differs from slog's:\n%q\n%q", direct, viaSlog)
		}
	})
}

// Call lines and slog's lines written from many goroutines at once come
// out whole, one per Write, on a plain writer (which the handler guards
// with a lock of its own) and on a coalesce.Writer (which keeps each
// Write whole itself, so the handler adds no lock: one lock fewer per call
// on every core).
func TestLinesWholeFromManyGoroutines(t *testing.T) {
	for _, name := range []string{"plain", "coalesce"} {
		t.Run(name, func(t *testing.T) {
			var sink bytes.Buffer
			var w io.Writer = &sink
			var cw *coalesce.Writer
			if name == "coalesce" {
				cw = coalesce.NewWriter(&sink, 1<<20)
				w = cw
			}
			h := NewTextHandler(w, slog.LevelInfo)
			_, guarded := h.w.(*lineWriter)
			if guarded != (name == "plain") {
				t.Errorf("the handler's own lock around a %s writer: %v", name, guarded)
			}
			tel, err := New(Options{Logger: slog.New(h)})
			if err != nil {
				t.Fatal(err)
			}
			const goroutines, lines = 8, 200
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					for i := range lines {
						if i%10 == 0 {
							tel.logger.Info("other", "goroutine", g, "i", i)
							continue
						}
						r := callRecord("/p", "peer", "ua", "", 0, 0, 0, true, 200, time.Duration(i), time.Now())
						tel.CallEnded(r)
					}
				})
			}
			wg.Wait()
			if cw != nil {
				cw.Close(time.Second) // what is pending reaches sink first
			}
			out := strings.Split(strings.TrimSuffix(sink.String(), "\n"), "\n")
			if len(out) != goroutines*lines {
				t.Fatalf("%d lines, want %d", len(out), goroutines*lines)
			}
			whole := regexp.MustCompile(`^time=\S+ level=INFO msg=(rpc procedure=/p .* peer=peer user_agent=ua|other goroutine=[0-9]+ i=[0-9]+)$`)
			for _, line := range out {
				if !whole.MatchString(line) {
					t.Fatalf("a line not whole: %q", line)
				}
			}
		})
	}
}

// A call's line shows its metadata, as the tutorials' servers print theirs:
// the header fields that are not the protocols', HTTP's, browsers' or
// proxies', in lower case and sorted, credentials named but not shown,
// bounded in count and length; a call without any shows none. Both
// writers agree.
func TestCallLineShowsMetadata(t *testing.T) {
	start := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	withHeader := func(h http.Header) *outcome.Record {
		r := callRecord("/Teams/GetTeam", "127.0.0.1:5555", "grpcurl/1.9", "", 0, 0, 1, true, 200, time.Millisecond, start)
		r.Header = h
		return r
	}
	many := http.Header{}
	for i := range 20 {
		many.Set(fmt.Sprintf("X-Field-%02d", i), "v")
	}
	// A client's own "more_fields" is a field like any other, and a name
	// longer than 64 bytes is counted, not shown.
	many.Set("More_fields", "999")
	many.Set("X-"+strings.Repeat("k", 5000), "v")
	records := []*outcome.Record{
		withHeader(http.Header{
			"Content-Type": {"application/grpc"}, "Te": {"trailers"}, "User-Agent": {"grpcurl/1.9"}, "Grpc-Timeout": {"1S"},
			"X-Client-Id": {"probe42"}, "Authorization": {"Bearer s3cret"}, "Cookie": {"session=s3cret"},
			"X-Api-Key": {"s3cret"}, "X-Auth-Request-Access-Token": {"s3cret"}, "X-Session-Id": {"s3cret"},
			"Sec-Fetch-Mode": {"cors"}, "Traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
			"X-Request-Tags": {"a b", "c=d"}, "Grpc-Trace-Bin": {"AAEC"}, "X-Long": {strings.Repeat("é", 100) + "\xff"},
			"X-Many": slices.Repeat([]string{strings.Repeat("v", 50)}, 1000),
		}),
		withHeader(http.Header{"Content-Type": {"application/grpc"}, "User-Agent": {"grpc-go/1.79.0"}, "Te": {"trailers"}}),
		withHeader(many),
		withHeader(nil),
	}
	direct, viaSlog := callLines(t, slog.LevelInfo, records...)
	if direct != viaSlog {
		t.Errorf("direct call lines differ from slog's:\n%s\nslog:\n%s", direct, viaSlog)
	}
	lines := strings.Split(strings.TrimSpace(direct), "\n")
	if len(lines) != len(records) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(records), direct)
	}
	first := lines[0]
	want := ` metadata.authorization=[redacted] metadata.cookie=[redacted] metadata.grpc-trace-bin=AAEC metadata.x-api-key=[redacted] metadata.x-auth-request-access-token=[redacted] metadata.x-client-id=probe42 metadata.x-long=`
	if !strings.Contains(first, `user_agent=grpcurl/1.9`+want) || !strings.Contains(first, ` metadata.x-request-tags="a b, c=d"`) {
		t.Errorf("the line of a call with metadata:\n%s\nwant it to contain %q and x-request-tags", first, want)
	}
	for _, leftOut := range []string{"s3cret", "content-type", "metadata.te", "grpc-timeout", "sec-fetch", "traceparent", "\\xff"} {
		if strings.Contains(first, leftOut) {
			t.Errorf("the line shows %q:\n%s", leftOut, first)
		}
	}
	if !strings.Contains(first, ` metadata.x-long=`+strings.Repeat("é", 62)+`... `) || // 127 bytes: no rune split
		!strings.Contains(first, ` metadata.x-many="`+strings.Repeat("v", 50)+", "+strings.Repeat("v", 50)+", "+strings.Repeat("v", 21)+`..." `) {
		t.Errorf("a long value is not cut to %d bytes:\n%s", maxMetadataValue, first)
	}
	for i, line := range lines[1:] {
		if n := strings.Count(line, " metadata."); (i == 1) != (n > 0) || n > maxMetadataFields+1 {
			t.Errorf("line %d shows %d metadata fields:\n%s", i+2, n, line)
		}
	}
	if !strings.Contains(lines[2], ` metadata.more_fields=999 metadata.x-field-00=v`) || !strings.HasSuffix(lines[2], ` metadata.x-field-14=v metadata.@more_fields=6`) || strings.Contains(lines[2], "kkkk") {
		t.Errorf("twenty-two fields (one with a long name) are not cut to %d with the rest counted:\n%s", maxMetadataFields, lines[2])
	}
}
