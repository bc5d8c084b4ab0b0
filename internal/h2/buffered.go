package h2

import (
	"bufio"
	"net"
	"time"

	"github.com/switchyard/switchyard/internal/coalesce"
)

// BufferedListener wraps ln so that every accepted connection reads through
// a buffer and coalesces its writes: a write is handed to the connection's
// writer goroutine and returns at once, and whatever is written while that
// goroutine is inside a system call goes out in its next one. It is the
// transport's adapter for net/http's own HTTP/2 server (Config.StdHTTP2),
// which reads every frame in two system calls and flushes after nearly
// every frame; under load these flushes become one system call per batch
// instead of one per frame, with no timer and no added latency when the
// connection is idle. Wrap the TCP listener, beneath any TLS listener.
// internal/h2's own connections buffer and coalesce by themselves (wire.go)
// and need no wrapper.
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
	r *bufio.Reader
	w *coalesce.Writer
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
