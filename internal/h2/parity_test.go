package h2_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/switchyard/switchyard/internal/h2"
	"github.com/switchyard/switchyard/internal/testserver"
)

// Behaviour where internal/h2 must do what net/http's HTTP/2 server does:
// each test runs the same exchange against both.

// A handler that sets a field whose name is no token (a space, a colon, a
// byte beyond ASCII, nothing), or a trailer HTTP forbids in trailers, must
// not cost its response: net/http's server leaves such fields out. Sent,
// the block makes every HTTP/2 client drop the response (a malformed
// field is a stream error, RFC 9113 section 8.2.1).
func TestInvalidResponseFieldsLeftOut(t *testing.T) {
	bad := []string{"Bad Name", ":path", "Caf\xc3\xa9", "Tab\tName", ""}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, k := range bad {
			w.Header()[k] = []string{"v"}
		}
		w.Header().Set("X-Ok", "fine")
		w.Header().Set("Trailer", "X-Trailer, Content-Length, Bad Name, Host")
		_, _ = io.WriteString(w, "hello")
		http.NewResponseController(w).Flush() // the header block goes out now
		w.Header().Set("X-Trailer", "t")
		w.Header().Set("Content-Length", "12345")
		w.Header()["Bad Name"] = []string{"v"}
		w.Header().Set("Host", "elsewhere")
		w.Header()[http.TrailerPrefix+"Content-Type"] = []string{"text/evil"}
		w.Header()[http.TrailerPrefix+"Also Bad"] = []string{"v"}
		w.Header()[http.TrailerPrefix+"X-Late"] = []string{"late"}
	})
	bothServers(t, func(t *testing.T, std bool) {
		srv := startServer(t, h, h2.Config{StdHTTP2: std}, serverOpts{})

		// Through Go's client, which refuses a response with a
		// malformed field.
		hc, _ := srv.client(t)
		res, err := hc.Get(srv.url + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || string(body) != "hello" || res.Header.Get("X-Ok") != "fine" {
			t.Errorf("%d %q %v (%v), want 200 \"hello\" with X-Ok", res.StatusCode, body, res.Header, err)
		}
		if got := res.Trailer.Get("X-Trailer") + res.Trailer.Get("X-Late"); got != "tlate" {
			t.Errorf("trailers %v, want X-Trailer and X-Late", res.Trailer)
		}

		// On the wire: which fields went out, header block and trailers.
		c := dialRaw(t, srv.addr)
		c.request(1, "GET", "/", true)
		status, fields, body, ended := c.responseWithHeader(1)
		if status != "200" || string(body) != "hello" || !ended {
			t.Fatalf("%s %q ended=%v", status, body, ended)
		}
		for f := range fields {
			switch f {
			case "x-ok", "x-trailer", "x-late", "content-type", "date", "trailer":
			case "content-length": // the server's own, for the whole body
				if fields[f] != "5" {
					t.Errorf("content-length %q, want the body's 5", fields[f])
				}
			default:
				t.Errorf("field %q (%q) went out", f, fields[f])
			}
		}
		if fields["content-type"] == "text/evil" {
			t.Error("a Content-Type trailer went out")
		}
	})
}

