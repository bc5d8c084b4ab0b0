package h2_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/switchyard/switchyard/internal/h2"
	"github.com/switchyard/switchyard/internal/outcome"
)

// recorder is an outcome.Observer that keeps a copy of every record and
// counts the transport's events.
type recorder struct {
	mu      sync.Mutex
	started int
	ended   chan outcome.Record
	resets  map[[2]uint32]int // [by client 0/1][code]
	refused int
	goAways map[goAwayKey]int
	// pingTimeouts and writeTimeouts count the connections closed for each.
	pingTimeouts, writeTimeouts int
}

type goAwayKey struct {
	code   http2.ErrCode
	reason outcome.GoAwayReason
}

func newRecorder() *recorder {
	return &recorder{ended: make(chan outcome.Record, 100), resets: map[[2]uint32]int{}, goAways: map[goAwayKey]int{}}
}

func (r *recorder) CallStarted(*outcome.Record) { r.mu.Lock(); r.started++; r.mu.Unlock() }
func (r *recorder) CallEnded(rec *outcome.Record) {
	c := *rec
	c.Header, c.Span = nil, nil
	r.ended <- c
}
func (r *recorder) StreamReset(byClient bool, code uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	side := uint32(0)
	if byClient {
		side = 1
	}
	r.resets[[2]uint32{side, code}]++
}
func (r *recorder) StreamRefused() { r.mu.Lock(); r.refused++; r.mu.Unlock() }
func (r *recorder) GoAway(code uint32, reason outcome.GoAwayReason) {
	r.mu.Lock()
	r.goAways[goAwayKey{http2.ErrCode(code), reason}]++
	r.mu.Unlock()
}

// waitGoAway waits until the observer has seen a final GOAWAY of code and
// reason, and returns every GOAWAY it saw.
func (r *recorder) waitGoAway(t *testing.T, code http2.ErrCode, reason outcome.GoAwayReason) map[goAwayKey]int {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		r.mu.Lock()
		n, all := r.goAways[goAwayKey{code, reason}], maps.Clone(r.goAways)
		r.mu.Unlock()
		if n > 0 {
			return all
		}
		if time.Now().After(deadline) {
			t.Fatalf("no GOAWAY %v with reason %v observed; saw %v", code, reason, all)
		}
	}
}
func (r *recorder) PingTimeout()  { r.mu.Lock(); r.pingTimeouts++; r.mu.Unlock() }
func (r *recorder) WriteTimeout() { r.mu.Lock(); r.writeTimeouts++; r.mu.Unlock() }

// timeouts returns the ping and write timeouts observed so far.
func (r *recorder) timeouts() (ping, write int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pingTimeouts, r.writeTimeouts
}

func (r *recorder) next(t *testing.T) outcome.Record {
	t.Helper()
	select {
	case rec := <-r.ended:
		return rec
	case <-time.After(10 * time.Second):
		t.Fatal("no record")
		return outcome.Record{}
	}
}

// bigResponse writes 64 KiB as a gRPC server would, with trailers.
func bigResponse(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/grpc")
	w.Header().Set("Trailer", "Grpc-Status")
	_, _ = w.Write(make([]byte, 64<<10))
	w.Header().Set("Grpc-Status", "0")
}

