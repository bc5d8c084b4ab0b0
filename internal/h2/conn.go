package h2

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/switchyard/switchyard/internal/outcome"
)

// Protocol constants (RFC 9113).
const (
	initialWindow    = 65535 // before SETTINGS_INITIAL_WINDOW_SIZE
	defaultFrameSize = 16384 // before SETTINGS_MAX_FRAME_SIZE
	maxWindow        = 1<<31 - 1
	// goAwayLinger is how long a connection that ends after a GOAWAY
	// lingers before its socket closes, so that the client reads the
	// GOAWAY first.
	goAwayLinger = time.Second
	// maxRefusedDebt: a connection whose refused streams outnumber its
	// served ones by this much is ended with ENHANCE_YOUR_CALM.
	maxRefusedDebt = 1000
)

// conn is one HTTP/2 connection. The goroutine in serve reads and processes
// every frame; handlers write their own frames under wmu, into the pending
// buffer that the connection's writer goroutine hands to the socket
// (wire.go).
//
// Lock order: wmu before mu. Nothing waits for wmu while holding mu, and
// nothing holds wmu while it waits for the socket.
type conn struct {
	srv       *Server
	hs        *http.Server
	conf      *Config
	nc        net.Conn
	handler   http.Handler
	baseCtx   context.Context // for values only: streams are cancelled one by one (streamCtx.Value)
	deadlines deadlines       // of the streams' contexts (LimitDuration)
	remote    string
	fr        *http2.Framer  // reads: the serve goroutine only; writes: under wmu
	hdec      *hpack.Decoder // request header blocks, into hb; the serve goroutine only
	hb        headerBlock
	decoded   decodedBlocks // request blocks decoded before (headers.go); the serve goroutine only

	// tlsState is the TLS connection's state, read once and shared by
	// every request's r.TLS (as x/net/http2 does); nil in cleartext.
	tlsState *tls.ConnectionState

	br      *bufio.Reader // the socket's reads; the serve goroutine only
	readErr error         // what ended serve's reads (peerEnded); the serve goroutine only

	// The socket's writes (wire.go), guarded by wmu.
	wmu         sync.Mutex
	enc         *blockEncoder // response header blocks (encode.go)
	out         []byte        // frames not yet handed to the socket
	spare       []byte        // the buffer of the write in progress
	writing     bool          // a socket write is in progress
	ended       int           // responses ended since the last socket write
	firstEnded  time.Time     // when the first of them ended
	control     int           // control frames queued since a socket write last completed
	dataAt      int           // offset in out of a DATA frame that may grow (writeDataLocked), or -1
	dataID      uint32        // its stream
	room        sync.Cond     // out drained below connMaxPending, or a write ended
	writerAwake bool          // the writer goroutine is running or woken
	wake        chan struct{}
	writerDone  chan struct{}
	closing     closeMode
	wbroken     bool // a write failed, or the writer is gone; nothing more is written

	// Written by the serve goroutine, read by the watchdog.
	framesRead atomic.Uint64
	flushes    atomic.Uint64 // socket writes, twice: odd while one is in progress
	started    atomic.Uint64 // streams started
	// windowWakeups counts the times SETTINGS woke the handlers waiting
	// for send window (tests read it: SETTINGS must not be an amplifier).
	windowWakeups atomic.Uint64

	mu          sync.Mutex
	cond        sync.Cond // send windows grew, a stream ended, or the connection closed
	streams     map[uint32]*stream
	maxStreamID uint32 // highest client stream ID seen
	running     int    // handlers running (streams open, or reset and not yet returned)
	// finishing counts the streams whose handlers have returned and whose
	// records are on their way to the Observer (the log line).
	finishing      atomic.Int32
	sendWindow     int32                // connection send window
	peerWindow     int32                // peer's SETTINGS_INITIAL_WINDOW_SIZE
	waitingDelta   int32                // at least the sendDelta of every handler waiting for window (setPeerWindow)
	peerFrameSize  uint32               // peer's SETTINGS_MAX_FRAME_SIZE
	recvAvail      int32                // connection receive window the client may still use
	recvUnacked    int32                // consumed receive window not yet returned
	draining       bool                 // the first GOAWAY of a graceful shutdown is out
	clientFirst    bool                 // the client's GOAWAY came before the server's: its going (peerEnded)
	drainReason    outcome.GoAwayReason // why the graceful shutdown began
	goingAway      bool                 // the final GOAWAY is out: no new streams
	failed         bool                 // GOAWAY with an error: serve closes the connection
	closed         bool                 // the connection is over
	idleFrom       time.Time            // the watchdog's first idle look; zero when busy
	lastStarted    uint64
	stuckFlush     uint64 // the flush in progress at the watchdog's last look
	stuckSince     time.Time
	stuckAcked     uint64 // bytes the peer had acknowledged then (bytesAcked)
	refusedDebt    int
	pingSentAt     time.Time // zero when no ping is outstanding
	lastFramesSeen uint64
	silentSince    time.Time
	watchdog       *time.Timer
	ageTimer       *time.Timer // MaxConnectionAge, then its grace
	lateResets     []uint32    // streams to reset with NO_ERROR (resetLateLocked)
	hasLateResets  atomic.Bool
	lateTimer      *time.Timer // sends the late resets (armLateResets); under mu
	lateArmed      atomic.Bool
}

