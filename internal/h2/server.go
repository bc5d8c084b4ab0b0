// Package h2 is Switchyard's HTTP/2 server: it serves an http.Handler over
// HTTP/2 connections that net/http has accepted (TLS with ALPN "h2", and
// prior-knowledge cleartext), so HTTP/1.1, TLS handshakes and the
// http.Server's lifecycle stay net/http's.
//
// It exists for speed. net/http's HTTP/2 server runs every connection as a
// serve loop that the request handlers talk to over channels: each response
// HEADERS frame, flush and body read is a round trip between goroutines, and
// each HEADERS write gets a goroutine of its own. Here the goroutine reading
// the connection processes frames itself, and handlers write their frames
// directly, under a write lock, into the connection's buffer: a unary call
// costs one handler goroutine and no handoffs. The protocol is the same
// (RFC 9113 with golang.org/x/net/http2's Framer and HPACK), as are the
// limits and timeouts; see Config.
package h2

import (
	"context"
	"crypto/tls"
	"errors"
	"log"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard/switchyard/internal/outcome"
)

// Config holds a Server's limits. Zero fields take the defaults of
// net/http's HTTP/2 server.
type Config struct {
	// MaxConcurrentStreams bounds the streams of a connection whose
	// handlers are running (advertised as SETTINGS_MAX_CONCURRENT_STREAMS).
	// A stream reset by the client counts until its handler returns, so a
	// rapid-reset flood cannot run more handlers than this. A stream whose
	// handler has returned is closed as far as the client can tell, but
	// its worker may still be handing its record to the Observer (writing
	// the log line): up to as many such streams again are allowed, so a
	// slow log sink does not refuse streams the client sees closed, and a
	// connection still holds at most twice this many workers.
	MaxConcurrentStreams uint32
	// MaxReadFrameSize is the largest frame the server reads.
	MaxReadFrameSize uint32
	// MaxHeaderListSize bounds a request's decoded header list.
	MaxHeaderListSize uint32
	// MaxReceiveBufferPerStream and MaxReceiveBufferPerConnection are the
	// flow-control windows granted to the client: the request body bytes
	// the server holds unread per stream and per connection.
	MaxReceiveBufferPerStream     int32
	MaxReceiveBufferPerConnection int32
	// ReadHeaderTimeout bounds reading the client preface of a TLS
	// connection.
	ReadHeaderTimeout time.Duration
	// SettingsTimeout bounds the wait for the client's first SETTINGS
	// frame once the connection is HTTP/2 (the preface read), on h2c and
	// TLS alike; the connection is closed when it passes.
	SettingsTimeout time.Duration
	// IdleTimeout closes a connection (with GOAWAY) that has had no open
	// stream for this long.
	IdleTimeout time.Duration
	// SendPingTimeout is how long a connection may be silent before the
	// server pings it; PingTimeout how long the ping may go unanswered
	// before the connection is closed.
	SendPingTimeout time.Duration
	PingTimeout     time.Duration
	// WriteTimeout closes a connection whose socket write has made no
	// progress for this long (a peer that stopped reading). On Linux,
	// progress is any byte the peer acknowledges, as with net/http's
	// WriteByteTimeout; elsewhere, a socket write that returns.
	WriteTimeout time.Duration
	// SendWindowTimeout resets (CANCEL) a stream whose client opens no
	// flow-control window for its response this long, so a client that
	// never reads cannot hold a handler for as long as it keeps the
	// connection. Zero waits as long as the connection lasts.
	SendWindowTimeout time.Duration
	// Observer receives every stream's outcome record and the
	// connection's events (nil: none).
	Observer outcome.Observer

	// MaxConnectionAge, when set, ends each connection gracefully once it
	// is this old, give or take 10% (chosen per connection, so that
	// connections made together do not end together): GOAWAY, as in a
	// graceful shutdown, so new calls go to a new connection — over which a
	// load balancer may send them to another server — while calls in
	// flight go on. MaxConnectionAgeGrace, when set, is how long they get:
	// then the connection is closed and whatever still runs on it is
	// cancelled. Both as grpc-go's keepalive.ServerParameters; zero is
	// off (and, for the grace, unbounded). The connections net/http serves
	// (HTTP/1.1; all of them with StdHTTP2) end instead with their next
	// response past the age, which carries Connection: close (age.go).
	MaxConnectionAge      time.Duration
	MaxConnectionAgeGrace time.Duration

	// MaxConnections bounds the connections served at once (Listener);
	// further ones wait in the kernel's accept queue. Zero: no bound.
	MaxConnections int

	// StdHTTP2 makes Configure set up net/http's own HTTP/2 server, with
	// the same limits, instead of internal/h2; Listener then buffers every
	// connection (BufferedListener). For comparison: it is the baseline
	// internal/h2 is held against.
	StdHTTP2 bool
	// UnaryProcedures are the paths ("/pkg.Service/Method") of the unary
	// methods the http.Server serves. With StdHTTP2, their flushes wait
	// for the handler to return (stdtuning.go); with internal/h2, one
	// whose request has not all come when the server ends its calls is
	// refused (endCalls).
	UnaryProcedures []string
}

