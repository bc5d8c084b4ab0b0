package h2

import (
	"bufio"
	"net"
	"runtime"
	"time"
)

// The wire: everything an HTTP/2 connection does with its socket — the
// read buffer, the frames waiting to be written, the goroutine that writes
// them, write deadlines and close — lives here, with one lifecycle per
// connection. The connection owns the socket it is handed (TCP, or TLS
// over TCP): it takes over the listener's buffered connection beneath
// (takeOverBuffered), whose writes then go straight to the socket, and
// whose reads do too once its buffer is empty: a connection's bytes are
// buffered here, once.
//
// Writes: frames are encoded, under wmu, straight into the connection's
// pending buffer (out), and one writer goroutine hands what has
// accumulated to the socket in one write while it was inside the previous
// one. Many small frames (the flushes of many handlers) then cost one
// system call per batch, with no timer and no added latency when the
// connection is idle. The handler that ends the writeThrough-th response
// since the last socket write, or ends one while writeThroughBytes are
// pending or after the first waited writeThroughWait, writes the batch
// itself.

// Sizes and bounds of a connection's wire.
const (
	// connReadBuffer lets one read system call bring in many small
	// frames; unbuffered, the Framer makes two reads per frame.
	connReadBuffer = 16 << 10
	// connFirstReadBuffer reads a connection until its client's SETTINGS
	// (and what came with them) are read: a connection that sends the
	// preface and nothing more holds this much, not connReadBuffer
	// (connections that never send SETTINGS were the one attack class
	// where internal/h2 ended above net/http's RSS, BENCHMARKS.md).
	connFirstReadBuffer = 512
	// connMaxPending bounds the frames a connection holds for the socket:
	// handlers wait beyond it, so a slow peer pushes back.
	connMaxPending = 256 << 10
	// connKeepBuffer is the most of a written batch's buffer a connection
	// keeps for the next batch. A peer that reads slowly lets the pending
	// frames grow towards connMaxPending, and the two buffers that take
	// turns (out and spare) grew with them, to about half a MiB a
	// connection, for the connection's life: a connection that once backed
	// up and then idled kept it all. A batch of a peer that keeps up stays
	// under it (coalesceBatch, writeThroughBytes), so the buffers of a
	// connection at work are reused as before.
	connKeepBuffer = connMaxPending / 4
	// coalesceBatch: below it, the writer goroutine yields once before
	// writing, so the handlers that are ready to run add to the batch.
	coalesceBatch = 32 << 10
	// writeThrough: the handler that ends this many responses since the
	// last socket write writes the batch itself. The writer goroutine
	// yields before a small batch and, with a core full of handlers, may
	// not run again until they are all done, holding finished responses
	// back for a whole round of them.
	writeThrough = 16
	// writeThroughBytes: a handler that ends a response while this much is
	// pending writes the batch itself, however few responses ended. A few
	// long responses (streams of messages) are then on their way while
	// the next ones are made: with 16 RouteChat or ListFeatures calls in
	// flight, writing only after 16 ended responses sent them as one wave
	// the peer answered as one, and the server's core idled 13-17% of the
	// time between waves (4-6% with this; BENCHMARKS.md, "Ninth pass").
	// One TLS record's worth.
	writeThroughBytes = 16 << 10
	// writeThroughWait: a handler that ends a response once the first of
	// the batch has waited this long writes the batch itself. Sixteen
	// RecordRoute calls (some 50 µs of work each) otherwise went out as
	// one wave, answered as one, and the core idled 13-17% of the time
	// (4-5% with this); sixteen GetTeam calls take about half as long.
	// The clock is read at the first end of a batch and at every
	// writeThroughLook-th: a read costs about 60 ns, and a GetTeam call 7 µs.
	writeThroughWait = 200 * time.Microsecond
	writeThroughLook = 4
	// connCloseDrain bounds how long a closing connection waits for its
	// pending frames to reach the socket.
	connCloseDrain = time.Second
	// connMaxUnsent is how much the kernel may hold for a peer that does
	// not read (limitUnsent).
	connMaxUnsent = 256 << 10
	// controlStall: once this many control frames wait behind a socket
	// write that does not complete, the goroutine reading the peer stops
	// reading (back-pressure, as for data), for at most
	// controlStallTimeout; a stall that lasts longer closes the connection
	// (net/http's server drops a PING flood from a non-reading peer after
	// about as long).
	controlStall        = 1024
	controlStallTimeout = 2 * time.Second
	// maxQueuedControlFrames bounds the control frames (PING and SETTINGS
	// acknowledgements, RST_STREAM, WINDOW_UPDATE, GOAWAY) the peer's
	// frames make the server queue while no socket write completes: a peer
	// that floods PING or SETTINGS and does not read the answers would
	// otherwise hold its connection, and the answers' memory, until the
	// write timeout. The connection is closed beyond it, as net/http's
	// server does (its maxQueuedControlFrames, also 10 000).
	maxQueuedControlFrames = 10000
)

