package h2

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Stopping to accept before the shutdown.
//
// http.Server.Shutdown closes its listeners and, from then on, drops
// every HTTP/1.x request it reads: a connection accepted a moment before,
// whose request is on its way (a proxy opens one per request once the
// replica says Connection: close), is closed without an answer, and its
// client cannot tell whether the request was processed (nginx answers a
// POST with 502). StopAccepting closes the listeners first and lets the
// connections already accepted deliver their requests, which are served
// as usual (with Connection: close during a drain); the shutdown after it
// finds them answered. Closing the listening socket would also reset the
// connections the kernel has made that Accept has not yet returned: their
// clients may have sent a request too (nginx's POST, which it does not
// retry: 502). A proxy that opens a connection per request to a draining
// replica has several there at any moment. Where the queue can be read
// (Linux), StopAccepting closes the socket only once Accept has taken all
// it held: what is left is a connection made in the instant between.

// stoppableListener is a listener StopAccepting can close before the
// http.Server does. Once stopped, Accept waits for the server's own Close
// before it returns its error, so that Serve ends as a shutdown's does
// (http.ErrServerClosed) rather than with the closed listener's error.
type stoppableListener struct {
	net.Listener
	// accepting counts the Accepts under way, calls all there were: the
	// accept queue empties only while Accept is called (not at
	// MaxConnections, nor while Serve backs off an error).
	accepting atomic.Int64
	calls     atomic.Uint64
	stopped   chan struct{}
	closed    chan struct{}
	stopOnce  sync.Once
	closeOnce sync.Once
}

// stopIdlePolls is how many polls of the accept queue (one a
// millisecond) stop waits for an Accept before it closes the socket on
// what the queue holds.
const stopIdlePolls = 10

func newStoppableListener(ln net.Listener) *stoppableListener {
	return &stoppableListener{Listener: ln, stopped: make(chan struct{}), closed: make(chan struct{})}
}

func (l *stoppableListener) Accept() (net.Conn, error) {
	l.calls.Add(1)
	l.accepting.Add(1)
	c, err := l.Listener.Accept()
	l.accepting.Add(-1)
	if err != nil {
		select {
		case <-l.stopped:
			<-l.closed
		default:
		}
	}
	return c, err
}

// stop closes the listening socket: new connections are refused. Where
// its accept queue can be read, the connections in it are taken first
// (until ctx ends, or while Accept is taking them), so that closing it
// resets none.
func (l *stoppableListener) stop(ctx context.Context) {
	if queued, ok := acceptQueue(l.Listener); ok {
		calls, idle := l.calls.Load(), 0
		for queued() > 0 && ctx.Err() == nil && idle < stopIdlePolls {
			select {
			case <-ctx.Done():
			case <-time.After(time.Millisecond):
			}
			// Nobody taking from the queue for a while (a busy CPU may
			// hold the accept loop between two Accepts a moment): no
			// use waiting.
			idle++
			if l.accepting.Load() > 0 || l.calls.Load() != calls {
				calls, idle = l.calls.Load(), 0
			}
		}
	}
	l.stopOnce.Do(func() { close(l.stopped) })
	_ = l.Listener.Close()
}

func (l *stoppableListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	l.stopOnce.Do(func() { close(l.stopped) })
	_ = l.Listener.Close()
	return nil
}

// freshConns follows the connections net/http has accepted that have not
// yet sent anything (http.StateNew).
type freshConns struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// install chains f into hs.ConnState.
func (f *freshConns) install(hs *http.Server) {
	f.conns = map[net.Conn]struct{}{}
	OnConnState(hs, f.connState)
}

func (f *freshConns) connState(nc net.Conn, state http.ConnState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if state == http.StateNew {
		f.conns[nc] = struct{}{}
	} else {
		delete(f.conns, nc)
	}
}

func (f *freshConns) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.conns)
}

// StopAccepting closes the listeners (Listener) so that new connections
// are refused, once the connections in their accept queues are taken
// (stop), then waits until every connection already accepted has sent its
// first bytes, or ctx ends: a request read once the shutdown has
// begun would be dropped unanswered. Call it before http.Server.Shutdown;
// it is no part of one. The server serves on as before.
func (s *Server) StopAccepting(ctx context.Context) {
	s.mu.Lock()
	lns := s.listeners
	s.mu.Unlock()
	for _, l := range lns {
		l.stop(ctx)
	}
	for s.fresh.count() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}
