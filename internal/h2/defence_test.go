package h2_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/switchyard/switchyard/internal/h2"
	"github.com/switchyard/switchyard/internal/testserver"
)

// The defences of RFC 9113's attack surface that internal/h2 holds to at
// least net/http's bar. Each test runs against internal/h2 and, where the
// behaviour is the same by design, against net/http's own HTTP/2 server
// (Config.StdHTTP2) with the same limits, to show parity.

// bothServers runs test against internal/h2 and net/http's HTTP/2 server.
func bothServers(t *testing.T, test func(t *testing.T, std bool)) {
	for _, std := range []bool{false, true} {
		name := "internal-h2"
		if std {
			name = "net-http"
		}
		t.Run(name, func(t *testing.T) { test(t, std) })
	}
}

// okHandler answers every request with "ok".
var okHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })

// untilGoAway reads frames until a GOAWAY (returned) or the connection's
// end or timeout (nil).
func untilGoAway(c *testserver.H2Conn, timeout time.Duration) *http2.GoAwayFrame {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		f, err := c.ReadFrame(time.Until(deadline))
		if err != nil {
			return nil
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			return ga
		}
	}
	return nil
}

// More than 100 SETTINGS entries in one frame, or one setting twice, is a
// connection error PROTOCOL_ERROR: such frames made each entry cost a walk
// of every stream. 100 distinct entries (unknown ones, which a receiver
// ignores) are fine.
func TestSettingsEntriesBounded(t *testing.T) {
	bothServers(t, func(t *testing.T, std bool) {
		srv := startServer(t, okHandler, h2.Config{StdHTTP2: std}, serverOpts{})
		unknown := func(n int) []http2.Setting {
			s := make([]http2.Setting, n)
			for i := range s {
				s[i] = http2.Setting{ID: http2.SettingID(0x100 + i), Val: 1}
			}
			return s
		}
		for _, tc := range []struct {
			name     string
			settings []http2.Setting
			refused  bool
		}{
			{"100 distinct entries", unknown(100), false},
			{"101 entries", unknown(101), true},
			{"a duplicate", []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 1000}, {ID: http2.SettingInitialWindowSize, Val: 2000}}, true},
		} {
			c := testserver.DialH2(t, srv.addr)
			if err := c.Fr.WriteSettings(tc.settings...); err != nil {
				t.Fatal(err)
			}
			if err := c.Fr.WritePing(false, [8]byte{1}); err != nil {
				t.Fatal(err)
			}
			var goAway *http2.GoAwayFrame
			acked := false
			for !acked && goAway == nil {
				f, err := c.ReadFrame(5 * time.Second)
				if err != nil {
					t.Fatalf("%s: %v before an answer", tc.name, err)
				}
				switch f := f.(type) {
				case *http2.GoAwayFrame:
					goAway = f
				case *http2.PingFrame:
					acked = f.IsAck()
				}
			}
			switch {
			case tc.refused && (goAway == nil || goAway.ErrCode != http2.ErrCodeProtocol):
				t.Errorf("%s: answered %v, want GOAWAY PROTOCOL_ERROR", tc.name, goAway)
			case !tc.refused && goAway != nil:
				t.Errorf("%s: GOAWAY %v, want the frame accepted", tc.name, goAway.ErrCode)
			}
			c.Conn.Close()
		}
	})
}