// A stream whose client never opens a flow-control window is reset
// (CANCEL) after SendWindowTimeout, with a record saying so, rather than
// held for as long as the client keeps its connection.
func TestSendWindowTimeoutEndsStalledStream(t *testing.T) {
	for _, timeout := range []time.Duration{300 * time.Millisecond, 0} {
		obs := newRecorder()
		s := startServer(t, http.HandlerFunc(bigResponse), h2.Config{SendWindowTimeout: timeout, Observer: obs}, serverOpts{})
		c := dialRaw(t, s.addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
		start := time.Now()
		c.request(1, "POST", "/big", true, "content-type", "application/grpc")
		var reset *http2.RSTStreamFrame
		for reset == nil {
			f, err := c.ReadFrame(2 * time.Second)
			if err != nil {
				break
			}
			if r, ok := f.(*http2.RSTStreamFrame); ok && r.StreamID == 1 {
				reset = r
			}
		}
		if timeout == 0 {
			if reset != nil {
				t.Fatalf("with no timeout the stalled stream was reset: %v", reset)
			}
			select {
			case rec := <-obs.ended:
				t.Fatalf("with no timeout the stalled stream ended: %+v", rec)
			default:
			}
			continue
		}
		if reset == nil || reset.ErrCode != http2.ErrCodeCancel {
			t.Fatalf("stalled stream: %v, want RST_STREAM CANCEL", reset)
		}
		if took := time.Since(start); took < timeout || took > timeout+2*time.Second {
			t.Errorf("reset after %v, want about %v", took, timeout)
		}
		rec := obs.next(t)
		if rec.End != outcome.EndServerReset || rec.Code != outcome.CodeCanceled || rec.Procedure != "/big" || rec.MsgsOut != 0 {
			t.Errorf("record %v %v %q msgs out %d, want server_reset canceled /big 0", rec.End, rec.Code, rec.Procedure, rec.MsgsOut)
		}
		if obs.resets[[2]uint32{0, uint32(http2.ErrCodeCancel)}] != 1 {
			t.Errorf("server resets counted: %v", obs.resets)
		}
	}
}

// A stream whose deadline passes while its client opens no window is
// reset at the deadline, not held until SendWindowTimeout, and its record
// says deadline_exceeded.
func TestDeadlineEndsStreamWaitingForWindow(t *testing.T) {
	const deadline = 300 * time.Millisecond
	obs := newRecorder()
	h := func(w http.ResponseWriter, r *http.Request) {
		h2.LimitDuration(r.Context(), deadline)
		bigResponse(w, r)
	}
	s := startServer(t, http.HandlerFunc(h), h2.Config{SendWindowTimeout: time.Minute, Observer: obs}, serverOpts{})
	c := dialRaw(t, s.addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	start := time.Now()
	c.request(1, "POST", "/big", true, "content-type", "application/grpc")
	if _, _, err := c.readResponse(1); err == nil || !strings.Contains(err.Error(), "reset: CANCEL") {
		t.Fatalf("stalled stream past its deadline: %v, want RST_STREAM CANCEL", err)
	}
	if took := time.Since(start); took < deadline || took > deadline+2*time.Second {
		t.Errorf("reset after %v, want about %v", took, deadline)
	}
	rec := obs.next(t)
	if rec.End != outcome.EndServerReset || rec.Code != outcome.CodeDeadlineExceeded || !strings.Contains(rec.Message, "deadline passed") {
		t.Errorf("record %v %v %q, want server_reset deadline_exceeded, saying the deadline passed", rec.End, rec.Code, rec.Message)
	}
}

// A handler waiting for request body that does not come is let go at the
// call's deadline: its Read returns an error that is
// context.DeadlineExceeded, after the data that came before it.
func TestDeadlineEndsBodyRead(t *testing.T) {
	const deadline = 300 * time.Millisecond
	h := func(w http.ResponseWriter, r *http.Request) {
		h2.LimitDuration(r.Context(), deadline)
		start := time.Now()
		got, err := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain")
		if errors.Is(err, context.DeadlineExceeded) {
			w.WriteHeader(http.StatusGatewayTimeout)
		}
		fmt.Fprintf(w, "%s|%v|%v", got, time.Since(start) >= deadline-50*time.Millisecond, err)
	}
	s := startServer(t, http.HandlerFunc(h), h2.Config{}, serverOpts{})
	c := dialRaw(t, s.addr)
	c.request(1, "POST", "/upload", false, "content-type", "application/grpc")
	if err := c.Fr.WriteData(1, false, []byte("first")); err != nil {
		t.Fatal(err)
	}
	status, body, ended := c.response(1)
	want := "first|true|h2: the call's deadline passed while the handler waited for the request body: context deadline exceeded"
	if status != "504" || string(body) != want || !ended {
		t.Errorf("answer %s %q (ended %v), want 504 %q", status, body, ended, want)
	}
}

// EndCalls lets go of a handler waiting for request body, with an error
// that is context.Canceled, and its context ends; Ended tells the handler
// the server ended it, and its answer goes out on the open connection.
func TestEndCallsLetsHandlersAnswer(t *testing.T) {
	waiting := make(chan struct{})
	h := func(w http.ResponseWriter, r *http.Request) {
		if h2.Ended(r.Context()) {
			t.Error("a call was ended before EndCalls")
		}
		w.Header().Set("Content-Type", "text/plain")
		close(waiting)
		got, err := io.ReadAll(r.Body)
		<-r.Context().Done()
		fmt.Fprintf(w, "%s|%v|%v", got, h2.Ended(r.Context()), err)
	}
	s := startServer(t, http.HandlerFunc(h), h2.Config{}, serverOpts{})
	c := dialRaw(t, s.addr)
	c.request(1, "POST", "/upload", false, "content-type", "application/grpc")
	if err := c.Fr.WriteData(1, false, []byte("first")); err != nil {
		t.Fatal(err)
	}
	<-waiting
	time.Sleep(50 * time.Millisecond) // into its Read's wait
	s.h2.EndCalls()
	status, body, ended := c.response(1)
	want := "first|true|h2: the server ended the call: context canceled"
	if status != "200" || string(body) != want || !ended {
		t.Errorf("answer %s %q (ended %v), want 200 %q", status, body, ended, want)
	}
}

// Every stream ends with one record that says how: its status handed to
// the socket, reset by the client, or its connection closed (by the
// client here: its cancel).
func TestRecordSaysHowStreamsEnd(t *testing.T) {
	obs := newRecorder()
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/small", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status")
		_, _ = w.Write([]byte{0, 0, 0, 0, 2, 8, 1})
		w.Header().Set("Grpc-Status", "0")
	})
	mux.HandleFunc("/wait", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	s := startServer(t, mux, h2.Config{Observer: obs}, serverOpts{})

	c := dialRaw(t, s.addr)
	c.request(1, "POST", "/small", true, "content-type", "application/grpc")
	rec := obs.next(t)
	if rec.End != outcome.EndSent || rec.Code != outcome.CodeOK || rec.HTTPStatus != 200 || rec.Protocol != outcome.ProtocolGRPC || rec.MsgsOut != 1 {
		t.Errorf("complete call: %v %v %d %v, %d messages", rec.End, rec.Code, rec.HTTPStatus, rec.Protocol, rec.MsgsOut)
	}

	c.request(3, "POST", "/wait", true, "content-type", "application/grpc")
	time.Sleep(50 * time.Millisecond)
	if err := c.Fr.WriteRSTStream(3, http2.ErrCodeCancel); err != nil {
		t.Fatal(err)
	}
	if rec := obs.next(t); rec.End != outcome.EndClientReset || rec.Code != outcome.CodeCanceled {
		t.Errorf("client reset: %v %v", rec.End, rec.Code)
	}
	c.request(5, "POST", "/wait", true, "content-type", "application/grpc")
	time.Sleep(50 * time.Millisecond)
	c.Conn.Close()
	if rec := obs.next(t); rec.End != outcome.EndConnClosed || rec.Code != outcome.CodeCanceled {
		t.Errorf("connection closed by the client: %v %v, want conn_closed canceled", rec.End, rec.Code)
	}
	close(release)
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.started != 3 {
		t.Errorf("%d calls started, want 3", obs.started)
	}
	if obs.resets[[2]uint32{1, uint32(http2.ErrCodeCancel)}] != 1 {
		t.Errorf("client resets counted: %v", obs.resets)
	}
}

