package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// window is the measured span shared by every connection of a run: calls
// that start at or after from and end before to are measured.
type window struct {
	from, to time.Time
}

// connStats is what one connection's calls added up to.
type connStats struct {
	calls, msgs, callsAll, errors int
	refused                       int // streams the server refused, each made again
	firstErr                      string
	lat                           histogram
}

func (s *connStats) fail(err error) {
	s.errors++
	if s.firstErr == "" {
		s.firstErr = err.Error()
	}
}

// response is what a finished call's checks see.
type response struct {
	grpcStatus  string // "" when the server sent none
	grpcMessage string // percent-decoded
	body        []byte // every DATA byte, gRPC framing included
}

type stream struct {
	id      uint32
	c       call
	out     []byte // request bytes not yet sent
	win     int64  // send window
	in      []byte
	headers bool
	status  string   // the response's :status
	only    response // grpc-status and grpc-message in its headers (gRPC-Web's trailers-only)
	failed  bool     // its headers failed the check
	start   time.Time
}

// client drives one HTTP/2 connection from one goroutine: it reads frames,
// checks each finished call and starts the next in its place, so the
// number of calls in flight stays at conc until the window closes.
type client struct {
	conn     net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	fr       *http2.Framer
	hdr      []byte // the request's header block, its fields indexed (headerBlocks)
	hdrFirst []byte // the first stream's: it adds them to the HPACK table
	w        *workload
	nextID   uint32
	connWin  int64
	initWin  int64
	maxFr    int
	streams  map[uint32]*stream
	blocked  []*stream
	unacked  int64 // received bytes not yet returned by WINDOW_UPDATE
	spare    [][]byte
	done     *atomic.Int64 // calls completed, read by the writer's pacer
}

const recvWindow = 1 << 30

// dialer opens the transport under one connection: cleartext with prior
// knowledge, or TLS negotiating h2 by ALPN.
type dialer struct {
	addr string
	tls  *tls.Config // nil for h2c
}

func (d dialer) scheme() string {
	if d.tls != nil {
		return "https"
	}
	return "http"
}

func (d dialer) dial(ctx context.Context) (net.Conn, error) {
	var nd net.Dialer
	conn, err := nd.DialContext(ctx, "tcp", d.addr)
	if err != nil || d.tls == nil {
		return conn, err
	}
	tc := tls.Client(conn, d.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("TLS handshake with %s: %w", d.addr, err)
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
		tc.Close()
		return nil, fmt.Errorf("TLS: %s negotiated ALPN %q, not h2", d.addr, p)
	}
	return tc, nil
}

// headerBlocks encodes a request's headers as gRPC clients do (grpc-go,
// and net/http's HTTP/2 client under connect-go): the first request of a
// connection adds every field to the HPACK dynamic table, and every later
// one, with the same fields, refers to them by index. Both blocks are
// encoded once; first must open the connection's first stream.
func headerBlocks(scheme, path, authority string, p rpcProtocol, extra ...string) (first, later []byte) {
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	fields := append([]string{":method", "POST", ":scheme", scheme, ":path", path, ":authority", authority}, p.headers()...)
	fields = append(fields, "user-agent", "switchyard-loadgen")
	fields = append(fields, extra...)
	encode := func() []byte {
		hb.Reset()
		for i := 0; i+1 < len(fields); i += 2 {
			_ = enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
		}
		return bytes.Clone(hb.Bytes())
	}
	return encode(), encode()
}