// SETTINGS frames that do not grow SETTINGS_INITIAL_WINDOW_SIZE wake none
// of the handlers waiting for send window, however many arrive; one that
// grows it wakes them once, and they finish.
func TestSettingsWindowNotAnAmplifier(t *testing.T) {
	const streams = 8
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(pattern(1000)) })
	srv := startServer(t, mux, h2.Config{}, serverOpts{})
	c := dialRaw(t, srv.addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	for i := range streams {
		c.request(uint32(2*i+1), "GET", "/", true)
	}
	time.Sleep(100 * time.Millisecond) // the handlers are waiting for window
	for range 200 {                    // the window unchanged: nothing to wake for
		if err := c.Fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Fr.WritePing(false, [8]byte{2}); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := c.ReadFrame(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := f.(*http2.PingFrame); ok && p.IsAck() {
			break // every SETTINGS before it was processed
		}
	}
	if n := srv.h2.WindowWakeups(); n != 0 {
		t.Fatalf("200 SETTINGS frames that grew no window woke the waiting handlers %d times, want 0", n)
	}
	if err := c.Fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535}); err != nil {
		t.Fatal(err)
	}
	if err := c.Fr.WriteWindowUpdate(0, 1<<20); err != nil {
		t.Fatal(err)
	}
	ended := map[uint32]bool{}
	for len(ended) < streams {
		f, err := c.ReadFrame(5 * time.Second)
		if err != nil {
			t.Fatalf("after the window grew, %d of %d streams ended: %v", len(ended), streams, err)
		}
		if d, ok := f.(*http2.DataFrame); ok && d.StreamEnded() {
			ended[d.StreamID] = true
		}
	}
	if n := srv.h2.WindowWakeups(); n != 1 {
		t.Errorf("a SETTINGS frame that grew the windows woke the handlers %d times, want 1", n)
	}
}

// A header block made malformed by its first field still counts every
// later fragment against the header budget: the connection is closed
// (GOAWAY PROTOCOL_ERROR) before the block exceeds 2 x MaxHeaderListSize
// on the wire, however the rest decodes (CVE-2023-45288). Before, the
// budget stopped shrinking at the malformed field and every further
// CONTINUATION was decoded, without end.
func TestHeaderBudgetAfterMalformedField(t *testing.T) {
	const limit = 4 << 10
	bothServers(t, func(t *testing.T, std bool) {
		srv := startServer(t, okHandler, h2.Config{MaxHeaderListSize: limit, StdHTTP2: std}, serverOpts{})
		c := testserver.DialH2(t, srv.addr)
		first := c.HeaderBlock(":method", "GET", ":scheme", "http", ":authority", "h2test", ":path", "/", "X-Upper-Case", "is malformed")
		if err := c.Fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: first, EndStream: true}); err != nil {
			t.Fatal(err)
		}
		// Each fragment: literal fields that decode well (50 bytes each),
		// as far as the stated bound and one fragment more.
		frag := c.HeaderBlock("x-field", strings.Repeat("v", 500))
		sent := len(first) + h2.HeaderFrameOverhead
		for sent <= 2*limit+len(frag)+h2.HeaderFrameOverhead {
			if err := c.Fr.WriteContinuation(1, false, frag); err != nil {
				break // closed already
			}
			sent += len(frag) + h2.HeaderFrameOverhead
		}
		ga := untilGoAway(c, 5*time.Second)
		if ga == nil || ga.ErrCode != http2.ErrCodeProtocol {
			t.Fatalf("a malformed header block of %d wire bytes (limit %d): GOAWAY %v, want PROTOCOL_ERROR", sent, limit, ga)
		}
	})
}

