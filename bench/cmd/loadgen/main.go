// Command loadgen is a lean gRPC load generator: one HTTP/2 connection
// driven by a single goroutine over golang.org/x/net/http2's Framer, so the
// client costs far less CPU per call than a server and cannot cap the
// measurement. It checks every response — HTTP status, content type,
// grpc-status and the exact response bytes — and prints one JSON result.
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Result is what one run prints on stdout.
type Result struct {
	Workload string  `json:"workload"`
	Calls    int     `json:"calls"`       // completed inside the measured window
	Msgs     int     `json:"msgs"`        // messages of those calls (see workload)
	Seconds  float64 `json:"seconds"`     // measured window
	CallsAll int     `json:"calls_all"`   // completed in total, warm-up included
	P50      float64 `json:"p50_ms"`      // call latency
	P90      float64 `json:"p90_ms"`      // call latency
	P95      float64 `json:"p95_ms"`      // call latency
	P99      float64 `json:"p99_ms"`      // call latency
	P999     float64 `json:"p999_ms"`     // call latency
	Max      float64 `json:"max_ms"`      // call latency
	Errors   int     `json:"errors"`      // failed checks; any makes the run invalid
	FirstErr string  `json:"first_error"` // the first failed check
}

func main() {
	addr := flag.String("addr", "", "server address host:port (h2c)")
	name := flag.String("workload", "getteam", "workload: "+strings.Join(workloadNames(), ", "))
	conc := flag.Int("c", 64, "concurrent calls on the one connection")
	warm := flag.Duration("warmup", time.Second, "calls before the measured window")
	dur := flag.Duration("d", 5*time.Second, "measured window")
	per := flag.Int("n", 100, "messages sent per call by client- and bidi-streaming workloads")
	seed := flag.Int("seed", 0, "distinguishes runs so RouteChat locations never repeat on a server")
	flag.Parse()
	w, ok := workloads[*name]
	if !ok || *addr == "" {
		fmt.Fprintf(os.Stderr, "loadgen: need -addr and -workload (one of %s)\n", strings.Join(workloadNames(), ", "))
		os.Exit(2)
	}
	res, err := run(*addr, w(*per, *seed), *conc, *warm, *dur)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	res.Workload = *name
	_ = json.NewEncoder(os.Stdout).Encode(res)
	if res.Errors > 0 {
		os.Exit(1)
	}
}

// call is one RPC to make: the request body (gRPC-framed messages, sent
// with END_STREAM) and a check of the whole response body.
type call struct {
	body  []byte
	msgs  int // messages counted for the call
	check func(resp []byte) error
}

// workload makes the calls of one benchmark, in a loop.
type workload struct {
	path string
	next func() call
}

type stream struct {
	id      uint32
	c       call
	out     []byte // request bytes not yet sent
	win     int64  // send window
	in      []byte
	headers bool
	start   time.Time
}

type client struct {
	conn    net.Conn
	br      *bufio.Reader
	bw      *bufio.Writer
	fr      *http2.Framer
	hdr     []byte // the request's header block, stateless (never indexed)
	w       workload
	nextID  uint32
	connWin int64
	initWin int64
	maxFr   int
	streams map[uint32]*stream
	blocked []*stream
	unacked int64 // received bytes not yet returned by WINDOW_UPDATE
	spare   [][]byte
}

const recvWindow = 1 << 30

