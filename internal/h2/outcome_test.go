package h2_test

import (
	"net/http"
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
	goAways map[uint32]int
}

func newRecorder() *recorder {
	return &recorder{ended: make(chan outcome.Record, 100), resets: map[[2]uint32]int{}, goAways: map[uint32]int{}}
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
func (r *recorder) GoAway(code uint32) {
	r.mu.Lock()
	r.goAways[code]++
	r.mu.Unlock()
}
func (r *recorder) PingTimeout()  {}
func (r *recorder) WriteTimeout() {}

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

// Every stream ends with one record that says how: its status handed to
// the socket, reset by the client, or its connection closed.
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
	if rec := obs.next(t); rec.End != outcome.EndConnClosed || rec.Code != outcome.CodeUnavailable {
		t.Errorf("connection closed: %v %v", rec.End, rec.Code)
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
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		obs.mu.Lock()
		n := obs.goAways[uint32(http2.ErrCodeNo)]
		obs.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no final GOAWAY observed after Shutdown")
		}
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.refused != 1 || len(obs.resets) != 0 {
		t.Errorf("refused %d, resets %v; want 1 refused and no reset", obs.refused, obs.resets)
	}
}