// A legal header block near MaxHeaderListSize, split into many
// CONTINUATION frames, is still served.
func TestLargeHeaderBlockInContinuations(t *testing.T) {
	const limit = 8 << 10
	srv := startServer(t, okHandler, h2.Config{MaxHeaderListSize: limit}, serverOpts{})
	c := dialRaw(t, srv.addr)
	kv := []string{":method", "GET", ":scheme", "http", ":authority", "h2test", ":path", "/"}
	for i := range 12 { // 12 x (32 + 8 + 500): about 6.5 KiB decoded
		kv = append(kv, "x-field"+string(rune('a'+i)), strings.Repeat("v", 500))
	}
	block := c.HeaderBlock(kv...)
	const frag = 512
	if err := c.Fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:frag], EndStream: true}); err != nil {
		t.Fatal(err)
	}
	for rest := block[frag:]; len(rest) > 0; {
		n := min(frag, len(rest))
		if err := c.Fr.WriteContinuation(1, n == len(rest), rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if status, body, ended := c.response(1); status != "200" || string(body) != "ok" || !ended {
		t.Fatalf("a %d-byte header block in %d-byte fragments: %q %q %v", len(block), frag, status, body, ended)
	}
}

// A connection that sends the preface and never its SETTINGS is closed
// after SettingsTimeout, on h2c and TLS (net/http's server: after 2 s).
// Before, nothing bounded the wait: such connections held their place
// among MaxConnections until the ping check or the idle timeout.
func TestFirstSettingsDeadline(t *testing.T) {
	bothServers(t, func(t *testing.T, std bool) {
		for _, useTLS := range []bool{false, true} {
			conf := h2.Config{SettingsTimeout: 300 * time.Millisecond, IdleTimeout: time.Minute, SendPingTimeout: time.Minute, StdHTTP2: std}
			srv := startServer(t, okHandler, conf, serverOpts{tls: useTLS})
			var nc net.Conn
			var err error
			if useTLS {
				nc, err = tls.Dial("tcp", srv.addr, &tls.Config{RootCAs: srv.pool, NextProtos: []string{"h2"}, ServerName: "127.0.0.1"})
			} else {
				nc, err = net.Dial("tcp", srv.addr)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if _, err := io.WriteString(nc, http2.ClientPreface); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			c := &testserver.H2Conn{T: t, Conn: nc}
			if !c.Closed(15 * time.Second) {
				t.Fatalf("tls=%v: a connection without SETTINGS still open after 15 s", useTLS)
			}
			t.Logf("tls=%v: closed after %v", useTLS, time.Since(start).Round(time.Millisecond))
		}
	})
}

// A connection reads with a small buffer until its client's SETTINGS are
// read, and only then with its full one: connections that send the
// preface and nothing more (`make attack`'s no-settings class) hold no
// full read buffer. Before, each held one from the start, and that attack
// class ended 1.5-3 MiB above net/http's RSS (BENCHMARKS.md, "Under
// attack"; now 2-3 MiB below).
func TestReadBufferGrowsOnlyAfterSettings(t *testing.T) {
	const n = 50
	srv := startServer(t, okHandler, h2.Config{SettingsTimeout: time.Minute, MaxConnections: 4 * n}, serverOpts{})
	openConns(t, srv.addr, false, 2) // what the first connections allocate once
	openConns(t, srv.addr, true, 2)
	without := openConns(t, srv.addr, false, n)
	with := openConns(t, srv.addr, true, n)
	grown := int64(n * (h2.ConnReadBuffer - h2.ConnFirstReadBuffer))
	t.Logf("%d connections: %d KiB without SETTINGS, %d KiB with", n, without>>10, with>>10)
	if without <= 0 {
		t.Fatalf("%d open connections cost %d bytes: the measure read nothing", n, without)
	}
	if with-without < grown/2 {
		t.Errorf("%d connections that sent no SETTINGS hold %d KiB, %d that did %d KiB: want their read buffers, %d KiB, between them", n, without>>10, n, with>>10, grown>>10)
	}
}

// An idle connection (SETTINGS sent, a PING answered, no stream) costs
// internal/h2 no more heap and goroutine stacks than it costs net/http's
// server. It cost 5-7 KiB more (57-61 against 49-56 KiB a connection,
// with and without -race): beneath internal/h2's own read buffer, the
// listener's 16 KiB stayed for the connection's life. A connection taken
// over now lets it go once it is empty (buffered.go): 38-40 KiB.
func TestIdleConnectionCostsNoMoreThanNetHTTP(t *testing.T) {
	const n = 50
	cost := map[bool]int64{}
	for _, std := range []bool{false, true} {
		srv := startServer(t, okHandler, h2.Config{StdHTTP2: std, MaxConnections: 4 * n}, serverOpts{})
		openConns(t, srv.addr, true, 2) // what the first connections allocate once
		cost[std] = openConns(t, srv.addr, true, n) / n
	}
	t.Logf("an idle connection holds %d bytes of heap and stacks with internal/h2, %d with net/http's server", cost[false], cost[true])
	if cost[true] <= 0 {
		t.Fatalf("net/http's idle connections cost %d bytes each: the measure read nothing", cost[true])
	}
	if cost[false] > cost[true] {
		t.Errorf("an idle connection costs internal/h2 %d bytes of heap and stacks, net/http's server %d: want no more", cost[false], cost[true])
	}
}

// A connection whose peer once read too slowly for the server's writes,
// so that its frames piled up towards connMaxPending, lets go of that
// backlog's buffers once it is drained: idle, it holds no more than
// 2 x connKeepBuffer (the two buffers that take turns) more than a
// connection that only ever had small responses (and, on net/http's
// server, what its own write scheduler keeps). Before, both buffers
// kept what the backlog grew them to, for the connection's life: about
// 540 KiB more a connection, on internal/h2 and, through the listener's
// coalescing writer beneath it, on net/http's server.
func TestDrainedBacklogLeavesNoBuffers(t *testing.T) {
	const n = 20
	chunk := pattern(64 << 10)
	mux := http.NewServeMux()
	mux.HandleFunc("/small", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	mux.HandleFunc("/large", func(w http.ResponseWriter, _ *http.Request) {
		for range 16 { // 1 MiB, flushed as it goes
			_, _ = w.Write(chunk)
			w.(http.Flusher).Flush()
		}
	})
	bothServers(t, func(t *testing.T, std bool) {
		srv := startServer(t, mux, h2.Config{StdHTTP2: std, MaxConnections: 4 * n}, serverOpts{})
		// Four responses of 1 MiB at once, to a client that reads
		// nothing for 100 ms: 16 x connMaxPending, far more than the
		// sockets hold, so the frames pile up in the server. Then read
		// to the end.
		serve := func(path string, wait time.Duration) {
			c := dialRaw(t, srv.addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30})
			if err := c.Fr.WriteWindowUpdate(0, 1<<30); err != nil {
				t.Fatal(err)
			}
			c.burst(path, path, path, path)
			time.Sleep(wait)
			c.awaitEnds(4)
		}
		measure := func(path string, wait time.Duration) int64 {
			before := heapAndStacks()
			for range n {
				serve(path, wait)
			}
			return (heapAndStacks() - before) / n
		}
		serve("/small", 0) // what the first connections allocate once
		small := measure("/small", 0)
		large := measure("/large", 100*time.Millisecond)
		t.Logf("an idle connection holds %d KiB after small responses, %d KiB after a drained backlog", small>>10, large>>10)
		if large <= 0 {
			t.Fatalf("idle connections cost %d bytes each after a backlog: the measure read nothing", large)
		}
		bound, why := int64(2*h2.ConnKeepBuffer), "2 x ConnKeepBuffer"
		if std {
			// net/http's write scheduler keeps, per connection, the
			// queues a backlog grew (writeQueuePool.put keeps their
			// capacity): its own 10-20 KiB, which put the measure at
			// 122-148 KiB with the listener's two buffers of 64 KiB,
			// against 540 KiB more before they were let go.
			bound, why = 3*h2.ConnKeepBuffer, "2 x ConnKeepBuffer, and 64 KiB for net/http's write scheduler"
		}
		if large-small > bound {
			t.Errorf("after a drained backlog an idle connection holds %d KiB more than after small responses, want at most %d KiB (%s)", (large-small)>>10, bound>>10, why)
		}
	})
}

// openConns opens n cleartext connections to addr that send the preface
// and, with settings, their SETTINGS and a PING, whose answer it awaits;
// without, it awaits the server's SETTINGS. It reports what they added to
// the process's heap and stacks. They are closed when the test ends.
func openConns(t *testing.T, addr string, settings bool, n int) int64 {
	t.Helper()
	before := heapAndStacks()
	for range n {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		fr := http2.NewFramer(nc, nc)
		if _, err := io.WriteString(nc, http2.ClientPreface); err != nil {
			t.Fatal(err)
		}
		if settings {
			// A PING behind the SETTINGS: its answer means the
			// server read past them.
			if err := fr.WriteSettings(); err != nil {
				t.Fatal(err)
			}
			if err := fr.WritePing(false, [8]byte{1}); err != nil {
				t.Fatal(err)
			}
		}
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if p, ok := f.(*http2.PingFrame); ok && p.IsAck() || !settings {
				break
			}
		}
	}
	return heapAndStacks() - before
}

// dialNonReading opens a cleartext connection whose socket holds 4 KiB of
// what the server sends, and writes the client preface: a peer that reads
// nothing. It is closed when the test ends.
func dialNonReading(t *testing.T, addr string) (net.Conn, *http2.Framer) {
	t.Helper()
	nc, err := dialSmallReadBuffer(addr, 4<<10)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	if _, err := io.WriteString(nc, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	return nc, http2.NewFramer(nc, nc)
}

// heapAndStacks is the process's live heap and goroutine stacks.
func heapAndStacks() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc + m.StackInuse)
}