// drive runs calls on conn until the window closes and every call in
// flight has ended. A failed check is counted and the run goes on; a
// protocol failure (reset stream, GOAWAY, broken connection) ends it.
func drive(conn net.Conn, scheme string, w *workload, conc int, win window, done *atomic.Int64) (connStats, error) {
	c := &client{
		conn: conn, br: bufio.NewReaderSize(conn, 64<<10), bw: bufio.NewWriterSize(conn, 64<<10),
		w: w, nextID: 1, connWin: 65535, initWin: 65535, maxFr: 16384, streams: map[uint32]*stream{},
		done: done,
	}
	c.fr = http2.NewFramer(c.bw, c.br)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.fr.MaxHeaderListSize = 1 << 20
	host := conn.RemoteAddr().String()
	if w.proto == "" {
		w.proto = protoGRPC
	}
	c.hdrFirst, c.hdr = headerBlocks(scheme, w.path, host, w.proto, w.headers...)

	if _, err := c.bw.WriteString(http2.ClientPreface); err != nil {
		return connStats{}, err
	}
	_ = c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: recvWindow},
		http2.Setting{ID: http2.SettingEnablePush, Val: 0})
	_ = c.fr.WriteWindowUpdate(0, recvWindow-65535)

	var st connStats
	started := false
	_ = conn.SetReadDeadline(win.to.Add(30 * time.Second))
	for {
		if c.br.Buffered() == 0 {
			if err := c.bw.Flush(); err != nil {
				return st, err
			}
		}
		f, err := c.fr.ReadFrame()
		if err != nil {
			return st, fmt.Errorf("read frame: %w", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				continue
			}
			if v, ok := f.Value(http2.SettingInitialWindowSize); ok {
				d := int64(v) - c.initWin
				c.initWin = int64(v)
				for _, s := range c.streams {
					s.win += d
				}
			}
			if v, ok := f.Value(http2.SettingMaxFrameSize); ok {
				c.maxFr = int(v)
			}
			if v, ok := f.Value(http2.SettingMaxConcurrentStreams); ok && int(v) < conc {
				conc = int(v)
			}
			_ = c.fr.WriteSettingsAck()
			if !started {
				started = true
				for range conc {
					c.start()
				}
			}
			c.unblock()
		case *http2.PingFrame:
			if !f.IsAck() {
				_ = c.fr.WritePing(true, f.Data)
			}
		case *http2.WindowUpdateFrame:
			if f.StreamID == 0 {
				c.connWin += int64(f.Increment)
			} else if s := c.streams[f.StreamID]; s != nil {
				s.win += int64(f.Increment)
			}
			c.unblock()
		case *http2.GoAwayFrame:
			return st, fmt.Errorf("server sent GOAWAY %v: %q", f.ErrCode, f.DebugData())
		case *http2.RSTStreamFrame:
			s := c.streams[f.StreamID]
			if s == nil {
				// A stream already ended or refused (its DATA, sent with
				// its HEADERS, reached a closed stream: STREAM_CLOSED).
				continue
			}
			if f.ErrCode == http2.ErrCodeRefusedStream {
				// RFC 9113 §8.7: a refused stream was not processed, and
				// clients make it again (grpc-go does, transparently):
				// the same call on a new stream, its latency counted from
				// the first try. The count is reported.
				st.refused++
				delete(c.streams, s.id)
				c.open(s.c, s.start)
				continue
			}
			return st, fmt.Errorf("%s: server reset stream %d: %v", c.w.path, f.StreamID, f.ErrCode)
		case *http2.DataFrame:
			s := c.streams[f.StreamID]
			if s == nil {
				return st, fmt.Errorf("DATA on unknown stream %d", f.StreamID)
			}
			s.in = append(s.in, f.Data()...)
			c.unacked += int64(f.Length)
			if c.unacked > recvWindow/2 {
				// Return the connection window; stream windows are as
				// large and no call receives that much.
				_ = c.fr.WriteWindowUpdate(0, uint32(c.unacked))
				c.unacked = 0
			}
			if f.StreamEnded() {
				if w.proto == protoGRPC {
					return st, fmt.Errorf("%s: stream %d ended without trailers (HTTP error or unknown procedure?): %q", c.w.path, f.StreamID, trunc(s.in))
				}
				if c.end(s, nil, &st, win) {
					return st, nil
				}
			}
		case *http2.MetaHeadersFrame:
			s := c.streams[f.StreamID]
			if s == nil {
				return st, fmt.Errorf("HEADERS on unknown stream %d", f.StreamID)
			}
			if !s.headers {
				s.headers = true
				s.status = f.PseudoValue("status")
				if code := fieldValue(f, "grpc-status"); code != "" {
					s.only = response{grpcStatus: code, grpcMessage: percentDecode(fieldValue(f, "grpc-message"))}
				}
				if err := w.proto.checkHeaders(s.status, fieldValue(f, "content-type")); err != nil {
					st.fail(fmt.Errorf("%s: %w", c.w.path, err))
					s.failed = true
				}
				// grpc-encoding may name gzip: what counts is each
				// message's compressed flag, which the checks expect clear
				// (every message here is below the compression threshold).
			}
			if f.StreamEnded() && c.end(s, f, &st, win) {
				return st, nil
			}
		}
	}
}

