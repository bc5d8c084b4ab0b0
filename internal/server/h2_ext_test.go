package server_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"golang.org/x/net/http2"

	routeguidev1 "github.com/switchyard/switchyard/gen/routeguide/v1"
	"github.com/switchyard/switchyard/gen/routeguide/v1/routeguidev1connect"
	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/testserver"
)

// Low-level HTTP/2 tests: golang.org/x/net/http2's Framer writes what no
// well-behaved client sends. They run sequentially (no t.Parallel) because
// they count the process's goroutines.

// h2Limits are small limits, so the tests reach them quickly.
var h2Limits = server.HTTPConfig{
	ReadHeaderTimeout:         500 * time.Millisecond,
	IdleTimeout:               time.Second,
	HTTP2MaxConcurrentStreams: 8,
	HTTP2MaxReadFrameSize:     16 << 10,
	MaxHeaderBytes:            16 << 10,
}

type h2conn struct{ *testserver.H2Conn }

// dialH2 opens a prior-knowledge HTTP/2 connection, sends settings and
// returns once the server's settings have arrived.
func dialH2(t *testing.T, addr string, settings ...http2.Setting) *h2conn {
	t.Helper()
	return &h2conn{testserver.DialH2(t, addr, settings...)}
}

// read returns the next frame, or nil when the connection ended or nothing
// came within timeout.
func (c *h2conn) read(timeout time.Duration) http2.Frame {
	f, err := c.ReadFrame(timeout)
	if err != nil {
		return nil
	}
	return f
}

// headerBlock encodes a gRPC request's headers for procedure.
func (c *h2conn) headerBlock(procedure string) []byte {
	return c.HeaderBlock(":method", "POST", ":scheme", "http", ":authority", "switchyard", ":path", procedure,
		"content-type", "application/grpc", "te", "trailers")
}

func (c *h2conn) openStream(id uint32, procedure string, endStream bool) {
	c.T.Helper()
	if err := c.Fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.headerBlock(procedure), EndHeaders: true, EndStream: endStream}); err != nil {
		c.T.Fatal(err)
	}
}

// untilGoAway reads frames until a GOAWAY (returned) or the end of the
// connection (nil).
func (c *h2conn) untilGoAway(timeout time.Duration) *http2.GoAwayFrame {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		f := c.read(time.Until(deadline))
		if f == nil {
			return nil
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			return ga
		}
	}
	return nil
}

// waitGoroutines waits up to 10 s for the goroutine count to fall to limit.
func waitGoroutines(t *testing.T, limit int, why string) {
	t.Helper()
	testserver.WaitGoroutines(t, limit, 10*time.Second, why)
}

func TestHTTP2SettingsAdvertised(t *testing.T) {
	srv := testserver.StartWith(t, server.Config{}, testserver.Options{HTTP: h2Limits})
	c := dialH2(t, srv.Addr)
	if got := c.Settings[http2.SettingMaxConcurrentStreams]; got != 8 {
		t.Errorf("SETTINGS_MAX_CONCURRENT_STREAMS = %d, want 8", got)
	}
	if got := c.Settings[http2.SettingMaxFrameSize]; got != 16<<10 {
		t.Errorf("SETTINGS_MAX_FRAME_SIZE = %d, want 16384", got)
	}
	if got := c.Settings[http2.SettingMaxHeaderListSize]; got == 0 || got > 32<<10 {
		t.Errorf("SETTINGS_MAX_HEADER_LIST_SIZE = %d, want about 16 KiB", got)
	}

	// The defaults are the documented ones.
	def := dialH2(t, testserver.Start(t, server.Config{}).Addr)
	if got := def.Settings[http2.SettingMaxConcurrentStreams]; got != server.DefaultHTTP2MaxConcurrentStreams {
		t.Errorf("default SETTINGS_MAX_CONCURRENT_STREAMS = %d, want %d", got, server.DefaultHTTP2MaxConcurrentStreams)
	}
}