// A peer that floods PING (whose ACKs the server must queue) and never
// reads loses its connection: the reader pauses behind 1 024 unread
// control frames and, after 2 s of that, or at 10 000 queued, the
// connection is closed, long before the write timeout. Before, the
// reading goroutine blocked on the full socket with the ACKs, and the
// connection was held until the write timeout. internal/h2 only: net/http's
// server drops such a peer at 10 000 queued frames when its writes block in
// time, and otherwise holds it until its write timeout, depending on
// scheduling (under -race in this package, in about one run of three); the
// comparison is `make attack`'s ping-flood-nonreading.
func TestControlFramesBoundedForNonReadingPeer(t *testing.T) {
	srv := startServer(t, okHandler, h2.Config{WriteTimeout: 5 * time.Minute}, serverOpts{})
	nc, fr := dialNonReading(t, srv.addr)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	// PINGs in batches, never reading; a write that makes no progress
	// for 10 s means the server stopped reading without closing.
	var batch []byte
	for range 1000 {
		batch = append(batch, 0, 0, 8, byte(http2.FramePing), 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8)
	}
	sent := 0
	for sent < 100_000_000 {
		_ = nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		n, err := nc.Write(batch)
		sent += n
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("after %d PINGs the server stopped reading and did not close the connection", sent/17)
			}
			if !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("write: %v", err)
			}
			t.Logf("connection closed after %d PINGs were sent", sent/17)
			return
		}
	}
	t.Fatalf("%d PINGs sent, never read, and the connection is still open", sent/17)
}