func (c *Config) applyDefaults() {
	if c.MaxConcurrentStreams == 0 {
		c.MaxConcurrentStreams = 100
	}
	if c.MaxReadFrameSize < 16<<10 || c.MaxReadFrameSize > 1<<24-1 {
		c.MaxReadFrameSize = 1 << 20
	}
	if c.MaxHeaderListSize == 0 {
		c.MaxHeaderListSize = 1 << 20
	}
	if c.MaxReceiveBufferPerStream <= 0 {
		c.MaxReceiveBufferPerStream = 1 << 20
	}
	if c.MaxReceiveBufferPerConnection < 65535 {
		c.MaxReceiveBufferPerConnection = 1 << 20
	}
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = 5 * time.Second
	}
	if c.SettingsTimeout <= 0 {
		c.SettingsTimeout = 2 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 2 * time.Minute
	}
	if c.SendPingTimeout <= 0 {
		c.SendPingTimeout = time.Minute
	}
	if c.PingTimeout <= 0 {
		c.PingTimeout = 15 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 30 * time.Second
	}
}

// Server serves the HTTP/2 connections of one http.Server.
type Server struct {
	conf Config

	mu           sync.Mutex
	conns        map[*conn]struct{}
	shuttingDown bool

	workers  workerPool
	ages     *ageTracker // MaxConnectionAge of the connections net/http serves
	draining atomic.Bool // Drain was called: HTTP/1.x responses end their connection

	listeners []*stoppableListener // Listener's, under mu (StopAccepting)
	fresh     freshConns           // accepted, nothing read yet

	unary map[string]struct{} // Config.UnaryProcedures (endCalls)
}

// Listener wraps ln, the TCP listener of the http.Server that Configure
// set up (beneath any TLS listener): at most MaxConnections connections
// are served at once, each buffered (BufferedListener) for net/http's
// HTTP/1.1 server and, with StdHTTP2, its HTTP/2 server. internal/h2 takes
// the connections it is handed over (takeOverBuffered): it buffers its own
// writes.
func (s *Server) Listener(ln net.Listener) net.Listener {
	sl := newStoppableListener(ln)
	s.mu.Lock()
	s.listeners = append(s.listeners, sl)
	s.mu.Unlock()
	ln = sl
	if s.conf.MaxConnections > 0 {
		ln = limitListener(ln, s.conf.MaxConnections)
	}
	return BufferedListener(ln)
}

// workerIdle is how long a handler goroutine waits for another stream
// before it exits.
const workerIdle = time.Second

// workersPerProc bounds the handlers the pool runs at once, per P
// (GOMAXPROCS), that it has no reason to think are waiting; rescueAfter is
// how long streams may wait with none of those handlers returning before
// the pool stops counting them (workerPool).
const (
	workersPerProc = 8
	rescueAfter    = time.Millisecond
)