// A stream accepted while the final GOAWAY of a graceful shutdown goes out
// is answered before the connection closes. internal/h2 builds a request
// off its lock; a GOAWAY sent meanwhile (here the drain's timer, the
// client not answering its PING) names the stream, so a client may not
// retry it, and used to close the connection at once, its response lost.
// net/http's server serves every frame and timer on one goroutine and has
// no such window; the hook widens internal/h2's to the GOAWAY's time.
func TestStreamAcceptedDuringFinalGoAwayIsAnswered(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "answer") })
	srv := startServer(t, h, h2.Config{}, serverOpts{})
	c := dialRaw(t, srv.addr)
	accepted, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	h2.SetAcceptedHook(func() {
		once.Do(func() {
			close(accepted)
			<-release
		})
	})
	defer h2.SetAcceptedHook(nil)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.hs.Shutdown(ctx)
	}()
	if ga := c.expectGoAway(); ga.LastStreamID != 1<<31-1 {
		t.Fatalf("first GOAWAY names stream %d, want 2^31-1", ga.LastStreamID)
	}
	c.request(1, "GET", "/", true)
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		close(release)
		t.Fatal("stream 1 was not accepted")
	}
	// The drain's PING goes unanswered: its timer sends the final GOAWAY.
	ga := c.expectGoAway()
	close(release)
	if ga.LastStreamID != 1 || ga.ErrCode != http2.ErrCodeNo {
		t.Errorf("final GOAWAY %v names stream %d, want NO_ERROR, 1", ga.ErrCode, ga.LastStreamID)
	}
	if status, body, ended := c.response(1); status != "200" || string(body) != "answer" || !ended {
		t.Errorf("stream 1, named by the GOAWAY: %q %q ended=%v, want 200 \"answer\"", status, body, ended)
	}
}

// A client that reads steadily but slowly keeps its connection: the write
// timeout is one on progress, as net/http's WriteByteTimeout is. The
// client reads at most 8 KiB at a time, 12 ms apart (a few hundred KB/s),
// through a 16 KiB receive buffer while the handler writes 1 MiB as fast
// as the connection lets it, so that batches of the connection's largest
// size wait for the socket: such a batch takes the client longer than the
// 250 ms timeout to accept, and the connection was closed under a client
// that never stopped reading.
func TestSlowSteadyReaderKeepsItsConnection(t *testing.T) {
	const timeout, total = 250 * time.Millisecond, 1 << 20
	handlerDone := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := bytes.Repeat([]byte("x"), 16<<10)
		for range total / len(p) {
			if _, err := w.Write(p); err != nil {
				handlerDone <- err
				return
			}
			if err := http.NewResponseController(w).Flush(); err != nil {
				handlerDone <- err
				return
			}
		}
		handlerDone <- nil
	})
	servers := map[string]func() string{
		"internal/h2": func() string {
			return startServer(t, h, h2.Config{WriteTimeout: timeout}, serverOpts{}).addr
		},
		"net/http's server as -http2-server net/http runs it": func() string {
			return startServer(t, h, h2.Config{WriteTimeout: timeout, StdHTTP2: true}, serverOpts{}).addr
		},
		"net/http": func() string {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			hs := &http.Server{Handler: h, Protocols: new(http.Protocols), HTTP2: &http.HTTP2Config{WriteByteTimeout: timeout}}
			hs.Protocols.SetUnencryptedHTTP2(true)
			go func() { _ = hs.Serve(ln) }()
			t.Cleanup(func() { _ = hs.Close() })
			return ln.Addr().String()
		},
	}
	for name, start := range servers {
		nc, err := dialSmallReadBuffer(start(), 16<<10)
		if err != nil {
			t.Fatal(err)
		}
		c := testserver.StartH2(t, &slowConn{Conn: nc, chunk: 8 << 10, pause: 12 * time.Millisecond},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1})
		if err := c.Fr.WriteWindowUpdate(0, 1<<31-1-65535); err != nil {
			t.Fatal(err)
		}
		c.WriteHeaders(1, true, ":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/")
		received, ended := 0, false
		_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
		for !ended {
			f, err := c.Fr.ReadFrame()
			if err != nil {
				t.Errorf("%s: after %d bytes of the body: %v", name, received, err)
				break
			}
			switch f := f.(type) {
			case *http2.DataFrame:
				received += len(f.Data())
				ended = f.StreamEnded()
			case *http2.RSTStreamFrame, *http2.GoAwayFrame:
				t.Errorf("%s: %v after %d bytes of the body", name, f, received)
				ended = true
			}
		}
		select {
		case err := <-handlerDone:
			if err != nil {
				t.Errorf("%s: the handler's write failed: %v", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s: the handler did not return", name)
		}
		if received != total {
			t.Errorf("%s: %d bytes of the body, want %d", name, received, total)
		}
	}
}