// end checks a finished call, counts it and starts the next in its place;
// trailers are the HEADERS that ended the stream (nil when DATA did). It
// reports whether the run is over: the window has closed and no call is
// left in flight (GOAWAY is sent then).
func (c *client) end(s *stream, trailers *http2.MetaHeadersFrame, st *connStats, win window) bool {
	now := time.Now()
	failed := s.failed
	if !failed {
		resp, err := c.w.proto.response(s.status, s.only, trailers, s.in)
		switch {
		case err != nil:
			st.fail(fmt.Errorf("%s: %w", c.w.path, err))
			failed = true
		case len(s.out) > 0:
			st.fail(fmt.Errorf("%s: call ended before its request was sent (grpc-status %s: %s)", c.w.path, resp.grpcStatus, resp.grpcMessage))
			failed = true
		default:
			if err := s.c.check(&resp); err != nil {
				st.fail(fmt.Errorf("%s: %w", c.w.path, err))
				failed = true
			}
		}
	}
	delete(c.streams, s.id)
	c.spare = append(c.spare, s.in[:0])
	st.callsAll++
	c.done.Add(1)
	// Only checked calls are measured: a fast error must never count as
	// a call served.
	if !failed && !s.start.Before(win.from) && now.Before(win.to) {
		st.calls++
		st.msgs += s.c.msgs
		st.lat.record(now.Sub(s.start))
	}
	if now.Before(win.to) {
		c.start()
	} else if len(c.streams) == 0 {
		_ = c.fr.WriteGoAway(c.nextID-2, http2.ErrCodeNo, nil)
		_ = c.bw.Flush()
		return true
	}
	return false
}

// start opens the next call's stream and sends as much of it as the flow
// control windows allow.
func (c *client) start() {
	c.open(c.w.next(), time.Now())
}

// open sends call on a new stream.
func (c *client) open(call call, start time.Time) {
	s := &stream{id: c.nextID, c: call, win: c.initWin, start: start}
	if n := len(c.spare); n > 0 {
		s.in, c.spare = c.spare[n-1], c.spare[:n-1]
	}
	c.nextID += 2
	s.out = c.w.proto.body(s.c.body)
	c.streams[s.id] = s
	hdr := c.hdr
	if s.id == 1 {
		hdr = c.hdrFirst
	}
	_ = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: s.id, BlockFragment: hdr, EndHeaders: true})
	if !c.send(s) {
		c.blocked = append(c.blocked, s)
	}
}

// send writes DATA for s within the windows; it reports whether s is done.
func (c *client) send(s *stream) bool {
	for len(s.out) > 0 {
		n := min(int64(len(s.out)), c.connWin, s.win, int64(c.maxFr))
		if n <= 0 {
			return false
		}
		_ = c.fr.WriteData(s.id, int(n) == len(s.out), s.out[:n])
		s.out = s.out[n:]
		c.connWin -= n
		s.win -= n
	}
	return true
}

func (c *client) unblock() {
	kept := c.blocked[:0]
	for _, s := range c.blocked {
		if c.streams[s.id] == s && !c.send(s) {
			kept = append(kept, s)
		}
	}
	c.blocked = kept
}

func fieldValue(f *http2.MetaHeadersFrame, name string) string {
	for _, hf := range f.RegularFields() {
		if hf.Name == name {
			return hf.Value
		}
	}
	return ""
}

// percentDecode undoes grpc-message's percent-encoding (gRPC over HTTP/2:
// "Status-Message"); malformed escapes are left as they are.
func percentDecode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