// closeMode is how a connection's socket is to be closed.
type closeMode int

const (
	open closeMode = iota
	// closeGraceful: pending frames are written, the write side shut
	// (FIN, or TLS close_notify), and the reader keeps reading and
	// discarding for up to goAwayLinger, so that frames the peer had in
	// flight do not make the close a reset that loses the GOAWAY.
	closeGraceful
	// closeNow: pending frames get connCloseDrain, then the socket closes.
	closeNow
)

// initWire sets up the connection's buffers and starts its writer.
func (c *conn) initWire() {
	limitUnsent(c.nc, connMaxUnsent)
	c.br = bufio.NewReaderSize(c.nc, connFirstReadBuffer)
	c.room.L = &c.wmu
	c.dataAt = -1
	c.wake = make(chan struct{}, 1)
	c.writerDone = make(chan struct{})
	go c.writeLoop()
}

// connReader is the Framer's source: the connection's reader of the
// moment (c.br grows once, growReader).
type connReader struct{ c *conn }

func (r connReader) Read(p []byte) (int, error) { return r.c.br.Read(p) }

// growReader gives the connection its full read buffer, once the client's
// SETTINGS are read and the first buffer holds nothing more. The serve
// goroutine only.
func (c *conn) growReader() {
	if c.br.Size() < connReadBuffer && c.br.Buffered() == 0 {
		c.br = bufio.NewReaderSize(c.nc, connReadBuffer)
	}
}

// outWriter is the Framer's destination: frames go to the pending buffer.
// Called with wmu.
type outWriter struct{ c *conn }

func (w outWriter) Write(p []byte) (int, error) {
	c := w.c
	c.out = append(c.out, p...)
	c.dataAt = -1 // the last frame is not an extendable DATA frame
	return len(p), nil
}