// waitForClient answers with its headers at once, then waits for the
// client to go (or the connection to end), past any deadline.
func waitForClient(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/grpc")
	w.WriteHeader(200)
	w.(http.Flusher).Flush()
	<-r.Context().Done()
}

// slowToEnd is waitForClient for a handler that, its call ended, takes
// longer to return than its connection waits for it (EndCallsWithin).
func slowToEnd(w http.ResponseWriter, r *http.Request) {
	waitForClient(w, r)
	time.Sleep(1500 * time.Millisecond)
}

// A stream its client resets after the deadline it set is recorded
// deadline_exceeded, the code the client reports (its own timer fired);
// one reset before it, canceled.
func TestRecordOfResetPastDeadline(t *testing.T) {
	obs := newRecorder()
	s := startServer(t, http.HandlerFunc(waitForClient), h2.Config{Observer: obs}, serverOpts{})
	c := dialRaw(t, s.addr)
	for _, tc := range []struct {
		id    uint32
		after time.Duration
		want  outcome.Code
	}{
		{1, 400 * time.Millisecond, outcome.CodeDeadlineExceeded},
		{3, 50 * time.Millisecond, outcome.CodeCanceled},
	} {
		c.request(tc.id, "POST", "/x.Y/Z", true, "content-type", "application/grpc", "grpc-timeout", "300m")
		time.Sleep(tc.after)
		if err := c.Fr.WriteRSTStream(tc.id, http2.ErrCodeCancel); err != nil {
			t.Fatal(err)
		}
		if rec := obs.next(t); rec.End != outcome.EndClientReset || rec.Code != tc.want {
			t.Errorf("reset %v after a 300 ms deadline's start: %v %v, want client_reset %v", tc.after, rec.End, rec.Code, tc.want)
		}
	}
}

