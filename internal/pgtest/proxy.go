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
type Proxy struct {
	dsn    string
	except []byte
	held   chan struct{}

	mu      sync.Mutex
	frozen  gate
	holding gate
	conns   []net.Conn
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
			go p.pipe(server, client, func(b []byte) { // client → server
				if p.except != nil && bytes.Contains(b, p.except) {
					excepted.Store(true)
				}
			}, nil)
			go p.pipe(client, server, nil, func() bool { return !excepted.Load() }) // server → client
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

// pipe copies src to dst; seen looks at each chunk first, and holdable
// says whether Hold applies to the chunks of this direction.
func (p *Proxy) pipe(dst, src net.Conn, seen func([]byte), holdable func() bool) {
	defer func() { _ = dst.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && seen != nil {
			seen(buf[:n])
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