// Invalid frames end the connection with the matching GOAWAY code, and the
// server keeps serving others.
func TestHTTP2InvalidFrames(t *testing.T) {
	srv := testserver.StartWith(t, server.Config{}, testserver.Options{HTTP: h2Limits})
	tests := []struct {
		name string
		send func(c *h2conn) error
		want http2.ErrCode
	}{
		{"frame over SETTINGS_MAX_FRAME_SIZE", func(c *h2conn) error {
			c.openStream(1, routeguidev1connect.RouteGuideServiceRecordRouteProcedure, false)
			return c.Fr.WriteData(1, false, make([]byte, 20<<10))
		}, http2.ErrCodeFrameSize},
		{"DATA on stream 0", func(c *h2conn) error {
			return c.Fr.WriteData(0, false, []byte("x"))
		}, http2.ErrCodeProtocol},
		{"even stream id from a client", func(c *h2conn) error {
			c.openStream(2, routeguidev1connect.RouteGuideServiceGetFeatureProcedure, true)
			return nil
		}, http2.ErrCodeProtocol},
		{"garbage header block", func(c *h2conn) error {
			return c.Fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: []byte{0xff, 0xff, 0xff, 0xff}, EndHeaders: true})
		}, http2.ErrCodeCompression},
		{"zero WINDOW_UPDATE on the connection", func(c *h2conn) error {
			return c.Fr.WriteWindowUpdate(0, 0)
		}, http2.ErrCodeProtocol},
		{"INITIAL_WINDOW_SIZE over 2^31-1", func(c *h2conn) error {
			return c.Fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 31})
		}, http2.ErrCodeFlowControl},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dialH2(t, srv.Addr)
			if err := tc.send(c); err != nil {
				t.Fatal(err)
			}
			ga := c.untilGoAway(5 * time.Second)
			if ga == nil || ga.ErrCode != tc.want {
				t.Errorf("got %v, want GOAWAY %v", ga, tc.want)
			}
		})
	}
	checkHealthy(t, srv)
}

// A flood of streams opened and reset at once (CVE-2023-44487) and a flood
// of CONTINUATION frames (CVE-2023-45288) pin neither goroutines nor memory.
func TestHTTP2Floods(t *testing.T) {
	srv := testserver.StartWith(t, server.Config{}, testserver.Options{HTTP: h2Limits})
	checkHealthy(t, srv)
	srv.HTTPClient.CloseIdleConnections()
	base := runtime.NumGoroutine()

	t.Run("rapid reset", func(t *testing.T) {
		c := dialH2(t, srv.Addr)
		peak := 0
		var err error
		for i := uint32(0); i < 5000 && err == nil; i++ {
			id := 2*i + 1
			// RouteChat would wait for messages: each stream costs a handler
			// goroutine until it is reset.
			c.openStream(id, routeguidev1connect.RouteGuideServiceRouteChatProcedure, false)
			err = c.Fr.WriteRSTStream(id, http2.ErrCodeCancel)
			if i%100 == 0 {
				peak = max(peak, runtime.NumGoroutine())
			}
		}
		// The server may end the connection (ENHANCE_YOUR_CALM) rather than
		// read on; either way the handlers it ran were bounded.
		t.Logf("flood ended with %v; peak %d goroutines over a base of %d", err, peak, base)
		if limit := base + 3*8 + 20; peak > limit {
			t.Errorf("peak of %d goroutines during the flood, want at most %d", peak, limit)
		}
		c.Conn.Close()
		waitGoroutines(t, base+2, "after the reset flood")
	})

	t.Run("continuation flood", func(t *testing.T) {
		c := dialH2(t, srv.Addr)
		block := c.headerBlock(routeguidev1connect.RouteGuideServiceGetFeatureProcedure)
		if err := c.Fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndHeaders: false}); err != nil {
			t.Fatal(err)
		}
		// An endless header: 16 MiB of CONTINUATION, far past the 16 KiB limit.
		chunk := bytes.Repeat([]byte{0x40, 0x01, 'x', 0x7f, 0x7f}, 1<<10) // literal headers
		var err error
		sent := 0
		for ; sent < 16<<20 && err == nil; sent += len(chunk) {
			_ = c.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			err = c.Fr.WriteContinuation(1, false, chunk)
		}
		if err == nil && !c.Closed(5*time.Second) {
			t.Fatalf("the server read %d bytes of one header block and kept the connection", sent)
		}
		t.Logf("server stopped the header after %d bytes sent (%v)", sent, err)
		waitGoroutines(t, base+2, "after the continuation flood")
	})

	t.Run("streams over the limit", func(t *testing.T) {
		c := dialH2(t, srv.Addr)
		// The SETTINGS ACK must arrive before the limit binds.
		for f := c.read(time.Second); f != nil; f = c.read(200 * time.Millisecond) {
		}
		for i := range uint32(9) {
			c.openStream(2*i+1, routeguidev1connect.RouteGuideServiceRouteChatProcedure, false)
		}
		var refused bool
		for f := c.read(2 * time.Second); f != nil && !refused; f = c.read(2 * time.Second) {
			if rst, ok := f.(*http2.RSTStreamFrame); ok && rst.StreamID == 17 {
				refused = rst.ErrCode == http2.ErrCodeRefusedStream || rst.ErrCode == http2.ErrCodeProtocol
			}
		}
		if !refused {
			t.Error("the 9th concurrent stream was not refused (limit 8)")
		}
		c.Conn.Close()
		waitGoroutines(t, base+2, "after closing a connection at its stream limit")
	})
	checkHealthy(t, srv)
}