// workerPool runs handlers on goroutines that outlive a request, so that
// the stack the handler chain grew is reused: a fresh goroutine per
// request copies its stack two or three times as it deepens
// (runtime.newstack was ~16% of a unary call's CPU).
//
// Streams wait in one queue, oldest first, and a worker that finishes a
// handler takes the next stream itself instead of parking, so a burst of
// requests runs back to back on the workers already running, in arrival
// order, rather than waking a goroutine for each. A worker that takes a
// stream with more waiting wakes the next before it runs the handler, so
// that a handler that blocks does not hold up the streams behind it.
//
// That chain of wake-ups is bounded. With more than one P the woken worker
// runs at once on another P and wakes the next, and a handler that yields
// (a contended lock, its response handed to the connection's writer) lets
// one more start: the chain made a worker per stream in flight, each with
// its grown stack (105-159 goroutines for 2 x 64 streams at two cores, 36
// at one; BENCHMARKS.md, "Memory with more cores"). So the pool counts the
// handlers it runs and wakes no worker beyond workersPerProc per P; a
// worker that returns takes the next stream. A handler that waits leaves
// the count (release), so that the streams behind it do not wait for it:
//   - one that waits for its client (the request body's next bytes, send
//     window, a connection whose peer reads nothing): a stream's life is
//     the client's to decide, so streaming calls each get a worker at
//     once, as before;
//   - one that says it is about to wait on the server's side (waits.Begin:
//     the team store before a write's commit, and before every statement
//     on PostgreSQL).
//
// A handler that waits without saying so (a lock, a read of its own) keeps
// counting. If streams wait and none is taken for rescueAfter, every
// counted handler is waiting: the pool stops counting them all (a new
// generation) and wakes workers again, so no stream waits long on
// handlers that do not return.
//
// Workers stay busy and keep their grown stacks. The garbage collector
// halves the stack of a goroutine parked at the top of it; with a worker
// per stream in flight, the next request grew every one of them again,
// deep in the handler chain (64 stack copies per GC cycle at ~17 us each,
// 4-6% of a unary call's CPU, all at once after each cycle). Idle workers
// wait on a channel of their own, the most recently used first; a reaper
// ends those idle for workerIdle.
type workerPool struct {
	mu      sync.Mutex
	queue   []*stream // waiting streams, from queue[head]
	head    int
	waking  bool      // a woken or new worker has yet to look at queue
	idle    []*worker // the most recently idle last
	reaping bool      // a reaper is scheduled

	running  int    // counted handlers of generation gen
	limit    int    // workersPerProc x GOMAXPROCS
	gen      uint32 // counted handlers of older generations count no more
	taken    uint64 // streams taken from the queue
	rescue   *time.Timer
	mark     uint64 // taken when rescue was set
	rescuing bool   // rescue is set: streams wait, the count stops a wake
	rescued  uint64 // times the pool stopped counting (tests)
}

type worker struct {
	wake      chan bool // true: look at the queue; false: exit
	idleSince time.Time
}

// start queues st for a worker and makes sure one is on its way, or that
// the running handlers are counted to their limit and the rescue is set.
func (p *workerPool) start(st *stream) {
	p.mu.Lock()
	if p.head > 0 && len(p.queue) == cap(p.queue) {
		n := copy(p.queue, p.queue[p.head:])
		clear(p.queue[n:])
		p.queue, p.head = p.queue[:n], 0
	}
	p.queue = append(p.queue, st)
	p.wakeOrWaitLocked()
}

// wakeOrWaitLocked is called with streams queued and p.mu held; it
// unlocks. It wakes a worker unless one is on its way or the counted
// handlers are at their limit; then a worker that returns takes the
// streams, or the rescue releases the count.
func (p *workerPool) wakeOrWaitLocked() {
	switch {
	case p.waking:
		p.mu.Unlock()
	case p.running < p.limit:
		p.wakeLocked()
	default:
		if !p.rescuing {
			p.rescuing = true
			p.mark = p.taken
			p.rescue.Reset(rescueAfter)
		}
		p.mu.Unlock()
	}
}

// wakeLocked wakes the most recently idle worker, or starts one, to take
// queued streams. Called with p.mu held and waking false; it unlocks.
func (p *workerPool) wakeLocked() {
	p.waking = true
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.wake <- true
		return
	}
	p.mu.Unlock()
	go p.run(&worker{wake: make(chan bool, 1)})
}

// workerLimit is how many handlers the pool counts before it wakes no
// more workers.
func workerLimit() int { return workersPerProc * runtime.GOMAXPROCS(0) }