// flushLocked hands the pending frames to the writer goroutine. Called
// with wmu; it does not wait for the socket.
func (c *conn) flushLocked() {
	if c.wbroken || len(c.out) == 0 || c.writerAwake {
		return
	}
	c.writerAwake = true
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// waitRoomLocked holds st's handler back while the peer is connMaxPending
// behind. Called with wmu, which it releases while it waits.
func (c *conn) waitRoomLocked(st *stream) {
	for len(c.out) >= connMaxPending && !c.wbroken && c.closing == open {
		if st.releaseUnlocked(&c.wmu) {
			continue // waiting for the client: the handler counts no more
		}
		c.room.Wait()
	}
}

// controlQueuedLocked counts a control frame the server queued; it reports
// false when the peer has left too many unread (maxQueuedControlFrames).
// Called with wmu.
func (c *conn) controlQueuedLocked() bool {
	c.control++
	return c.control <= maxQueuedControlFrames
}

// responseEndedLocked notes that a response's last frame is pending, and
// writes the batch on the caller's goroutine when writeThrough responses
// have ended since the last socket write, writeThroughBytes are pending,
// or the first of them ended writeThroughWait ago (see each). Called with
// wmu.
func (c *conn) responseEndedLocked() {
	c.ended++
	if c.ended == 1 {
		c.firstEnded = time.Now()
	}
	due := c.ended >= writeThrough || len(c.out) >= writeThroughBytes ||
		c.ended%writeThroughLook == 0 && time.Since(c.firstEnded) >= writeThroughWait
	if due && !c.writing && len(c.out) > 0 && !c.wbroken && c.closing == open {
		c.writeOutLocked()
	}
}

// writeOutLocked writes the pending frames to the socket, with wmu
// released during the write: handlers go on adding frames for the next
// one. Called with wmu held and no write in progress.
func (c *conn) writeOutLocked() {
	c.out, c.spare = c.spare[:0], c.out
	c.dataAt = -1
	c.writing = true
	c.ended = 0
	c.wmu.Unlock()
	c.flushes.Add(1)
	_, err := c.nc.Write(c.spare)
	c.flushes.Add(1)
	c.wmu.Lock()
	c.writing = false
	c.control = 0
	if cap(c.spare) > connKeepBuffer {
		c.spare = nil // a backlog grew it; let it go (connKeepBuffer)
	}
	if err != nil {
		// Nothing more can reach the peer: the writer closes the socket.
		c.wbroken = true
		c.out = nil
		if c.closing == open {
			c.closing = closeNow
		}
		c.writerAwake = true
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	c.room.Broadcast()
}

// writeLoop is the connection's writer goroutine. It ends the socket's
// life: once a close is asked for (closeSocket, closeGracefully) or a
// write fails, it writes what is pending and closes.
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	c.wmu.Lock()
	for {
		for len(c.out) == 0 && c.closing == open && !c.wbroken {
			c.writerAwake = false
			c.wmu.Unlock()
			<-c.wake
			c.wmu.Lock()
		}
		if c.wbroken || len(c.out) == 0 && !c.writing {
			break
		}
		if len(c.out) < coalesceBatch && c.closing == open {
			// A small batch: let the handlers that are ready to run
			// (finishing their responses) add to it first. With nothing
			// else to run, this returns at once.
			c.wmu.Unlock()
			runtime.Gosched()
			c.wmu.Lock()
		}
		for c.writing { // a handler took the batch (responseEndedLocked)
			c.room.Wait()
		}
		if len(c.out) > 0 && !c.wbroken {
			c.writeOutLocked()
		}
	}
	mode := c.closing
	if c.wbroken {
		mode = closeNow
	}
	c.wbroken = true // the writer is gone: nothing more is written
	c.out = nil
	c.room.Broadcast()
	c.wmu.Unlock()

	if mode == closeGraceful {
		if cw, ok := c.nc.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
			// The reader (serve) discards what the peer still sends until
			// it closes its side, or goAwayLinger passes, and then closes.
			_ = c.nc.SetReadDeadline(time.Now().Add(goAwayLinger))
			return
		}
	}
	_ = c.nc.Close()
}

// closeSocket ends the connection: pending frames get connCloseDrain to
// reach the socket, then it closes; reads stop at once and serve returns.
// It does not wait.
func (c *conn) closeSocket() { c.requestClose(closeNow) }

// abandon ends the connection of a peer that does not read what it asks
// for: nothing pending is waited for, and nothing more is read.
func (c *conn) abandon() {
	c.requestClose(closeNow)
	_ = c.nc.SetWriteDeadline(time.Now())
}

// closeGracefully ends a connection whose GOAWAY is out: pending frames
// are written, the write side is shut, and the peer gets up to
// goAwayLinger to close its side while what it still sends is read and
// dropped (RFC 9113 section 6.8: frames already in flight). Closing at
// once with unread bytes in the socket would make the close a reset,
// which can destroy the GOAWAY and the last responses before the peer
// reads them.
func (c *conn) closeGracefully() { c.requestClose(closeGraceful) }

func (c *conn) requestClose(mode closeMode) {
	c.wmu.Lock()
	if mode <= c.closing {
		c.wmu.Unlock()
		return
	}
	c.closing = mode
	c.writerAwake = true
	select {
	case c.wake <- struct{}{}:
	default:
	}
	c.room.Broadcast()
	c.wmu.Unlock()
	// A write stuck on a peer that does not read fails within the drain
	// time; the writer then closes the socket.
	_ = c.nc.SetWriteDeadline(time.Now().Add(connCloseDrain))
	if mode == closeNow {
		// What the peer still sends is not read: serve returns and the
		// streams end now (a graceful close reads on, see closeGraceful).
		_ = c.nc.SetReadDeadline(time.Now())
	}
}

// tcpConnOf is the TCP connection beneath nc (TLS, the connection limit),
// or nil.
func tcpConnOf(nc net.Conn) *net.TCPConn {
	for range 4 {
		switch c := nc.(type) {
		case *net.TCPConn:
			return c
		case interface{ NetConn() net.Conn }:
			nc = c.NetConn()
		default:
			return nil
		}
	}
	return nil
}