// After the client's GOAWAY the server finishes, sends its GOAWAY and
// closes without a reset: the frames the client still had in flight (here
// 128 KiB of PINGs sent right behind the GOAWAY) are read and dropped while
// the close lingers, so the socket closes with a FIN. Before, the server
// closed at once with them unread, which makes the close a reset (h2spec
// generic 3.8/1 and http2 7/1 failed intermittently for it).
func TestDrainAfterClientGoAway(t *testing.T) {
	bothServers(t, func(t *testing.T, std bool) {
		srv := startServer(t, okHandler, h2.Config{StdHTTP2: std, MaxConnections: 100}, serverOpts{})
		c := dialRaw(t, srv.addr)
		c.request(1, "GET", "/", true)
		if status, _, ended := c.response(1); status != "200" || !ended {
			t.Fatalf("response %q ended %v", status, ended)
		}
		var flood bytes.Buffer
		fr := http2.NewFramer(&flood, nil)
		_ = fr.WriteGoAway(1, http2.ErrCodeNo, nil)
		for flood.Len() < 128<<10 { // under net/http's 10 000 queued control frames
			_ = fr.WritePing(false, [8]byte{3})
		}
		go func() { _, _ = c.Conn.Write(flood.Bytes()) }()
		sawGoAway := false
		for {
			f, err := c.ReadFrame(5 * time.Second)
			if err != nil {
				if err != io.EOF {
					t.Fatalf("the connection ended with %v, want a clean close (EOF)", err)
				}
				break
			}
			switch f := f.(type) {
			case *http2.GoAwayFrame:
				if f.ErrCode != http2.ErrCodeNo {
					t.Fatalf("server GOAWAY %v, want NO_ERROR", f.ErrCode)
				}
				sawGoAway = true
			case *http2.PingFrame: // answered while the server drains
			default:
				t.Fatalf("frame %v after the client's GOAWAY", f)
			}
		}
		if !sawGoAway {
			t.Error("the connection closed without the server's GOAWAY")
		}
	})
}