func newConn(s *Server, hs *http.Server, nc net.Conn, h http.Handler, ctx context.Context) *conn {
	c := &conn{
		srv:           s,
		hs:            hs,
		conf:          &s.conf,
		nc:            nc,
		handler:       h,
		baseCtx:       ctx,
		remote:        nc.RemoteAddr().String(),
		streams:       map[uint32]*stream{},
		sendWindow:    initialWindow,
		peerWindow:    initialWindow,
		waitingDelta:  math.MinInt32,
		peerFrameSize: defaultFrameSize,
		recvAvail:     s.conf.MaxReceiveBufferPerConnection,
		silentSince:   time.Now(),
	}
	if tc, ok := nc.(*tls.Conn); ok {
		// net/http hands the connection over after its handshake (ALPN
		// chose h2), so the state is final. Without it each request
		// would copy a new one (net/http's initALPNRequest).
		st := tc.ConnectionState()
		c.tlsState = &st
	}
	c.cond.L = &c.mu
	c.initWire()
	c.fr = http2.NewFramer(outWriter{c}, connReader{c})
	c.hdec = hpack.NewDecoder(4096, c.hb.emit)
	c.hb.dec = c.hdec
	c.hdec.SetMaxStringLength(int(s.conf.MaxHeaderListSize))
	c.fr.SetMaxReadFrameSize(s.conf.MaxReadFrameSize)
	c.fr.SetReuseFrames()
	c.enc = newBlockEncoder()
	return c
}

// serve runs the connection: the preface, the server's SETTINGS, then one
// frame after another until the connection ends.
func (c *conn) serve(readPreface bool) {
	defer c.close()
	if readPreface {
		_ = c.nc.SetReadDeadline(time.Now().Add(c.conf.ReadHeaderTimeout))
		var buf [len(http2.ClientPreface)]byte
		if _, err := io.ReadFull(c.br, buf[:]); err != nil || string(buf[:]) != http2.ClientPreface {
			return
		}
	}
	// The client's SETTINGS follow its preface at once (RFC 9113 section
	// 3.4). A connection that never sends them would otherwise hold its
	// place among MaxConnections until the ping check or the idle timeout
	// (net/http's server allows 2 s too).
	_ = c.nc.SetReadDeadline(time.Now().Add(c.conf.SettingsTimeout))
	c.wmu.Lock()
	_ = c.fr.WriteSettings(
		http2.Setting{ID: http2.SettingMaxFrameSize, Val: c.conf.MaxReadFrameSize},
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: c.conf.MaxConcurrentStreams},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: c.conf.MaxHeaderListSize},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: uint32(c.conf.MaxReceiveBufferPerStream)},
	)
	if d := c.conf.MaxReceiveBufferPerConnection - initialWindow; d > 0 {
		_ = c.fr.WriteWindowUpdate(0, uint32(d))
	}
	c.flushLocked()
	c.wmu.Unlock()

	c.mu.Lock()
	c.watchdog = time.AfterFunc(c.tickInterval(), c.tick)
	c.mu.Unlock()
	c.startAging()

	sawSettings := false
	for {
		if c.br.Buffered() == 0 {
			if sawSettings {
				c.growReader()
			}
			// Late resets held for a body that has since ended, or come
			// whole without END_STREAM, go lateResetGrace from now.
			c.armLateResets()
		}
		f, err := c.fr.ReadFrame()
		if err != nil {
			c.readErr = err
			if errors.Is(err, http2.ErrFrameTooLarge) {
				err = http2.ConnectionError(http2.ErrCodeFrameSize)
			}
			if !c.handleError(err) {
				return
			}
			continue
		}
		c.framesRead.Add(1)
		if !sawSettings {
			if sf, ok := f.(*http2.SettingsFrame); !ok || sf.IsAck() {
				c.fail(http2.ConnectionError(http2.ErrCodeProtocol))
				return
			}
			sawSettings = true
			_ = c.nc.SetReadDeadline(time.Time{})
		}
		if err := c.process(f); err != nil {
			if !c.handleError(err) {
				return
			}
		}
	}
}

