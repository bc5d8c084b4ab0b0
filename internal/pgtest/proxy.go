package pgtest

import (
	"bytes"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy stands between clients and a private PostgreSQL: it forwards the
// server's unix socket through a directory of its own, and a test can
// stop the traffic there without closing anything.
//
//   - Freeze stops everything, both ways, as a network partition would;
//     when thawed, the connections that carried traffic meanwhile are
//     closed (what was in flight is lost, as TCP would end them after its
//     retries).
//   - Hold keeps back what the server sends, on every session but those
//     of the application named at NewProxy, and signals Held each time;
//     released, what was kept goes on.
//   - Sever loses one answer of the server, and the session with it;
//     LoseRequest loses one request of a client, and the client's side of
//     the session with it.
type Proxy struct {
	dsn    string
	except []byte
	held   chan struct{}

	mu      sync.Mutex
	frozen  gate
	holding gate
	conns   []net.Conn
	sever   *severing // armed by Sever, until it fires
}

// severing is what Sever armed.
type severing struct {
	app, marker []byte
	freeze      bool // Sever's and Partition's
	request     bool // LoseRequest's and Partition's
	done        chan struct{}
}

// gate is a switch pipes wait on while it is on; guarded by Proxy.mu.
type gate struct {
	on  bool
	off chan struct{} // closed when the gate is turned off
}

func newGate() gate { return gate{off: make(chan struct{})} }

func (g *gate) set(on bool) {
	if on == g.on {
		return
	}
	g.on = on
	if !on {
		close(g.off)
		g.off = make(chan struct{})
	}
}

// NewProxy proxies the server of dsn (from Database or NewDatabase). Hold
// leaves alone the sessions whose startup message names application
// except (their application_name); "" leaves none alone. It is closed,
// its connections with it, when the test ends.
func NewProxy(t testing.TB, dsn, except string) *Proxy {
	host := ""
	for _, f := range strings.Fields(dsn) {
		if v, ok := strings.CutPrefix(f, "host="); ok {
			host = v
		}
	}
	if host == "" {
		t.Fatalf("pgtest.NewProxy: no host= in %q", dsn)
	}
	dir := t.TempDir()
	p := &Proxy{
		dsn:  strings.Replace(dsn, "host="+host, "host="+dir, 1),
		held: make(chan struct{}, 1), frozen: newGate(), holding: newGate(),
	}
	if except != "" {
		p.except = []byte(except)
	}
	ln, err := net.Listen("unix", filepath.Join(dir, ".s.PGSQL.5432"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = ln.Close()
		p.Freeze(false)
		p.Hold(false)
		p.mu.Lock()
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
	})
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("unix", filepath.Join(host, ".s.PGSQL.5432"))
			if err != nil {
				_ = client.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, client, server)
			p.mu.Unlock()
			var excepted atomic.Bool
			// The session's first message, which names its application.
			var startup atomic.Pointer[[]byte]
			go p.pipe(server, client, func(b []byte) bool { // client → server
				if p.except != nil && bytes.Contains(b, p.except) {
					excepted.Store(true)
				}
				first := startup.Load()
				if first == nil {
					c := bytes.Clone(b)
					startup.Store(&c)
					return false
				}
				if p.severs(*first, b, true) {
					_ = client.Close() // the server's side stays open
					return true
				}
				return false
			}, nil)
			go p.pipe(client, server, func(b []byte) bool { // server → client
				if first := startup.Load(); first != nil && p.severs(*first, b, false) {
					_ = client.Close()
					_ = server.Close()
					return true
				}
				return false
			}, func() bool { return !excepted.Load() })
		}
	}()
	return p
}

// DSN is the proxied server's DSN through the proxy.
func (p *Proxy) DSN() string { return p.dsn }

// Held is signalled (at most one signal waits) each time Hold keeps
// something back.
func (p *Proxy) Held() <-chan struct{} { return p.held }

// Freeze stops (on) or restarts the traffic, both ways, on every session.
func (p *Proxy) Freeze(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frozen.set(on)
}

// Hold keeps back (on) or releases what the server sends on the sessions
// Hold applies to (NewProxy).
func (p *Proxy) Hold(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holding.set(on)
}

// Sever arms the proxy once: the next chunk the server sends on a session
// of application app (its application_name) that contains marker is not
// passed on, and that session is closed both ways, as a connection lost
// just after the server sent it would be. With freeze, the proxy freezes
// at that moment too (Freeze). The channel returned is closed once it
// has happened.
func (p *Proxy) Sever(app string, marker []byte, freeze bool) <-chan struct{} {
	return p.arm(&severing{app: []byte(app), marker: marker, freeze: freeze})
}

// LoseRequest arms the proxy once: the next chunk a client of application
// app sends that contains marker is not passed on, and the session is
// closed on the client's side only. The server goes on waiting for the
// request, as when a network loses a connection and the server has not
// noticed. The channel returned is closed once it has happened.
func (p *Proxy) LoseRequest(app string, marker []byte) <-chan struct{} {
	return p.arm(&severing{app: []byte(app), marker: marker, request: true})
}

// Partition arms the proxy once as LoseRequest does, and freezes it
// (Freeze) at that moment: the client never reaches the server again
// until thawed, and the server goes on waiting for the request, as in a
// network partition that begins as the client sends it.
func (p *Proxy) Partition(app string, marker []byte) <-chan struct{} {
	return p.arm(&severing{app: []byte(app), marker: marker, request: true, freeze: true})
}

func (p *Proxy) arm(sv *severing) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	sv.done = make(chan struct{})
	p.sever = sv
	return sv.done
}

// severs reports whether chunk b, sent by the client (request) or the
// server on the session whose first message was startup, is the one
// Sever or LoseRequest armed for, and disarms it.
func (p *Proxy) severs(startup, b []byte, request bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	sv := p.sever
	if sv == nil || sv.request != request || !bytes.Contains(startup, sv.app) || !bytes.Contains(b, sv.marker) {
		return false
	}
	p.sever = nil
	if sv.freeze {
		p.frozen.set(true)
	}
	close(sv.done)
	return true
}

// pipe copies src to dst; seen looks at each chunk first, and holdable
// says whether Hold applies to the chunks of this direction. When seen
// drops a chunk, pipe ends there and leaves both connections as seen
// left them.
func (p *Proxy) pipe(dst, src net.Conn, seen func([]byte) (drop bool), holdable func() bool) {
	dropped := false
	defer func() {
		if !dropped {
			_ = dst.Close()
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && seen != nil && seen(buf[:n]) {
			dropped = true
			return
		}
		p.mu.Lock()
		frozen, holding := p.frozen, p.holding
		p.mu.Unlock()
		if frozen.on {
			<-frozen.off
			_ = src.Close()
			return
		}
		if n > 0 && holding.on && holdable != nil && holdable() {
			select {
			case p.held <- struct{}{}:
			default:
			}
			<-holding.off
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