// A stream whose connection the server closes is recorded unavailable, as
// its client reports it; one whose client closes the connection,
// canceled: it is the client's cancel, not the server's failure.
func TestRecordOfClosedConnection(t *testing.T) {
	for _, tc := range []struct {
		name  string
		conf  h2.Config
		close func(s *testServer, c *rawConn)
		want  outcome.Code
	}{
		{"client closes", h2.Config{}, func(_ *testServer, c *rawConn) { c.Conn.Close() }, outcome.CodeCanceled},
		{"client half-closes", h2.Config{}, func(_ *testServer, c *rawConn) { _ = c.Conn.(*net.TCPConn).CloseWrite() }, outcome.CodeCanceled},
		// As grpc-go's ClientConn.Close: its GOAWAY, which the server
		// answers with its own, then the close.
		{"client says GOAWAY and closes", h2.Config{}, func(_ *testServer, c *rawConn) {
			if err := c.Fr.WriteGoAway(0, http2.ErrCodeNo, nil); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond) // the server's GOAWAY goes out
			c.Conn.Close()
		}, outcome.CodeCanceled},
		// The age's GOAWAYs, then its grace ends what still runs, and the
		// connection closes under a handler that has not answered a
		// second later (slowToEnd).
		{"max age grace", h2.Config{MaxConnectionAge: 100 * time.Millisecond, MaxConnectionAgeGrace: 200 * time.Millisecond},
			func(*testServer, *rawConn) {}, outcome.CodeUnavailable},
		// The shutdown's GOAWAYs, then its deadline ends what still runs.
		{"shutdown", h2.Config{}, func(s *testServer, _ *rawConn) {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			_ = s.hs.Shutdown(ctx)
			_ = s.hs.Close()
		}, outcome.CodeUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := newRecorder()
			tc.conf.Observer = obs
			h := waitForClient
			if tc.conf.MaxConnectionAgeGrace > 0 {
				h = slowToEnd
			}
			s := startServer(t, http.HandlerFunc(h), tc.conf, serverOpts{})
			c := dialRaw(t, s.addr)
			c.request(1, "POST", "/x.Y/Z", true, "content-type", "application/grpc")
			for {
				f, err := c.ReadFrame(5 * time.Second)
				if err != nil {
					t.Fatalf("waiting for the stream's headers: %v", err)
				}
				if h, ok := f.(*http2.MetaHeadersFrame); ok && h.StreamID == 1 {
					break
				}
			}
			tc.close(s, c)
			if rec := obs.next(t); rec.End != outcome.EndConnClosed || rec.Code != tc.want {
				t.Errorf("record %v %v, want conn_closed %v", rec.End, rec.Code, tc.want)
			}
		})
	}
}