// handleError answers an error of reading or processing a frame:
// RST_STREAM for a stream error (reporting true: the connection goes on),
// GOAWAY for a connection error; any other error (the socket's) ends the
// connection as it is.
func (c *conn) handleError(err error) bool {
	var se http2.StreamError
	if errors.As(err, &se) {
		c.resetStream(se.StreamID, se.Code, errStreamClosed)
		return true
	}
	var ce http2.ConnectionError
	if errors.As(err, &ce) {
		c.fail(ce)
	}
	return false
}

// fail ends the connection after a connection error: GOAWAY with its code,
// then a short linger reading and discarding so the client sees it.
func (c *conn) fail(ce http2.ConnectionError) {
	c.goAway(http2.ErrCode(ce), false, outcome.GoAwayError)
	c.closeGracefully()
	// The GOAWAY and a FIN go out; the socket closes after goAwayLinger,
	// so the peer has read them by then. Nothing more is read: a peer that
	// earned a connection error may be flooding, and reading it to the
	// end of the linger cost three times net/http's CPU under the
	// CONTINUATION floods. What it sends meanwhile waits in the kernel.
	time.Sleep(goAwayLinger)
}

// drainPing is the payload of the PING that follows a graceful shutdown's
// first GOAWAY: its ACK means the streams the client opened before it
// saw the GOAWAY have arrived.
var drainPing = [8]byte{'s', 'y', 'd', 'r', 'a', 'i', 'n', '!'}

// drainTimeout bounds the wait for drainPing's ACK.
const drainTimeout = time.Second

// shutdown starts a graceful shutdown (RFC 9113 section 6.8): a GOAWAY
// with the largest stream ID tells the client to open no more streams,
// a PING measures a round trip for the streams already on their way, and
// then the final GOAWAY names the last stream served. A single GOAWAY
// naming the last stream seen would refuse a stream whose HEADERS were in
// flight, which the client counts as failed. The connection closes when
// its last stream ends.
func (c *conn) shutdown(reason outcome.GoAwayReason) {
	c.mu.Lock()
	if c.closed || c.draining || c.goingAway {
		c.mu.Unlock()
		return
	}
	c.draining = true
	c.drainReason = reason
	c.mu.Unlock()
	c.writeControl(func(fr *http2.Framer) error {
		_ = fr.WriteGoAway(1<<31-1, http2.ErrCodeNo, nil)
		return fr.WritePing(false, drainPing)
	})
	time.AfterFunc(drainTimeout, func() { c.goAway(http2.ErrCodeNo, false, reason) })
}

// goAway sends the final GOAWAY: NO_ERROR once (the connection closes when
// its last stream ends), an error code whenever asked. closeNow closes the
// connection (gracefully) without waiting for its streams. reason is what
// the Observer is told.
func (c *conn) goAway(code http2.ErrCode, closeNow bool, reason outcome.GoAwayReason) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	send := !c.goingAway || code != http2.ErrCodeNo
	c.goingAway = true
	c.failed = c.failed || code != http2.ErrCodeNo
	last := c.maxStreamID
	done := c.running == 0
	c.mu.Unlock()

	if send {
		c.writeControl(func(fr *http2.Framer) error { return fr.WriteGoAway(last, code, nil) })
		c.noteGoAway(code, reason)
	}
	if closeNow || (code == http2.ErrCodeNo && done) {
		c.closeGracefully()
	}
}

// close runs when serve returns: every stream is cancelled and every
// waiting handler woken.
func (c *conn) close() {
	why := errConnClosed
	if c.peerEnded() {
		why = errPeerClosed
	}
	c.mu.Lock()
	c.closed = true
	streams := c.streams
	c.streams = map[uint32]*stream{}
	if c.watchdog != nil {
		c.watchdog.Stop()
	}
	if c.ageTimer != nil {
		c.ageTimer.Stop()
	}
	if c.lateTimer != nil {
		c.lateTimer.Stop()
	}
	for _, st := range streams {
		st.abortLocked(why)
	}
	c.deadlines.stop()
	c.cond.Broadcast()
	c.mu.Unlock()
	c.closeSocket()
	<-c.writerDone // within connCloseDrain
	_ = c.nc.Close()
}