// init readies the pool for its first stream.
func (p *workerPool) init() {
	p.limit = workerLimit()
	p.rescue = time.AfterFunc(time.Hour, p.rescueTick)
	p.rescue.Stop()
}

// rescueTick runs rescueAfter after a wake was held back by the count.
// If streams still wait and none was taken since, every counted handler is
// waiting on something: they count no more, and workers are woken again.
func (p *workerPool) rescueTick() {
	p.mu.Lock()
	if p.head == len(p.queue) || p.waking {
		p.rescuing = false
		p.mu.Unlock()
		return
	}
	if p.taken != p.mark {
		p.mark = p.taken
		p.rescue.Reset(rescueAfter)
		p.mu.Unlock()
		return
	}
	p.rescuing = false
	p.gen++
	p.running = 0
	p.rescued++
	p.limit = workerLimit() // GOMAXPROCS may have changed
	p.wakeLocked()
}

// release stops counting st's handler, which is about to wait for its
// client, and wakes a worker for the streams the count held back. Only
// the first wait of a handler costs the pool's lock.
func (p *workerPool) release(st *stream) {
	if !st.counted.CompareAndSwap(true, false) {
		return
	}
	p.mu.Lock()
	if st.gen == p.gen {
		p.running--
	}
	if p.head < len(p.queue) {
		p.wakeOrWaitLocked()
		return
	}
	p.mu.Unlock()
}

// releaseUnlocked is for a handler about to wait for its client, with mu
// (the connection's lock it waits under) held: if the handler still
// counts, it releases it from the count with mu unlocked and reports
// true, and the caller looks again at what it was waiting for.
func (st *stream) releaseUnlocked(mu sync.Locker) bool {
	if !st.counted.Load() {
		return false
	}
	mu.Unlock()
	st.c.srv.workers.release(st)
	mu.Lock()
	return true
}

// Waiting implements waits.Waiter: st's handler is about to wait on the
// server's side (a commit, a query across the network) and counts no more.
func (st *stream) Waiting() { st.c.srv.workers.release(st) }

// next takes the oldest queued stream, or returns nil. Called with p.mu
// held.
func (p *workerPool) next() *stream {
	if p.head == len(p.queue) {
		return nil
	}
	st := p.queue[p.head]
	p.queue[p.head] = nil
	p.head++
	if p.head == len(p.queue) {
		p.queue, p.head = p.queue[:0], 0
	}
	return st
}

// run is a worker, woken (or started) to look at the queue.
func (p *workerPool) run(w *worker) {
	p.mu.Lock()
	p.waking = false
	for {
		st := p.next()
		if st == nil {
			w.idleSince = time.Now()
			p.idle = append(p.idle, w)
			if !p.reaping {
				p.reaping = true
				time.AfterFunc(workerIdle, p.reap)
			}
			p.mu.Unlock()
			if !<-w.wake {
				return
			}
			p.mu.Lock()
			p.waking = false
			continue
		}
		p.taken++
		p.running++
		st.gen = p.gen
		st.counted.Store(true)
		if p.head < len(p.queue) {
			p.wakeOrWaitLocked() // st's handler may block: the rest need a worker
		} else {
			p.mu.Unlock()
		}
		st.c.runHandler(st)
		p.mu.Lock()
		if st.counted.Swap(false) && st.gen == p.gen {
			p.running--
		}
	}
}

// reap ends the workers idle for workerIdle; it reschedules itself while
// any are idle.
func (p *workerPool) reap() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	n := 0 // the idle list is ordered by idleSince: the oldest first
	for n < len(p.idle) && now.Sub(p.idle[n].idleSince) >= workerIdle {
		p.idle[n].wake <- false
		n++
	}
	p.idle = append(p.idle[:0], p.idle[n:]...)
	if len(p.idle) == 0 {
		p.reaping = false
		return
	}
	time.AfterFunc(workerIdle-now.Sub(p.idle[0].idleSince), p.reap)
}