// A client that never reads (its receive window is 0) pins at most the
// per-connection stream limit of handlers and no growing memory; when it
// goes, everything is released.
func TestHTTP2StalledWindow(t *testing.T) {
	srv := testserver.StartWith(t, server.Config{}, testserver.Options{HTTP: h2Limits})
	checkHealthy(t, srv)
	srv.HTTPClient.CloseIdleConnections()
	base := runtime.NumGoroutine()

	c := dialH2(t, srv.Addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	req := routeguidev1.ListFeaturesRequest{Lo: wholeMap.GetLo(), Hi: wholeMap.GetHi()}
	msg := envelope(0, marshal(t, &req))
	for i := range uint32(8) {
		id := 2*i + 1
		c.openStream(id, routeguidev1connect.RouteGuideServiceListFeaturesProcedure, false)
		if err := c.Fr.WriteData(id, true, msg); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	stalled := runtime.NumGoroutine()
	if stalled > base+8+10 {
		t.Errorf("%d goroutines with 8 stalled streams over a base of %d", stalled, base)
	}
	// Stalled for a while: nothing grows.
	time.Sleep(time.Second)
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapInuse) - int64(before.HeapInuse); grown > 4<<20 {
		t.Errorf("heap grew %d bytes while the streams were stalled", grown)
	}
	if now := runtime.NumGoroutine(); now > stalled+2 {
		t.Errorf("goroutines grew from %d to %d while stalled", stalled, now)
	}
	checkHealthy(t, srv) // others are served meanwhile
	srv.HTTPClient.CloseIdleConnections()
	c.Conn.Close()
	waitGoroutines(t, base+2, "after the stalled client left")
}

// Slowloris: a client that sends its headers slowly, or not at all, is
// disconnected by the header and idle timeouts, over HTTP/1.1 and HTTP/2.
func TestSlowClientsAreDisconnected(t *testing.T) {
	srv := testserver.StartWith(t, server.Config{}, testserver.Options{HTTP: h2Limits})
	checkHealthy(t, srv)
	srv.HTTPClient.CloseIdleConnections()
	base := runtime.NumGoroutine()

	var conns []net.Conn
	for range 50 {
		conn, err := net.Dial("tcp", srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /greeter.v1.GreeterService/SayHello HTTP/1.1\r\nHost: x\r\n")
		conns = append(conns, conn)
	}
	// One byte of header every 100 ms does not extend the 500 ms limit.
	start := time.Now()
	trickle := conns[0]
	for time.Since(start) < 3*time.Second {
		if _, err := fmt.Fprintf(trickle, "X"); err != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if d := time.Since(start); d >= 3*time.Second {
		t.Errorf("a trickling HTTP/1.1 header was accepted for %v (limit 500ms)", d)
	}
	for i, conn := range conns {
		_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := io.ReadAll(conn); err != nil && !errors.Is(err, io.EOF) {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("slow HTTP/1.1 connection %d still open", i)
			}
		}
	}

	// HTTP/2: silent after the preface, and a header block never finished.
	silent := dialH2(t, srv.Addr)
	unfinished := dialH2(t, srv.Addr)
	if err := unfinished.Fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: unfinished.headerBlock("/x/y"), EndHeaders: false}); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*h2conn{"silent": silent, "unfinished header": unfinished} {
		if !c.Closed(5 * time.Second) {
			t.Errorf("%s HTTP/2 connection still open after 5 s (idle timeout 1 s)", name)
		}
	}
	waitGoroutines(t, base+2, "after the slow clients")
	checkHealthy(t, srv)
}

// Connections beyond MaxConnections wait to be accepted until one closes.
func TestMaxConnections(t *testing.T) {
	limits := h2Limits
	limits.MaxConnections = 2
	srv := testserver.StartWith(t, server.Config{}, testserver.Options{HTTP: limits})
	first := dialH2(t, srv.Addr)
	dialH2(t, srv.Addr)

	third, err := net.Dial("tcp", srv.Addr) // the kernel's accept queue takes it
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if _, err := io.WriteString(third, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(third, third)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	_ = third.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if f, err := fr.ReadFrame(); err == nil {
		t.Fatalf("a third connection over the limit of 2 was served: %v", f)
	}
	first.Conn.Close()
	_ = third.SetReadDeadline(time.Now().Add(5 * time.Second))
	if f, err := fr.ReadFrame(); err != nil {
		t.Fatalf("the waiting connection was not served once another closed: %v", err)
	} else if _, ok := f.(*http2.SettingsFrame); !ok {
		t.Fatalf("first frame %v, want SETTINGS", f)
	}
}