// peerEnded reports whether the client ended the connection: serve's
// read loop met the end of the stream (or a reset) before the server had
// begun ending it (a GOAWAY answering the client's own does not count),
// by GOAWAY, a connection error, or a close of its own
// (a ping or write timeout, the age's grace, a shutdown's), whose reads
// end with a deadline or on a closed socket instead. A call it ends is
// the client's cancel, not an unavailable server. Called by serve's
// goroutine, whose readErr is.
func (c *conn) peerEnded() bool {
	if !errors.Is(c.readErr, io.EOF) && !errors.Is(c.readErr, io.ErrUnexpectedEOF) && !errors.Is(c.readErr, syscall.ECONNRESET) {
		return false
	}
	c.mu.Lock()
	goingAway := (c.draining || c.goingAway) && !c.clientFirst || c.failed
	c.mu.Unlock()
	c.wmu.Lock()
	closing := c.closing != open
	c.wmu.Unlock()
	return !goingAway && !closing
}

// writeControl writes connection-level frames and flushes. It never waits
// for the socket: the goroutine that reads the peer's frames calls it (as
// do the connection's timers, and a handler whose response says
// Connection: close, once), and a peer that makes it queue more than
// maxQueuedControlFrames without reading them loses its connection.
func (c *conn) writeControl(write func(*http2.Framer) error) {
	c.wmu.Lock()
	if c.wbroken || c.closing != open {
		c.wmu.Unlock()
		return
	}
	_ = write(c.fr)
	c.flushLocked()
	ok := c.controlQueuedLocked() && c.controlStallLocked()
	c.wmu.Unlock()
	if !ok {
		logf(c.hs, "h2: closing connection from %s: it does not read the control frames it asks for", c.remote)
		c.abandon()
	}
}

// controlStallLocked holds the goroutine that reads the peer's frames
// while controlStall control frames wait behind a socket write that does
// not complete: the peer makes the server answer (PING, SETTINGS, resets)
// faster than it reads the answers. It reports false when the stall
// outlasts controlStallTimeout. Called with wmu, which it releases while
// it waits.
func (c *conn) controlStallLocked() bool {
	if c.control < controlStall || !c.writing {
		return true
	}
	end := time.Now().Add(controlStallTimeout)
	t := time.AfterFunc(controlStallTimeout, func() {
		c.wmu.Lock()
		c.room.Broadcast()
		c.wmu.Unlock()
	})
	defer t.Stop()
	for c.control >= controlStall && c.writing && !c.wbroken && c.closing == open {
		if !time.Now().Before(end) {
			return false
		}
		c.room.Wait()
	}
	return true
}

// tickInterval is how often the watchdog looks at the connection.
func (c *conn) tickInterval() time.Duration {
	d := min(c.conf.IdleTimeout, c.conf.SendPingTimeout, c.conf.PingTimeout, c.conf.WriteTimeout) / 2
	return max(d, 50*time.Millisecond)
}

// tick is the watchdog: it closes idle connections, pings silent ones,
// closes those that do not answer or whose socket writes are stuck.
func (c *conn) tick() {
	now := time.Now()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	// The watchdog looks at counters, so the paths it guards do not read
	// the clock: a socket write that stays in progress, frames that stop
	// coming, streams that stop starting.
	// A write in progress since the last look is stuck once WriteTimeout
	// has passed without the peer acknowledging a byte. One socket write
	// takes a whole batch (up to connMaxPending), which a client reading
	// steadily but slowly may take longer than WriteTimeout to accept;
	// net/http's WriteByteTimeout, which counts any byte, keeps it too.
	stuck := false
	if f := c.flushes.Load(); f%2 == 1 && f == c.stuckFlush {
		if now.Sub(c.stuckSince) > c.conf.WriteTimeout {
			if acked, ok := bytesAcked(c.nc); ok && acked != c.stuckAcked {
				c.stuckAcked, c.stuckSince = acked, now
			} else {
				stuck = true
			}
		}
	} else {
		c.stuckFlush, c.stuckSince = f, now
		if f%2 == 1 {
			c.stuckAcked, _ = bytesAcked(c.nc)
		}
	}
	if n := c.framesRead.Load(); n != c.lastFramesSeen {
		c.lastFramesSeen = n
		c.silentSince = now
		c.pingSentAt = time.Time{}
	}
	if s := c.started.Load(); c.running > 0 || s != c.lastStarted {
		c.lastStarted = s
		c.idleFrom = time.Time{}
	} else if c.idleFrom.IsZero() {
		c.idleFrom = now
	}
	idle := !c.idleFrom.IsZero() && now.Sub(c.idleFrom) >= c.conf.IdleTimeout
	ping := c.pingSentAt.IsZero() && now.Sub(c.silentSince) > c.conf.SendPingTimeout
	dead := !c.pingSentAt.IsZero() && now.Sub(c.pingSentAt) > c.conf.PingTimeout
	if ping {
		c.pingSentAt = now
	}
	c.watchdog.Reset(c.tickInterval())
	c.mu.Unlock()

	c.sendLateResets(true)
	switch {
	case dead, stuck:
		c.noteTimeout(dead)
		c.closeSocket()
	case idle:
		// Not closeNow: a stream accepted since the check above is
		// answered first (goAway counts the running ones again).
		c.goAway(http2.ErrCodeNo, false, outcome.GoAwayIdle)
	case ping:
		c.writeControl(func(fr *http2.Framer) error { return fr.WritePing(false, [8]byte{'s', 'w', 'i', 't', 'c', 'h'}) })
	}
}