// Configure makes hs serve its HTTP/2 connections, over TLS and cleartext,
// with a new Server. hs.Shutdown sends GOAWAY on every connection and waits
// for their streams to finish; hs.Close closes them. Serve hs on
// s.Listener(ln). With conf.StdHTTP2, hs's own HTTP/2 server serves them
// instead, with conf's limits.
func Configure(hs *http.Server, conf Config) *Server {
	conf.applyDefaults()
	s := &Server{conf: conf, conns: map[*conn]struct{}{}, unary: map[string]struct{}{}}
	for _, p := range conf.UnaryProcedures {
		s.unary[p] = struct{}{}
	}
	s.workers.init()
	// The limits of net/http's own HTTP/2 server: it is what StdHTTP2
	// serves with, and with internal/h2 it is never used.
	hs.HTTP2 = &http.HTTP2Config{
		MaxConcurrentStreams:          int(conf.MaxConcurrentStreams),
		MaxReadFrameSize:              int(conf.MaxReadFrameSize),
		MaxReceiveBufferPerConnection: int(conf.MaxReceiveBufferPerConnection),
		MaxReceiveBufferPerStream:     int(conf.MaxReceiveBufferPerStream),
		SendPingTimeout:               conf.SendPingTimeout,
		PingTimeout:                   conf.PingTimeout,
		WriteByteTimeout:              conf.WriteTimeout,
	}
	if conf.MaxConnectionAge > 0 {
		s.ages = newAgeTracker(conf.MaxConnectionAge, conf.MaxConnectionAgeGrace)
		s.ages.install(hs)
	}
	s.fresh.install(hs)
	hs.Handler = s.connClose(hs.Handler)
	if conf.StdHTTP2 {
		hs.Handler = stdTuning(hs.Handler, conf.UnaryProcedures)
		return s
	}
	if hs.TLSNextProto == nil {
		hs.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	hs.TLSNextProto["h2"] = func(hs *http.Server, tc *tls.Conn, h http.Handler) {
		s.serveConn(hs, tc, h, true)
	}
	// net/http hands cleartext HTTP/2 connections over under this key, in
	// a *tls.Conn that only carries the net.Conn, the preface already read.
	hs.TLSNextProto["unencrypted_http2"] = func(hs *http.Server, tc *tls.Conn, h http.Handler) {
		nc, ok := tc.NetConn().(interface{ UnencryptedNetConn() net.Conn })
		if !ok {
			logf(hs, "h2: cleartext handoff without a connection")
			tc.Close()
			return
		}
		s.serveConn(hs, nc.UnencryptedNetConn(), h, false)
	}
	hs.RegisterOnShutdown(s.shutdown)
	return s
}

// shutdown starts a graceful shutdown of every connection.
func (s *Server) shutdown() {
	for _, c := range s.connections(true) {
		c.shutdown(outcome.GoAwayShutdown)
	}
}

// connections are the connections served now; shuttingDown refuses those
// that come later (track).
func (s *Server) connections(shuttingDown bool) []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shuttingDown = s.shuttingDown || shuttingDown
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	return conns
}

func (s *Server) track(c *conn) (shuttingDown bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns[c] = struct{}{}
	return s.shuttingDown
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// serveConn serves one connection until it ends. readPreface is set when
// the client preface has not been read yet.
func (s *Server) serveConn(hs *http.Server, nc net.Conn, h http.Handler, readPreface bool) {
	ctx := context.Background()
	if bc, ok := h.(interface{ BaseContext() context.Context }); ok {
		ctx = bc.BaseContext()
	}
	if s.ages != nil {
		s.ages.forget(nc) // the connection ages as HTTP/2 (conn.serve)
	}
	takeOverBuffered(nc)
	c := newConn(s, hs, nc, h, ctx)
	defer s.untrack(c)
	if s.track(c) {
		c.close() // shutting down: no new connections
		return
	}
	c.serve(readPreface)
}

// logf reports a connection-level problem to hs's ErrorLog.
func logf(hs *http.Server, format string, args ...any) {
	if hs != nil && hs.ErrorLog != nil {
		hs.ErrorLog.Printf(format, args...)
		return
	}
	log.Printf(format, args...)
}

// Errors that handlers see.
var (
	errStreamClosed = errors.New("h2: stream closed")
	errClientReset  = errors.New("h2: stream reset by the client")
	errConnClosed   = errors.New("h2: connection closed")
)
