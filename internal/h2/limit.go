package h2

import (
	"errors"
	"net"
	"sync"
)

// limitListener accepts at most n connections at once; further ones wait
// in the kernel's accept queue until one closes. It is
// golang.org/x/net/netutil's LimitListener, except that its connections
// keep CloseWrite: a connection that ends after a GOAWAY shuts its write
// side and lets the peer close first (closeGracefully), which a wrapper
// without CloseWrite would turn into an immediate close.
func limitListener(ln net.Listener, n int) net.Listener {
	return &limitedListener{Listener: ln, sem: make(chan struct{}, n), done: make(chan struct{})}
}

type limitedListener struct {
	net.Listener
	sem       chan struct{}
	closeOnce sync.Once
	done      chan struct{}
}

func (l *limitedListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitedConn{Conn: c, l: l}, nil
}

func (l *limitedListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitedConn struct {
	net.Conn
	l           *limitedListener
	releaseOnce sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.releaseOnce.Do(func() { <-c.l.sem })
	return err
}

// CloseWrite shuts down the writing side, when the connection can.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// NetConn is the accepted connection.
func (c *limitedConn) NetConn() net.Conn { return c.Conn }
