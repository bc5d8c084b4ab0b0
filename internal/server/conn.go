package server

import (
	"bufio"
	"net"
	"sync"
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
	return newBufferedConn(c), nil
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader

	mu      sync.Mutex
	cond    sync.Cond // signalled when pending grows, drains, or the conn closes
	pending []byte    // bytes written, not yet handed to the socket
	spare   []byte    // the writer's buffer, swapped with pending
	writing bool      // the writer is inside a system call
	err     error     // the first write error; later writes return it
	closed  bool
	drained chan struct{} // closed when the writer goroutine ends
}

func newBufferedConn(c net.Conn) *bufferedConn {
	bc := &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, connReadBuffer), drained: make(chan struct{})}
	bc.cond.L = &bc.mu
	go bc.writeLoop()
	return bc
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *bufferedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.err == nil && !c.closed && len(c.pending) > 0 && len(c.pending)+len(p) > connMaxPending {
		c.cond.Wait()
	}
	if c.err != nil {
		return 0, c.err
	}
	if c.closed {
		return 0, net.ErrClosed
	}
	if len(c.pending) == 0 {
		c.cond.Broadcast()
	}
	c.pending = append(c.pending, p...)
	return len(p), nil
}

// writeLoop hands pending bytes to the socket, a batch per system call,
// until the connection is closed and drained or a write fails.
func (c *bufferedConn) writeLoop() {
	defer close(c.drained)
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		for len(c.pending) == 0 && !c.closed {
			c.cond.Wait()
		}
		if len(c.pending) == 0 {
			return
		}
		c.pending, c.spare = c.spare[:0], c.pending
		c.writing = true
		c.mu.Unlock()
		_, err := c.Conn.Write(c.spare)
		c.mu.Lock()
		c.writing = false
		if cap(c.spare) > 4*connMaxPending {
			c.spare = nil // a burst grew it; let it go
		}
		c.cond.Broadcast()
		if err != nil {
			c.err = err
			c.pending = nil
			return
		}
	}
}

// Close sends what is pending (waiting at most connCloseDrain) and closes
// the connection.
func (c *bufferedConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.cond.Broadcast()
	c.mu.Unlock()
	t := time.NewTimer(connCloseDrain)
	defer t.Stop()
	select {
	case <-c.drained:
	case <-t.C:
	}
	return c.Conn.Close()
}

// CloseWrite sends what is pending and shuts down the writing side, as
// net/http does before closing an HTTP/1 connection.
func (c *bufferedConn) CloseWrite() error {
	c.mu.Lock()
	for c.err == nil && (len(c.pending) > 0 || c.writing) {
		c.cond.Wait()
	}
	err := c.err
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
