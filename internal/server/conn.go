package server

import (
	"bufio"
	"net"
	"time"
)

// Sizes of a buffered connection.
const (
	// connReadBuffer lets one read system call bring in many small HTTP/2
	// frames; unbuffered, the frame reader makes two reads per frame.
	connReadBuffer = 16 << 10
	// connMaxPending bounds the bytes a connection holds for the socket;
	// writers wait beyond it, so a slow peer pushes back as it would
	// without the buffer.
	connMaxPending = 256 << 10
	// connWriteThrough: the handler that ends this many responses since
	// the last socket write writes the batch itself (CoalescingWriter.
	// ResponseEnded).
	connWriteThrough = 16
	// connCloseDrain is how long Close waits for pending bytes to reach
	// the socket before closing it anyway.
	connCloseDrain = time.Second
)

// BufferedListener wraps ln so that every accepted connection reads through
// a buffer and coalesces its writes: a write is handed to the connection's
// writer goroutine and returns at once, and whatever is written while that
// goroutine is inside a system call goes out in its next one. The HTTP/2
// server flushes after nearly every frame; under load these flushes become
// one system call per batch instead of one per frame, with no timer and no
// added latency when the connection is idle. Wrap the TCP listener, beneath
// any TLS listener.
func BufferedListener(ln net.Listener) net.Listener {
	return bufferedListener{ln}
}

type bufferedListener struct{ net.Listener }

func (l bufferedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	w := NewCoalescingWriter(c, connMaxPending)
	w.WriteThrough(connWriteThrough)
	return &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, connReadBuffer), w: w}, nil
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
	w *CoalescingWriter
}

func (c *bufferedConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *bufferedConn) Write(p []byte) (int, error) { return c.w.Write(p) }

// SetWriteDeadline applies t to the writes made after it: bytes written
// before it are already the connection's to deliver, as they would be in
// the kernel's buffer without this one, and a later deadline must not drop
// them. (Closing a TLS connection writes the close alert and then sets the
// deadline to now; applied at once, that deadline failed the write of the
// response still pending here.)
func (c *bufferedConn) SetWriteDeadline(t time.Time) error {
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

// ResponseEnded is how internal/h2 marks the end of a response.
func (c *bufferedConn) ResponseEnded() { c.w.ResponseEnded() }

// Close sends what is pending (waiting at most connCloseDrain) and closes
// the connection.
func (c *bufferedConn) Close() error {
	c.w.Close(connCloseDrain)
	return c.Conn.Close()
}

// CloseWrite sends what is pending and shuts down the writing side, as
// net/http does before closing an HTTP/1 connection.
func (c *bufferedConn) CloseWrite() error {
	if err := c.w.Flush(); err != nil {
		return err
	}
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