// process handles one frame.
func (c *conn) process(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.HeadersFrame:
		c.hb.start(f, c.conf.MaxHeaderListSize)
		return c.headerFragment(f.HeaderBlockFragment(), true, f.HeadersEnded())
	case *http2.ContinuationFrame:
		// The Framer lets CONTINUATION through only right after the
		// HEADERS (or CONTINUATION) of the same stream.
		if !c.hb.open || f.StreamID != c.hb.id {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		return c.headerFragment(f.HeaderBlockFragment(), false, f.HeadersEnded())
	case *http2.DataFrame:
		return c.processData(f)
	case *http2.SettingsFrame:
		return c.processSettings(f)
	case *http2.WindowUpdateFrame:
		return c.processWindowUpdate(f)
	case *http2.PingFrame:
		if f.StreamID != 0 {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		if !f.IsAck() {
			data := f.Data
			c.writeControl(func(fr *http2.Framer) error { return fr.WritePing(true, data) })
		} else if f.Data == drainPing {
			c.mu.Lock()
			reason := c.drainReason
			c.mu.Unlock()
			c.goAway(http2.ErrCodeNo, false, reason)
		}
		return nil
	case *http2.RSTStreamFrame:
		return c.processReset(f)
	case *http2.PriorityFrame:
		if f.StreamDep == f.StreamID {
			return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeProtocol}
		}
		return nil
	case *http2.GoAwayFrame:
		c.mu.Lock()
		c.clientFirst = c.clientFirst || !c.draining && !c.goingAway
		c.mu.Unlock()
		c.goAway(http2.ErrCodeNo, false, outcome.GoAwayClient)
		return nil
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol)
	default:
		return nil // unknown frame types are ignored
	}
}

// maxSettings bounds the entries of one SETTINGS frame. RFC 9113 defines
// seven settings; a frame with many more, or with one twice, is an attack
// (it made each entry cost a walk of every stream): PROTOCOL_ERROR, as
// net/http's server answers.
const maxSettings = 100

func (c *conn) processSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	if f.NumSettings() > maxSettings || f.HasDuplicates() {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	window, setWindow := uint32(0), false
	if err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingInitialWindowSize:
			window, setWindow = s.Val, true
		case http2.SettingMaxFrameSize:
			c.mu.Lock()
			c.peerFrameSize = s.Val
			c.mu.Unlock()
		case http2.SettingHeaderTableSize:
			c.wmu.Lock()
			c.enc.setLimit(s.Val)
			c.wmu.Unlock()
		}
		return nil
	}); err != nil {
		return err
	}
	if setWindow {
		c.setPeerWindow(window)
	}
	c.writeControl(func(fr *http2.Framer) error { return fr.WriteSettingsAck() })
	return nil
}

// setPeerWindow applies a new SETTINGS_INITIAL_WINDOW_SIZE to every open
// stream's send window (RFC 9113 section 6.9.2) in O(1): a stream's
// window is kept relative to it (stream.sendDelta), so no stream is
// visited, however many are open (GO-2026-6611). A window the change
// takes past 2^31-1 is found when its stream next uses it
// (sendWindowLocked), as net/http's server does: a connection error
// FLOW_CONTROL_ERROR then. The handlers waiting for window are woken only
// when the window grew and one of them may now send: a peer that changes
// the setting back and forth without opening any window wakes nobody.
func (c *conn) setPeerWindow(val uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	grew := int32(val) > c.peerWindow
	c.peerWindow = int32(val)
	if grew && c.sendWindow > 0 && int64(val)+int64(c.waitingDelta) > 0 {
		c.waitingDelta = math.MinInt32 // the woken register again as they wait (waitSendWindow)
		c.cond.Broadcast()
		c.windowWakeups.Add(1)
	}
}