// slowConn reads at most chunk bytes at a time, pausing before each read.
type slowConn struct {
	net.Conn
	chunk int
	pause time.Duration
}

func (s *slowConn) Read(p []byte) (int, error) {
	time.Sleep(s.pause)
	return s.Conn.Read(p[:min(len(p), s.chunk)])
}

// A handler that answers without reading the body of a client that has
// paused its upload: the client is told to stop (RST_STREAM NO_ERROR,
// RFC 9113 section 8.1) at once, as net/http's server tells it, not when it
// next sends or the watchdog next looks (7.5 s with the defaults).
func TestEarlyResponseStopsTheUploadAtOnce(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(100 * time.Millisecond) // the server has read all there is, and waits
		w.WriteHeader(http.StatusUnauthorized)
	})
	bothServers(t, func(t *testing.T, std bool) {
		srv := startServer(t, h, h2.Config{StdHTTP2: std}, serverOpts{})
		c := dialRaw(t, srv.addr)
		c.request(1, "POST", "/", false)
		if err := c.Fr.WriteData(1, false, []byte("the first part of a body")); err != nil {
			t.Fatal(err)
		}
		start, status := time.Now(), ""
		for rst := false; !rst; {
			f, err := c.ReadFrame(2 * time.Second)
			if err != nil {
				t.Fatalf("no RST_STREAM within 2 s of the request (response %q): %v", status, err)
			}
			switch f := f.(type) {
			case *http2.MetaHeadersFrame:
				status = f.PseudoValue("status")
			case *http2.RSTStreamFrame:
				if f.StreamID != 1 || f.ErrCode != http2.ErrCodeNo || status != "401" {
					t.Errorf("RST_STREAM %d %v after response %q, want stream 1 NO_ERROR after 401", f.StreamID, f.ErrCode, status)
				}
				rst = true
			}
		}
		t.Logf("RST_STREAM after %v", time.Since(start).Round(time.Millisecond))
	})
}

// h2spec 6.9.1/3: a client opens a stream without ending it, then sends
// two WINDOW_UPDATEs that take the stream's window past 2^31-1, one write
// each. The handler answers at once without reading, so the server may
// also reset the stream with NO_ERROR once the response is out; the frames
// the client sent just before must still be read first, or the overflow
// meets a stream already closed and is ignored. net/http's server reads
// them first while its handler is being dispatched (tens of
// microseconds), and not always (this test logs how often); internal/h2
// must answer FLOW_CONTROL_ERROR every time, also when the frames come a
// few milliseconds after the HEADERS and the response has long been
// written (lateResetGrace).
func TestWindowOverflowAfterAnEarlyResponse(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "early") })
	trial := func(t *testing.T, srv *testServer, gap time.Duration) (http2.ErrCode, bool) {
		c := dialRaw(t, srv.addr)
		defer c.Conn.Close()
		c.request(1, "GET", "/", false)
		time.Sleep(gap)
		for range 2 {
			if err := c.Fr.WriteWindowUpdate(1, 1<<31-1); err != nil {
				t.Fatal(err)
			}
		}
		for {
			f, err := c.ReadFrame(2 * time.Second)
			if err != nil {
				return 0, false
			}
			if f, ok := f.(*http2.RSTStreamFrame); ok && f.StreamID == 1 {
				return f.ErrCode, true
			}
		}
	}
	bothServers(t, func(t *testing.T, std bool) {
		srv := startServer(t, h, h2.Config{StdHTTP2: std}, serverOpts{})
		gaps := []time.Duration{0}
		if !std {
			gaps = append(gaps, time.Millisecond, 5*time.Millisecond)
		}
		for _, gap := range gaps {
			const trials = 20
			right := 0
			for range trials {
				code, ok := trial(t, srv, gap)
				switch {
				case ok && code == http2.ErrCodeFlowControl:
					right++
				case std:
				case !ok:
					t.Errorf("WINDOW_UPDATEs %v after the HEADERS: no RST_STREAM on stream 1", gap)
				default:
					t.Errorf("WINDOW_UPDATEs %v after the HEADERS: RST_STREAM %v on stream 1, want FLOW_CONTROL_ERROR", gap, code)
				}
			}
			t.Logf("WINDOW_UPDATEs %v after the HEADERS: FLOW_CONTROL_ERROR in %d of %d", gap, right, trials)
		}
	})
}