func run(addr string, w workload, conc int, warm, dur time.Duration) (Result, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return Result{}, err
	}
	defer conn.Close()
	c := &client{
		conn: conn, br: bufio.NewReaderSize(conn, 64<<10), bw: bufio.NewWriterSize(conn, 64<<10),
		w: w, nextID: 1, connWin: 65535, initWin: 65535, maxFr: 16384, streams: map[uint32]*stream{},
	}
	c.fr = http2.NewFramer(c.bw, c.br)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{
		{":method", "POST"}, {":scheme", "http"}, {":path", w.path}, {":authority", addr},
		{"content-type", "application/grpc"}, {"te", "trailers"},
		{"grpc-accept-encoding", "gzip"}, {"user-agent", "switchyard-loadgen"},
	} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1], Sensitive: true})
	}
	c.hdr = hb.Bytes()

	if _, err := c.bw.WriteString(http2.ClientPreface); err != nil {
		return Result{}, err
	}
	_ = c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: recvWindow},
		http2.Setting{ID: http2.SettingEnablePush, Val: 0})
	_ = c.fr.WriteWindowUpdate(0, recvWindow-65535)

	var res Result
	lat := make([]time.Duration, 0, 1<<20)
	started := false
	begin := time.Now()
	measureFrom, measureTo := begin.Add(warm), begin.Add(warm+dur)
	_ = conn.SetReadDeadline(measureTo.Add(30 * time.Second))
	fail := func(err error) {
		res.Errors++
		if res.FirstErr == "" {
			res.FirstErr = err.Error()
		}
	}
	for {
		if c.br.Buffered() == 0 {
			if err := c.bw.Flush(); err != nil {
				return res, err
			}
		}
		f, err := c.fr.ReadFrame()
		if err != nil {
			return res, fmt.Errorf("read frame: %w", err)
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
			return res, fmt.Errorf("server sent GOAWAY %v: %q", f.ErrCode, f.DebugData())
		case *http2.RSTStreamFrame:
			return res, fmt.Errorf("server reset stream %d: %v", f.StreamID, f.ErrCode)
		case *http2.DataFrame:
			s := c.streams[f.StreamID]
			if s == nil {
				return res, fmt.Errorf("DATA on unknown stream %d", f.StreamID)
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
				return res, fmt.Errorf("%s: stream %d ended without trailers (HTTP error or unknown procedure?): %q", c.w.path, f.StreamID, trunc(s.in))
			}
		case *http2.MetaHeadersFrame:
			s := c.streams[f.StreamID]
			if s == nil {
				return res, fmt.Errorf("HEADERS on unknown stream %d", f.StreamID)
			}
			if !s.headers {
				s.headers = true
				if st := f.PseudoValue("status"); st != "200" {
					fail(fmt.Errorf("%s: HTTP status %s", c.w.path, st))
				}
				if !strings.HasPrefix(fieldValue(f, "content-type"), "application/grpc") {
					fail(fmt.Errorf("%s: content-type %q", c.w.path, fieldValue(f, "content-type")))
				}
				// grpc-encoding may name gzip: what counts is each
				// message's compressed flag, which the checks expect clear
				// (every message here is below the compression threshold).
			}
			if !f.StreamEnded() {
				continue
			}
			now := time.Now()
			if code := fieldValue(f, "grpc-status"); code != "0" {
				fail(fmt.Errorf("%s: grpc-status %s: %s", c.w.path, code, fieldValue(f, "grpc-message")))
			} else if len(s.out) > 0 {
				fail(fmt.Errorf("%s: call ended before its request was sent", c.w.path))
			} else if err := s.c.check(s.in); err != nil {
				fail(fmt.Errorf("%s: %w", c.w.path, err))
			}
			delete(c.streams, s.id)
			c.spare = append(c.spare, s.in[:0])
			res.CallsAll++
			if !s.start.Before(measureFrom) && now.Before(measureTo) {
				res.Calls++
				res.Msgs += s.c.msgs
				lat = append(lat, now.Sub(s.start))
			}
			if now.Before(measureTo) {
				c.start()
			} else if len(c.streams) == 0 {
				res.Seconds = dur.Seconds()
				slices.Sort(lat)
				res.P50, res.P90, res.P95 = pct(lat, 0.50), pct(lat, 0.90), pct(lat, 0.95)
				res.P99, res.P999, res.Max = pct(lat, 0.99), pct(lat, 0.999), pct(lat, 1)
				_ = c.fr.WriteGoAway(c.nextID-2, http2.ErrCodeNo, nil)
				_ = c.bw.Flush()
				return res, nil
			}
		}
	}
}

// start opens the next call's stream and sends as much of it as the flow
// control windows allow.
func (c *client) start() {
	s := &stream{id: c.nextID, c: c.w.next(), win: c.initWin, start: time.Now()}
	if n := len(c.spare); n > 0 {
		s.in, c.spare = c.spare[n-1], c.spare[:n-1]
	}
	c.nextID += 2
	s.out = s.c.body
	c.streams[s.id] = s
	_ = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: s.id, BlockFragment: c.hdr, EndHeaders: true})
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

func pct(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(int(float64(len(sorted))*p), len(sorted)-1)
	return float64(sorted[i]) / float64(time.Millisecond)
}

// frame appends msg as one uncompressed gRPC message.
func frame(dst, msg []byte) []byte {
	dst = append(dst, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(dst[len(dst)-4:], uint32(len(msg)))
	return append(dst, msg...)
}

// equal checks a response body against the expected bytes.
func equal(want []byte) func([]byte) error {
	return func(got []byte) error {
		if !bytes.Equal(got, want) {
			return fmt.Errorf("response body differs: got %d bytes %q, want %d bytes %q", len(got), trunc(got), len(want), trunc(want))
		}
		return nil
	}
}

func trunc(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

var errShort = errors.New("short gRPC message")

// messages splits a gRPC-framed body into its messages.
func messages(body []byte) ([][]byte, error) {
	var out [][]byte
	for len(body) > 0 {
		if len(body) < 5 {
			return nil, errShort
		}
		if body[0] != 0 {
			return nil, fmt.Errorf("message flags %#x: compressed or unknown", body[0])
		}
		n := int(binary.BigEndian.Uint32(body[1:5]))
		if len(body) < 5+n {
			return nil, errShort
		}
		out = append(out, body[5:5+n])
		body = body[5+n:]
	}
	return out, nil
}