func (c *conn) processWindowUpdate(f *http2.WindowUpdateFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	inc := int64(f.Increment)
	if f.StreamID == 0 {
		if int64(c.sendWindow)+inc > maxWindow {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
		c.sendWindow += int32(inc)
		c.cond.Broadcast()
		return nil
	}
	st := c.streams[f.StreamID]
	if st == nil {
		if f.StreamID > c.maxStreamID {
			return http2.ConnectionError(http2.ErrCodeProtocol) // idle stream
		}
		return nil // a closed stream: allowed briefly
	}
	w, ok := st.sendWindowLocked()
	if !ok {
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	if int64(w)+inc > maxWindow {
		return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeFlowControl}
	}
	st.sendDelta += int32(inc)
	c.cond.Broadcast()
	return nil
}

func (c *conn) processReset(f *http2.RSTStreamFrame) error {
	c.mu.Lock()
	if f.StreamID > c.maxStreamID {
		c.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeProtocol) // idle stream
	}
	var inc uint32
	if st := c.streams[f.StreamID]; st != nil {
		delete(c.streams, f.StreamID)
		inc = st.abortLocked(errClientReset)
		c.cond.Broadcast()
	}
	c.mu.Unlock()
	c.noteClientReset(f.ErrCode)
	c.writeWindowUpdates(inc, 0, 0)
	return nil
}

// resetLateLocked schedules RST_STREAM NO_ERROR for a stream whose
// response is complete while its client is still sending. The stream
// stays known for lateResetGrace (armLateResets): a frame the client sent
// before it saw the response still meets the stream, so a flow-control
// error on it is answered as one (RFC 9113 section 6.9.1; h2spec 6.9.1/3)
// rather than lost behind a reset the handler's end raced ahead. Called
// with mu.
func (c *conn) resetLateLocked(id uint32) {
	c.lateResets = append(c.lateResets, id)
	c.hasLateResets.Store(true)
}

// lateResetGrace is how long after a handler ends without its client's
// body its stream is reset with NO_ERROR (armLateResets), at most. A paused
// upload is told to stop within it, as net/http's server tells it once the
// response is out; and the frames a client sends right after its request
// are read first, as under net/http's server, where dispatching the
// handler takes a while: h2spec 6.9.1/3 opens a stream and then overflows
// its window, one write a frame, and the overflow, met by a stream already
// reset, would be ignored (RFC 9113 section 5.4.2).
const lateResetGrace = 20 * time.Millisecond

// armLateResets has the late resets scheduled so far sent lateResetGrace
// from now, if it is not armed already. Called by the handler that
// schedules one and by the serve goroutine as it waits for the client.
func (c *conn) armLateResets() {
	if !c.hasLateResets.Load() || c.lateArmed.Swap(true) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if c.lateTimer == nil {
		c.lateTimer = time.AfterFunc(lateResetGrace, c.lateResetsDue)
	} else {
		c.lateTimer.Reset(lateResetGrace)
	}
}

// lateResetsDue is the timer's: it sends every late reset not held,
// whether or not the reader is busy, so that a client whose frames keep
// the reader busy cannot keep ended streams known.
func (c *conn) lateResetsDue() {
	c.lateArmed.Store(false)
	c.sendLateResets(false)
}

// sendLateResets sends the resets resetLateLocked scheduled, for the
// streams nothing else has reset meanwhile. A stream whose declared
// content-length has not all arrived is held until the body ends or a
// whole watchdog tick has passed (tick: the watchdog's call), at most
// MaxConcurrentStreams of them: the rest of its body may be on the wire,
// and a length it breaks is answered as the malformed request it is
// (RFC 9113 section 8.1.1; h2spec 8.1.2.6) rather than met by a stream
// already reset.
func (c *conn) sendLateResets(tick bool) {
	if !c.hasLateResets.Load() {
		return
	}
	c.mu.Lock()
	ids := c.lateResets
	var held []uint32
	n := 0
	for _, id := range ids {
		st := c.streams[id]
		if st == nil {
			continue
		}
		if st.remoteClosed {
			// The client ended its side meanwhile: the stream is closed,
			// and RFC 9113 section 5.1 allows no RST_STREAM on it.
			delete(c.streams, id)
			continue
		}
		if st.declaredLength > st.received && !st.lateTicked && len(held) < int(c.conf.MaxConcurrentStreams) {
			st.lateTicked = tick
			held = append(held, id)
			continue
		}
		delete(c.streams, id)
		ids[n] = id
		n++
	}
	c.lateResets = held
	c.hasLateResets.Store(len(held) > 0)
	c.mu.Unlock()
	if n > 0 {
		c.writeControl(func(fr *http2.Framer) error {
			for _, id := range ids[:n] {
				_ = fr.WriteRSTStream(id, http2.ErrCodeNo)
			}
			return nil
		})
		for range n {
			c.noteServerReset(http2.ErrCodeNo)
		}
	}
}