// A stream whose client ends its body after the response ended is closed:
// internal/h2, which holds the reset of a body with a content-length still
// to come (so that a length the client breaks is answered as the
// malformed request it is), then sends no RST_STREAM on it (RFC 9113
// section 5.1).
func TestNoResetOnAStreamBothSidesEnded(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "early") })
	srv := startServer(t, h, h2.Config{}, serverOpts{})
	c := dialRaw(t, srv.addr)
	c.request(1, "POST", "/", false, "content-length", "10")
	if err := c.Fr.WriteData(1, false, []byte("12345")); err != nil {
		t.Fatal(err)
	}
	if status, body, ended := c.response(1); status != "200" || string(body) != "early" || !ended {
		t.Fatalf("response %q %q ended=%v", status, body, ended)
	}
	if err := c.Fr.WriteData(1, true, []byte("67890")); err != nil {
		t.Fatal(err)
	}
	if err := c.Fr.WritePing(false, [8]byte{'e', 'n', 'd', 'e', 'd'}); err != nil {
		t.Fatal(err)
	}
	acked := false
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		f, err := c.ReadFrame(time.Until(deadline))
		if err != nil {
			break // nothing more came
		}
		switch f := f.(type) {
		case *http2.PingFrame:
			acked = acked || f.IsAck()
		case *http2.RSTStreamFrame:
			t.Errorf("RST_STREAM %v on stream %d, which both sides had ended", f.ErrCode, f.StreamID)
		}
	}
	if !acked {
		t.Error("the PING after the body was not answered")
	}
}

// A client that asks for 100 Continue before it sends its body gets it
// when the handler first reads the body, as from net/http's server (a
// client that waits for it, as curl and Go's client with
// ExpectContinueTimeout do, otherwise stalls for its timeout); a handler
// that answers without reading sends its final response alone. Either
// way the handler sees no Expect header.
func TestExpectContinue(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Expect") != "" {
			http.Error(w, "the handler saw Expect", http.StatusTeapot)
			return
		}
		if r.URL.Path == "/refuse" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(bytes.ToUpper(b))
	})
	bothServers(t, func(t *testing.T, std bool) {
		srv := startServer(t, h, h2.Config{StdHTTP2: std}, serverOpts{})
		c := dialRaw(t, srv.addr)
		c.request(1, "POST", "/", false, "expect", "100-continue")
		for continued := false; !continued; {
			f, err := c.ReadFrame(2 * time.Second)
			if err != nil {
				t.Fatalf("no 100 Continue within 2 s: %v", err)
			}
			if mh, ok := f.(*http2.MetaHeadersFrame); ok && mh.StreamID == 1 {
				if status := mh.PseudoValue("status"); status != "100" || mh.StreamEnded() {
					t.Fatalf("first response HEADERS %s (ended %v), want 100", status, mh.StreamEnded())
				}
				continued = true
			}
		}
		if err := c.Fr.WriteData(1, true, []byte("the body")); err != nil {
			t.Fatal(err)
		}
		if status, body, ended := c.response(1); status != "200" || string(body) != "THE BODY" || !ended {
			t.Errorf("after 100 Continue: %q %q ended=%v, want 200 \"THE BODY\"", status, body, ended)
		}

		c.request(3, "POST", "/refuse", false, "expect", "100-continue")
		if status, body, _ := c.response(3); status != "401" {
			t.Errorf("a handler that does not read: first response %q %q, want 401 (no 100 Continue)", status, body)
		}
	})
}
