package h2

import (
	"bufio"
	"net"
	"sync/atomic"
	"time"

	"github.com/switchyard/switchyard/internal/coalesce"
)

// BufferedListener wraps ln so that every accepted connection reads through
// a buffer and coalesces its writes: a write is handed to the connection's
// writer goroutine and returns at once, and whatever is written while that
// goroutine is inside a system call goes out in its next one. net/http's
// HTTP/1.1 server writes each response with a system call of its own, and
// its HTTP/2 server (Config.StdHTTP2) flushes after nearly every frame;
// under load these become one system call per batch, with no timer and no
// added latency when the connection is idle. Wrap the TCP listener,
// beneath any TLS listener. A connection handed to internal/h2, which
// buffers and coalesces by itself (wire.go), is taken over: its writes,
// and its reads once the buffer is empty, go straight to the socket from
// then on (takeOver).
func BufferedListener(ln net.Listener) net.Listener {
	return bufferedListener{ln}
}

type bufferedListener struct{ net.Listener }

func (l bufferedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	w := coalesce.NewWriter(c, connMaxPending)
	return &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, connReadBuffer), w: w}, nil
}

type bufferedConn struct {
	net.Conn
	r      *bufio.Reader // nil once taken over and emptied (Read)
	w      *coalesce.Writer
	direct atomic.Bool // taken over: writes, deadlines and close go straight to the socket
}

// Read reads through the buffer until the connection is taken over and the
// buffer holds nothing more; then the buffer is let go and reads go
// straight to the socket. internal/h2 reads through a buffer of its own
// (wire.go), and this one, kept for the connection's life, cost every
// connection it serves 16 KiB more than net/http's server holds. Only the
// connection's reader calls Read, one call at a time (as bufio requires).
func (c *bufferedConn) Read(p []byte) (int, error) {
	if c.r != nil && c.direct.Load() && c.r.Buffered() == 0 {
		c.r = nil
	}
	if c.r == nil {
		return c.Conn.Read(p)
	}
	return c.r.Read(p)
}

func (c *bufferedConn) Write(p []byte) (int, error) {
	if c.direct.Load() {
		return c.Conn.Write(p)
	}
	return c.w.Write(p)
}

// takeOver ends the coalescing: what is pending is written, the writer
// goroutine ends, and later writes, write deadlines and the close go
// straight to the socket. Reads keep the buffer while it holds bytes
// already read (net/http may have read past what it needed), then go
// straight to the socket too (Read). internal/h2 calls it when net/http
// hands it the connection, before it writes or reads anything.
func (c *bufferedConn) takeOver() {
	if c.direct.Load() {
		return
	}
	_ = c.w.Flush()
	c.w.Close(connCloseDrain)
	c.direct.Store(true)
}

// NetConn is the accepted connection.
func (c *bufferedConn) NetConn() net.Conn { return c.Conn }

// takeOverBuffered takes over the buffered connection beneath nc, if any
// (nc itself, or beneath its TLS).
func takeOverBuffered(nc net.Conn) {
	for range 3 {
		if bc, ok := nc.(*bufferedConn); ok {
			bc.takeOver()
			return
		}
		tc, ok := nc.(interface{ NetConn() net.Conn })
		if !ok {
			return
		}
		nc = tc.NetConn()
	}
}

// SetWriteDeadline applies t to the writes made after it: bytes written
// before it are already the connection's to deliver, as they would be in
// the kernel's buffer without this one, and a later deadline must not drop
// them. (Closing a TLS connection writes the close alert and then sets the
// deadline to now; applied at once, that deadline failed the write of the
// response still pending here.)
func (c *bufferedConn) SetWriteDeadline(t time.Time) error {
	if c.direct.Load() {
		return c.Conn.SetWriteDeadline(t)
	}
	c.w.AfterPending(func() { _ = c.Conn.SetWriteDeadline(t) })
	return nil
}

// SetDeadline sets the read deadline now and the write deadline in order
// with the writes (SetWriteDeadline).
func (c *bufferedConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// Close sends what is pending (waiting at most connCloseDrain) and closes
// the connection.
func (c *bufferedConn) Close() error {
	if !c.direct.Load() {
		c.w.Close(connCloseDrain)
	}
	return c.Conn.Close()
}

// CloseWrite sends what is pending and shuts down the writing side, as
// net/http does before closing an HTTP/1 connection.
func (c *bufferedConn) CloseWrite() error {
	if !c.direct.Load() {
		if err := c.w.Flush(); err != nil {
			return err
		}
	}
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