// resetStream sends RST_STREAM for id and ends the stream, if open, with
// err for its handler.
func (c *conn) resetStream(id uint32, code http2.ErrCode, err error) {
	c.mu.Lock()
	var inc uint32
	if st := c.streams[id]; st != nil {
		delete(c.streams, id)
		inc = st.abortLocked(err)
		c.cond.Broadcast()
	}
	c.mu.Unlock()
	c.writeControl(func(fr *http2.Framer) error { return fr.WriteRSTStream(id, code) })
	c.noteServerReset(code)
	c.writeWindowUpdates(inc, 0, 0)
}

// refundLocked returns n bytes of connection receive window: they were
// consumed or discarded. It reports the WINDOW_UPDATE increment to send,
// if any: window updates go out in batches of a quarter window.
func (c *conn) refundLocked(n int32) uint32 {
	c.recvUnacked += n
	if c.recvUnacked < c.conf.MaxReceiveBufferPerConnection/4 {
		return 0
	}
	inc := c.recvUnacked
	c.recvAvail += inc
	c.recvUnacked = 0
	return uint32(inc)
}

// writeWindowUpdates sends the increments of refundLocked and
// stream.consumeLocked.
func (c *conn) writeWindowUpdates(connInc uint32, id, streamInc uint32) {
	if connInc == 0 && streamInc == 0 {
		return
	}
	c.writeControl(func(fr *http2.Framer) error {
		if connInc > 0 {
			_ = fr.WriteWindowUpdate(0, connInc)
		}
		if streamInc > 0 {
			_ = fr.WriteWindowUpdate(id, streamInc)
		}
		return nil
	})
}

func (c *conn) processData(f *http2.DataFrame) error {
	id := f.StreamID
	flow := int32(f.Length)
	data := f.Data()
	c.mu.Lock()
	if flow > c.recvAvail {
		c.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	c.recvAvail -= flow
	// drop refuses the frame with err; its connection window goes back.
	drop := func(err error) error {
		inc := c.refundLocked(flow)
		c.mu.Unlock()
		c.writeWindowUpdates(inc, 0, 0)
		return err
	}
	st := c.streams[id]
	if st == nil || st.remoteClosed {
		if id > c.maxStreamID {
			return drop(http2.ConnectionError(http2.ErrCodeProtocol)) // idle stream
		}
		return drop(http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed})
	}
	if flow > st.recvAvail {
		return drop(http2.StreamError{StreamID: id, Code: http2.ErrCodeFlowControl})
	}
	st.recvAvail -= flow
	st.received += int64(len(data))
	// A stream whose handler is done (reset is set under c.mu before its
	// record is finished) may stay here until a late reset: its record is
	// the handler's goroutine's by then.
	if st.observed && !st.reset {
		st.rec.ReadBody(data)
	}
	if st.declaredLength >= 0 && (st.received > st.declaredLength || f.StreamEnded() && st.received != st.declaredLength) {
		return drop(http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol})
	}
	var connInc, streamInc uint32
	if st.bodyClosed || st.reset {
		connInc = c.refundLocked(flow) // nobody reads it
	} else {
		if st.bodyOff > 0 { // keep only the unread part
			st.body = st.body[:copy(st.body, st.body[st.bodyOff:])]
			st.bodyOff = 0
		}
		st.body = append(st.body, data...)
		if pad := flow - int32(len(data)); pad > 0 {
			connInc = c.refundLocked(pad)
			streamInc = st.consumeLocked(pad)
		}
	}
	if f.StreamEnded() {
		st.remoteClosed = true
		st.bodyErr = io.EOF
	}
	if st.bodyWaiting {
		c.cond.Broadcast()
	}
	c.mu.Unlock()
	c.writeWindowUpdates(connInc, id, streamInc)
	return nil
}

// processHeaders opens a stream, or takes a request's trailers.
func (c *conn) processHeaders(f *headerBlock) error {
	id := f.id
	if id%2 == 0 {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	c.mu.Lock()
	st := c.streams[id]
	if st == nil && id <= c.maxStreamID {
		c.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeStreamClosed)
	}
	if f.invalid != nil || f.hasPrio && f.prioDep == id {
		// Malformed: the stream is over (before it began, if new).
		c.maxStreamID = max(c.maxStreamID, id)
		c.mu.Unlock()
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
	}
	if st != nil {
		defer c.mu.Unlock()
		return c.processTrailersLocked(st, f)
	}
	c.maxStreamID = id
	if c.goingAway || c.closed {
		// After GOAWAY, new streams are refused; the client retries them
		// on another connection.
		c.mu.Unlock()
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeRefusedStream}
	}
	if limit := int(c.conf.MaxConcurrentStreams); c.running >= limit || c.running+int(c.finishing.Load()) >= 2*limit {
		c.refusedDebt++
		calm := c.refusedDebt > maxRefusedDebt
		c.mu.Unlock()
		if calm {
			return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
		}
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeRefusedStream}
	}
	// The stream is accepted: it counts as running from here, so that a
	// GOAWAY sent while its request is built (the drain's timer, the idle
	// close) names it and the connection stays open until it is answered.
	c.running++
	c.mu.Unlock()

	if testHookAccepted != nil {
		testHookAccepted()
	}
	if f.truncated {
		c.respondStatus(id, http.StatusRequestHeaderFieldsTooLarge)
		c.unaccept()
		return nil
	}
	req, st, err := c.newRequest(f)
	if err != nil {
		c.unaccept()
		return err
	}
	c.mu.Lock()
	if c.closed {
		c.running--
		c.mu.Unlock()
		return nil
	}
	c.streams[id] = st
	c.started.Add(1)
	if c.refusedDebt > 0 {
		c.refusedDebt--
	}
	c.mu.Unlock()
	c.beginRecord(st, req)
	c.srv.workers.start(st)
	return nil
}