// A rejection's plain-text explanation is counted in the bytes sent but
// holds no message (its first letters are no envelope's prefix), and a
// Connect unary request refused before it came holds none either.
func TestRecordCountsNoMessagesInRejections(t *testing.T) {
	obs := newRecorder()
	s := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"code":"unimplemented","message":"no such method"}`)
			return
		}
		// As connect-go answers a content type it does not serve.
		w.Header().Set("Accept-Post", "application/grpc, application/grpc-web")
		w.WriteHeader(http.StatusUnsupportedMediaType)
	}), h2.Config{Observer: obs}, serverOpts{})
	c := dialRaw(t, s.addr)
	for i, contentType := range []string{"application/grpc-web+bogus", "application/grpc+bogus", "application/connect+bogus"} {
		id := uint32(2*i + 1)
		c.request(id, "POST", "/greeter.v1.GreeterService/SayHello", false, "content-type", contentType)
		if err := c.Fr.WriteData(id, true, []byte("abc")); err != nil {
			t.Fatal(err)
		}
		status, body, _ := c.response(id)
		rec := obs.next(t)
		if status != "415" || !strings.HasPrefix(string(body), "this procedure") || rec.MsgsOut != 0 || rec.BytesOut != int64(len(body)) {
			t.Errorf("%s: %s %q: %d messages out, %d bytes; want 415, an explanation, no message, %d bytes", contentType, status, body, rec.MsgsOut, rec.BytesOut, len(body))
		}
	}
	c.request(7, "GET", "/greeter.v1.GreeterService/NoSuchMethod?encoding=json&message=%7B%7D", true)
	if status, _, _ := c.response(7); status != "404" {
		t.Fatalf("unknown method: %s, want 404", status)
	}
	if rec := obs.next(t); rec.MsgsIn != 0 || rec.Protocol != outcome.ProtocolConnect {
		t.Errorf("unknown method, refused unread: %v, %d messages in; want connect, none", rec.Protocol, rec.MsgsIn)
	}
}

// The transport's events reach the Observer: a stream over the
// concurrency limit is refused (not counted as a reset), and a graceful
// shutdown's final GOAWAY is counted by its code.
func TestTransportEventsObserved(t *testing.T) {
	obs := newRecorder()
	release := make(chan struct{})
	defer close(release)
	s := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}), h2.Config{MaxConcurrentStreams: 1, Observer: obs}, serverOpts{})
	c := dialRaw(t, s.addr)
	c.request(1, "GET", "/", true)
	time.Sleep(50 * time.Millisecond)
	c.request(3, "GET", "/", true)
	for {
		f, err := c.ReadFrame(5 * time.Second)
		if err != nil {
			t.Fatalf("no RST_STREAM for the stream over the limit: %v", err)
		}
		if rst, ok := f.(*http2.RSTStreamFrame); ok && rst.StreamID == 3 {
			if rst.ErrCode != http2.ErrCodeRefusedStream {
				t.Fatalf("stream 3 reset with %v, want REFUSED_STREAM", rst.ErrCode)
			}
			break
		}
	}
	go func() { _ = s.hs.Shutdown(t.Context()) }()
	if all := obs.waitGoAway(t, http2.ErrCodeNo, outcome.GoAwayShutdown); len(all) != 1 || all[goAwayKey{http2.ErrCodeNo, outcome.GoAwayShutdown}] != 1 {
		t.Errorf("GOAWAYs observed after Shutdown: %v, want one (NO_ERROR, shutdown)", all)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.refused != 1 || len(obs.resets) != 0 {
		t.Errorf("refused %d, resets %v; want 1 refused and no reset", obs.refused, obs.resets)
	}
}

// Each final GOAWAY reaches the Observer with the reason it was sent for,
// so that an operator can tell rebalancing from idling from errors.
func TestGoAwayReasonsObserved(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
		}
	})
	for _, tc := range []struct {
		name   string
		conf   h2.Config
		poke   func(c *rawConn) // what the client does to provoke the GOAWAY
		code   http2.ErrCode
		reason outcome.GoAwayReason
	}{
		{name: "idle", conf: h2.Config{IdleTimeout: 200 * time.Millisecond}, code: http2.ErrCodeNo, reason: outcome.GoAwayIdle},
		{name: "max age", conf: h2.Config{MaxConnectionAge: 200 * time.Millisecond}, code: http2.ErrCodeNo, reason: outcome.GoAwayMaxAge},
		{name: "client goaway", poke: func(c *rawConn) { _ = c.Fr.WriteGoAway(0, http2.ErrCodeNo, nil) },
			code: http2.ErrCodeNo, reason: outcome.GoAwayClient},
		{name: "connection error", poke: func(c *rawConn) { _ = c.Fr.WriteRawFrame(http2.FramePing, 0, 1, make([]byte, 8)) },
			code: http2.ErrCodeProtocol, reason: outcome.GoAwayError},
		{name: "handler close", poke: func(c *rawConn) { c.request(1, "GET", "/close", true) },
			code: http2.ErrCodeNo, reason: outcome.GoAwayHandler},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := newRecorder()
			tc.conf.Observer = obs
			s := startServer(t, handler, tc.conf, serverOpts{})
			c := dialRaw(t, s.addr)
			if tc.poke != nil {
				tc.poke(c)
			}
			// Answer the graceful shutdown's PING, as clients do.
			go func() {
				for {
					f, err := c.ReadFrame(5 * time.Second)
					if err != nil {
						return
					}
					if p, ok := f.(*http2.PingFrame); ok && !p.IsAck() {
						_ = c.Fr.WritePing(true, p.Data)
					}
				}
			}()
			if all := obs.waitGoAway(t, tc.code, tc.reason); len(all) != 1 {
				t.Errorf("GOAWAYs observed: %v, want only (%v, %v)", all, tc.code, tc.reason)
			}
		})
	}
}

// keepingRecorder hands CallEnded's record itself to the test, not a copy,
// so the test can see whether anything changes it afterwards.
type keepingRecorder struct {
	*recorder
	recs chan *outcome.Record
}

func (r keepingRecorder) CallEnded(rec *outcome.Record) { r.recs <- rec }

// A handler that answers without reading its request leaves the stream
// open for the client's DATA until a late NO_ERROR reset; the record is
// the handler goroutine's from the moment it is finished, so DATA that
// arrives then must not be counted into it.
func TestRecordOfStreamAnsweredWhileClientSends(t *testing.T) {
	obs := keepingRecorder{newRecorder(), make(chan *outcome.Record, 1)}
	s := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Grpc-Status", "12")
	}), h2.Config{Observer: obs}, serverOpts{})
	c := dialRaw(t, s.addr)
	for i := range uint32(5) {
		id := 2*i + 1
		c.request(id, "POST", "/x", false, "content-type", "application/grpc")
		// The answer comes first; the client's DATA then meets a stream
		// whose handler is done and whose reset is not sent yet.
		for answered := false; !answered; {
			f, err := c.ReadFrame(5 * time.Second)
			if err != nil {
				t.Fatalf("stream %d: no answer: %v", id, err)
			}
			hf, ok := f.(*http2.MetaHeadersFrame)
			answered = ok && hf.StreamID == id
		}
		rec := <-obs.recs
		if err := c.Fr.WriteData(id, false, make([]byte, 256)); err != nil {
			t.Fatal(err)
		}
		// The late reset follows once the server has read that DATA.
		c.expectRST(id, http2.ErrCodeNo)
		if rec.Code != outcome.CodeUnimplemented || rec.End != outcome.EndSent || rec.BytesIn != 0 {
			t.Errorf("stream %d: after CallEnded the record reads code %v, end %v, %d bytes in; want unimplemented, sent, 0 (unchanged)",
				id, rec.Code, rec.End, rec.BytesIn)
		}
	}
}

// blockingObserver holds every CallEnded until released, as a stalled log
// sink would.
type blockingObserver struct {
	*recorder
	release chan struct{}
}

func (o blockingObserver) CallEnded(rec *outcome.Record) {
	<-o.release
	o.recorder.CallEnded(rec)
}

// A stream whose response is complete is closed for the client even while
// its record is still being logged: a slow log sink must not make the
// server refuse streams the client keeps within the limit. Such streams
// are bounded too (as many again as the limit), so the workers a stalled
// sink holds stay bounded.
func TestStreamsBeingLoggedDoNotCountAsOpen(t *testing.T) {
	obs := blockingObserver{newRecorder(), make(chan struct{})}
	const limit = 4
	s := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}), h2.Config{MaxConcurrentStreams: limit, Observer: obs}, serverOpts{})
	c := dialRaw(t, s.addr)
	// One stream at a time: each is answered before the next opens.
	for i := range uint32(2 * limit) {
		id := 2*i + 1
		c.request(id, "GET", "/", true)
		if status, body, ended := c.response(id); status != "200" || string(body) != "ok" || !ended {
			t.Fatalf("stream %d (%d answered, their records held): %s %q ended=%v", id, i, status, body, ended)
		}
	}
	// Twice the limit held by the stalled sink: the next is refused.
	c.request(4*limit+1, "GET", "/", true)
	c.expectRST(4*limit+1, http2.ErrCodeRefusedStream)
	close(obs.release)
	for range 2 * limit {
		obs.next(t)
	}
	// Released, the connection serves again.
	deadline := time.Now().Add(5 * time.Second)
	for id := uint32(4*limit + 3); ; id += 2 {
		c.request(id, "GET", "/", true)
		status, _, _ := c.response(id)
		if status == "200" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %d: %s after the sink was released", id, status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A call that ends before its response's header went out (its client
// reset it, or closed the connection, while the handler had written
// nothing) has no HTTP status in its record: the 200 a handler that
// writes nothing would have answered never reached the client, and the
// log line and span would show it as sent.
func TestRecordOfCallUnansweredHasNoStatus(t *testing.T) {
	obs := newRecorder()
	silent := func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	s := startServer(t, http.HandlerFunc(silent), h2.Config{Observer: obs}, serverOpts{})
	c := dialRaw(t, s.addr)
	c.request(1, "POST", "/x.Y/Z", true, "content-type", "application/grpc")
	time.Sleep(50 * time.Millisecond)
	if err := c.Fr.WriteRSTStream(1, http2.ErrCodeCancel); err != nil {
		t.Fatal(err)
	}
	if rec := obs.next(t); rec.End != outcome.EndClientReset || rec.HTTPStatus != 0 {
		t.Errorf("reset before an answer: %v, HTTP status %d; want client_reset and none", rec.End, rec.HTTPStatus)
	}
	c.request(3, "POST", "/x.Y/Z", true, "content-type", "application/grpc")
	time.Sleep(50 * time.Millisecond)
	c.Conn.Close()
	if rec := obs.next(t); rec.End != outcome.EndConnClosed || rec.HTTPStatus != 0 {
		t.Errorf("connection closed before an answer: %v, HTTP status %d; want conn_closed and none", rec.End, rec.HTTPStatus)
	}
}