// testHookAccepted, when set, runs between a stream's acceptance and its
// request's start (tests widen that window with it).
var testHookAccepted func()

// unaccept ends the count of an accepted stream that reached no handler
// (processHeaders), closing the connection if a GOAWAY waits for it.
func (c *conn) unaccept() {
	c.mu.Lock()
	c.running--
	closeNow := c.running == 0 && c.goingAway && !c.failed && !c.closed
	c.mu.Unlock()
	if closeNow {
		c.closeGracefully()
	}
}

// processTrailersLocked takes the trailing HEADERS of a request body.
func (c *conn) processTrailersLocked(st *stream, f *headerBlock) error {
	if st.remoteClosed {
		return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeStreamClosed}
	}
	if !f.endStream || f.nPseudo > 0 || f.invalid != nil {
		return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol}
	}
	if st.declaredLength >= 0 && st.received != st.declaredLength {
		return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol}
	}
	if t := st.trailer; t != nil && len(f.regular()) > 0 {
		declared := declaredTrailers(t.names)
		for _, hf := range f.regular() {
			key := canonicalHeader(hf.Name)
			if _, ok := declared[key]; ok {
				if t.got == nil {
					t.got = http.Header{}
				}
				t.got[key] = append(t.got[key], hf.Value)
			}
		}
	}
	st.remoteClosed = true
	st.bodyErr = io.EOF
	if st.bodyWaiting {
		c.cond.Broadcast()
	}
	return nil
}

// respondStatus answers a stream that reaches no handler with an empty
// response of the given status.
func (c *conn) respondStatus(id uint32, status int) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wbroken {
		return
	}
	c.enc.header(statusText(status), "", httpDate(), nil)
	c.writeHeaderBlockLocked(id, true)
	c.flushLocked()
}

// writeContinue sends st's client the 100 Continue it asked for, unless
// the response's HEADERS went first or the stream is gone.
func (c *conn) writeContinue(st *stream) { c.writeInformational(st, http.StatusContinue, nil) }

// writeInformational sends st's client an informational (1xx) response
// with the fields fs, unless the final response's HEADERS went first or the
// stream is gone.
func (c *conn) writeInformational(st *stream, code int, fs []memoField) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.waitRoomLocked(st) // a handler that sends hints to a peer that does not read waits, as for its body
	c.mu.Lock()
	gone := st.reset || c.closed
	c.mu.Unlock()
	if gone || st.rw.sentHeader || c.wbroken || c.closing != open {
		return
	}
	c.enc.header(statusText(code), "", "", fs)
	c.writeHeaderBlockLocked(st.id, false)
	c.flushLocked()
}

// writeHeaderBlockLocked writes the encoded block as HEADERS (and CONTINUATION) frames.
func (c *conn) writeHeaderBlockLocked(id uint32, endStream bool) {
	block := c.enc.buf.Bytes()
	c.mu.Lock()
	max := int(c.peerFrameSize)
	c.mu.Unlock()
	first := true
	for first || len(block) > 0 {
		frag := block
		if len(frag) > max {
			frag = frag[:max]
		}
		block = block[len(frag):]
		if first {
			_ = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: frag, EndStream: endStream, EndHeaders: len(block) == 0})
			first = false
		} else {
			_ = c.fr.WriteContinuation(id, len(block) == 0, frag)
		}
	}
}

// runHandler serves one request; it runs on a worker (workerPool).
func (c *conn) runHandler(st *stream) {
	w, req := &st.rw, &st.req
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				logf(c.hs, "h2: panic serving %s %s: %v", c.remote, req.URL.Path, p)
			}
			w.closeStream()
			return
		}
		w.finish()
	}()
	c.handler.ServeHTTP(w, req)
}
