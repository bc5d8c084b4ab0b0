package h2_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"reflect"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/switchyard/switchyard/internal/h2"
	"github.com/switchyard/switchyard/internal/testserver"
	"github.com/switchyard/switchyard/internal/waits"
)

// These tests serve a small handler written here (not Switchyard's
// services) with internal/h2 on real loopback connections. Clients are
// golang.org/x/net/http2's Transport, and its Framer for what a
// well-behaved client never sends. No test runs in parallel: several count
// the process's goroutines.

// logBuffer collects an http.Server's ErrorLog.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type testServer struct {
	addr string
	url  string
	hs   *http.Server
	log  *logBuffer
	pool *x509.CertPool // with TLS: trusts the server's certificate
	h2   *h2.Server
}

type serverOpts struct {
	tls  bool
	wrap func(net.Conn) net.Conn // applied to each accepted connection
}

type wrapListener struct {
	net.Listener
	wrap func(net.Conn) net.Conn
}

func (l wrapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.wrap(c), nil
}

// startServer serves h on 127.0.0.1 with internal/h2, as
// internal/server/http.go sets it up: HTTP/1.1 and prior-knowledge h2c in
// cleartext, or h2 by ALPN with TLS.
func startServer(t testing.TB, h http.Handler, conf h2.Config, o serverOpts) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if o.wrap != nil {
		ln = wrapListener{ln, o.wrap}
	}
	s := &testServer{addr: ln.Addr().String(), log: &logBuffer{}}
	s.hs = &http.Server{
		Handler:   h,
		Protocols: new(http.Protocols),
		ErrorLog:  log.New(s.log, "", 0),
	}
	s.hs.Protocols.SetHTTP1(true)
	s.hs.Protocols.SetUnencryptedHTTP2(true)
	s.hs.Protocols.SetHTTP2(true)
	s.h2 = h2.Configure(s.hs, conf)
	ln = s.h2.Listener(ln) // as the binary serves: the connection limit, and for StdHTTP2 buffered connections
	done := make(chan error, 1)
	if o.tls {
		certPEM, keyPEM := testserver.SelfSignedCert(t)
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		s.hs.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		s.pool = x509.NewCertPool()
		s.pool.AppendCertsFromPEM(certPEM)
		s.url = "https://" + s.addr
		go func() { done <- s.hs.ServeTLS(ln, "", "") }()
	} else {
		s.url = "http://" + s.addr
		go func() { done <- s.hs.Serve(ln) }()
	}
	t.Cleanup(func() {
		_ = s.hs.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after Close")
		}
	})
	return s
}

// client is an HTTP/2 client of s that counts its connections.
func (s *testServer) client(t *testing.T) (*http.Client, *atomic.Int32) {
	dials := &atomic.Int32{}
	tr := &http2.Transport{}
	if s.pool != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: s.pool, MinVersion: tls.VersionTLS12}
		tr.DialTLSContext = func(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
			dials.Add(1)
			d := tls.Dialer{Config: cfg}
			return d.DialContext(ctx, network, addr)
		}
	} else {
		tr.AllowHTTP = true
		tr.DialTLSContext = func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, dials
}

// waitGoroutines waits up to 5 s for the goroutine count to fall to limit.
func waitGoroutines(t *testing.T, limit int, why string) {
	t.Helper()
	testserver.WaitGoroutines(t, limit, 5*time.Second, why)
}

// requestInfo is what the /info handler saw of its request.
type requestInfo struct {
	Method, Path, RawQuery, RequestURI, Host, RemoteAddr, Proto string
	ProtoMajor                                                  int
	Header                                                      http.Header
	ContentLength                                               int64
	BodyLen                                                     int
	TLS                                                         bool
	ALPN                                                        string
	ServerCtx                                                   bool
}

// testMux is the handler most tests serve.
func testMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/info/", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		info := requestInfo{
			Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, RequestURI: r.RequestURI,
			Host: r.Host, RemoteAddr: r.RemoteAddr, Proto: r.Proto, ProtoMajor: r.ProtoMajor,
			Header: r.Header, ContentLength: r.ContentLength, BodyLen: len(body), TLS: r.TLS != nil,
			ServerCtx: r.Context().Value(http.ServerContextKey) != nil,
		}
		if r.TLS != nil {
			info.ALPN = r.TLS.NegotiatedProtocol
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Add("X-Multi", "one")
		w.Header().Add("X-Multi", "two")
		_ = json.NewEncoder(w).Encode(info)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		if _, err := io.Copy(w, r.Body); err != nil {
			panic(http.ErrAbortHandler)
		}
	})
	mux.HandleFunc("/download", func(w http.ResponseWriter, r *http.Request) {
		n := 1 << 20
		fmt.Sscan(r.URL.Query().Get("n"), &n)
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(pattern(n))
	})
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Hello", "yes")
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "hello")
	})
	mux.HandleFunc("/sniff", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "<html><body>sniff me</body></html>")
	})
	mux.HandleFunc("/encoded", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		_, _ = w.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 1, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0})
	})
	mux.HandleFunc("/block", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	return mux
}

// pattern is n deterministic bytes that do not repeat with a short period.
func pattern(n int) []byte {
	b := make([]byte, n)
	rng := rand.NewChaCha8([32]byte{1, 2, 3})
	_, _ = rng.Read(b)
	return b
}

func sum(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }

func getInfo(t *testing.T, c *http.Client, req *http.Request) requestInfo {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	if resp.ProtoMajor != 2 {
		t.Fatalf("response over %s, want HTTP/2", resp.Proto)
	}
	if got := resp.Header.Values("X-Multi"); strings.Join(got, ",") != "one,two" {
		t.Errorf("response X-Multi = %q, want [one two]", got)
	}
	var info requestInfo
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		t.Fatal(err)
	}
	return info
}

func TestRequestBasics(t *testing.T) {
	srv := startServer(t, testMux(), h2.Config{}, serverOpts{})
	var local atomic.Value
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, network, addr)
		if err == nil {
			local.Store(nc.LocalAddr().String())
		}
		return nc, err
	}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	body := []byte("twelve bytes")
	req, _ := http.NewRequest(http.MethodPut, srv.url+"/info/a%20b/c?x=1&y=two%20words&x=3", bytes.NewReader(body))
	req.Host = "example.test:8443"
	req.Header.Add("X-Multi", "first")
	req.Header.Add("X-Multi", "second")
	req.Header["x-lower-case"] = []string{"v"}
	req.Header.Set("User-Agent", "h2-test")
	req.AddCookie(&http.Cookie{Name: "a", Value: "1"})
	req.AddCookie(&http.Cookie{Name: "b", Value: "2"})
	info := getInfo(t, c, req)

	if info.Method != http.MethodPut {
		t.Errorf("Method = %q", info.Method)
	}
	if info.Path != "/info/a b/c" || info.RawQuery != "x=1&y=two%20words&x=3" {
		t.Errorf("Path, RawQuery = %q, %q", info.Path, info.RawQuery)
	}
	if info.RequestURI != "/info/a%20b/c?x=1&y=two%20words&x=3" {
		t.Errorf("RequestURI = %q", info.RequestURI)
	}
	if info.Host != "example.test:8443" {
		t.Errorf("Host = %q, want the :authority example.test:8443", info.Host)
	}
	if got := info.Header.Values("X-Multi"); len(got) != 2 || got[0] != "first" || got[1] != "second" {
		t.Errorf("X-Multi = %q, want [first second]", got)
	}
	if got := info.Header.Get("X-Lower-Case"); got != "v" {
		t.Errorf("X-Lower-Case = %q (header keys must be canonical: %v)", got, info.Header)
	}
	if got := info.Header.Values("Cookie"); len(got) != 1 || got[0] != "a=1; b=2" {
		t.Errorf("Cookie = %q, want one field \"a=1; b=2\"", got)
	}
	if _, ok := info.Header["Host"]; ok {
		t.Errorf("Host in Header: %v", info.Header)
	}
	if info.RemoteAddr != local.Load() {
		t.Errorf("RemoteAddr = %q, want the client's address %v", info.RemoteAddr, local.Load())
	}
	if info.Proto != "HTTP/2.0" || info.ProtoMajor != 2 {
		t.Errorf("Proto = %q %d", info.Proto, info.ProtoMajor)
	}
	if info.ContentLength != int64(len(body)) || info.BodyLen != len(body) {
		t.Errorf("ContentLength = %d, body %d bytes; want %d", info.ContentLength, info.BodyLen, len(body))
	}
	if info.TLS {
		t.Error("r.TLS set on a cleartext connection")
	}
	if !info.ServerCtx {
		t.Error("request context lacks http.ServerContextKey")
	}

	// A streamed body has no declared length.
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte("streamed "))
		_, _ = pw.Write([]byte("body"))
		pw.Close()
	}()
	req, _ = http.NewRequest(http.MethodPost, srv.url+"/info/stream", pr)
	info = getInfo(t, c, req)
	if info.ContentLength != -1 || info.BodyLen != len("streamed body") {
		t.Errorf("streamed: ContentLength = %d, body %d bytes; want -1, 13", info.ContentLength, info.BodyLen)
	}

	// No body at all.
	req, _ = http.NewRequest(http.MethodGet, srv.url+"/info/", nil)
	info = getInfo(t, c, req)
	if info.ContentLength != 0 || info.Method != http.MethodGet || info.Host != srv.addr {
		t.Errorf("GET: ContentLength %d, Method %q, Host %q", info.ContentLength, info.Method, info.Host)
	}
}

// A request's header values and a small body live in its stream's
// allocation, up to h2.InlineValues values and h2.InlineBody bytes; past
// either, they go to arrays of their own. On both sides of each bound
// the handler sees every value, in order, and every body byte, however
// the DATA frames split it; a handler appending to one header's values
// changes no other header.
func TestRequestInlineBounds(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/fields", func(w http.ResponseWriter, r *http.Request) {
		// Appending to the first value's slice must copy out of the
		// shared array, not write over the next header's value.
		r.Header["X-F000"] = append(r.Header["X-F000"], "appended")
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(r.Header)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(w, r.Body)
	})
	srv := startServer(t, mux, h2.Config{}, serverOpts{})
	c := dialRaw(t, srv.addr)
	id := uint32(1)
	for _, n := range []int{1, h2.InlineValues - 1, h2.InlineValues, h2.InlineValues + 1, 3 * h2.InlineValues} {
		var extra []string
		want := http.Header{}
		for i := range n {
			// Every third field repeats the one before's name.
			name := fmt.Sprintf("x-f%03d", i-btoi(i%3 == 2))
			value := fmt.Sprintf("v%d", i)
			extra = append(extra, name, value)
			want.Add(name, value)
		}
		want["X-F000"] = append(want["X-F000"], "appended")
		c.request(id, "GET", "/fields", true, extra...)
		status, body, _ := c.response(id)
		var got http.Header
		if err := json.Unmarshal(body, &got); status != "200" || err != nil {
			t.Fatalf("%d fields: status %s, %v: %s", n, status, err, body)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%d fields: the handler saw\n%v\nwant\n%v", n, got, want)
		}
		id += 2
	}
	for _, size := range []int{1, h2.InlineBody - 1, h2.InlineBody, h2.InlineBody + 1, 10 * h2.InlineBody} {
		for _, frames := range []int{1, 3} {
			body := make([]byte, size)
			for i := range body {
				body[i] = byte('a' + i%26)
			}
			c.request(id, "POST", "/echo", false)
			for i, rest := 0, body; i < frames; i++ {
				chunk := rest[:len(rest)/(frames-i)]
				rest = rest[len(chunk):]
				if err := c.Fr.WriteData(id, i == frames-1, chunk); err != nil {
					t.Fatal(err)
				}
			}
			if status, got, ended := c.response(id); status != "200" || !ended || !bytes.Equal(got, body) {
				t.Errorf("%d bytes in %d DATA frames: status %s, ended %v, echoed %d bytes %q", size, frames, status, ended, len(got), got)
			}
			id += 2
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Cookie fields that a client sends separately reach the handler joined.
func TestCookieFieldsJoined(t *testing.T) {
	srv := startServer(t, testMux(), h2.Config{}, serverOpts{})
	c := dialRaw(t, srv.addr)
	c.request(1, "GET", "/info/cookies", true, "cookie", "a=1", "cookie", "b=2", "cookie", "c=3")
	status, body, _ := c.response(1)
	if status != "200" {
		t.Fatalf("status %s: %s", status, body)
	}
	var info requestInfo
	if err := json.Unmarshal(body, &info); err != nil {
		t.Fatal(err)
	}
	if got := info.Header.Values("Cookie"); len(got) != 1 || got[0] != "a=1; b=2; c=3" {
		t.Errorf("Cookie = %q, want [\"a=1; b=2; c=3\"]", got)
	}
}

func TestTLS(t *testing.T) {
	srv := startServer(t, testMux(), h2.Config{}, serverOpts{tls: true})
	c, dials := srv.client(t)
	req, _ := http.NewRequest(http.MethodPost, srv.url+"/info/tls?q=1", strings.NewReader("over tls"))
	info := getInfo(t, c, req)
	if !info.TLS || info.ALPN != "h2" {
		t.Errorf("r.TLS set %v, ALPN %q; want set, h2", info.TLS, info.ALPN)
	}
	if info.Proto != "HTTP/2.0" || info.BodyLen != len("over tls") || info.RawQuery != "q=1" {
		t.Errorf("info %+v", info)
	}
	// A large echo over TLS too, on the same connection.
	payload := pattern(3 << 20)
	resp, err := c.Post(srv.url+"/echo", "application/octet-stream", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || sum(got) != sum(payload) {
		t.Fatalf("TLS echo: %d bytes, err %v; want %d identical bytes", len(got), err, len(payload))
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// Every request of a TLS connection sees the connection's state in r.TLS
// (complete handshake, h2 by ALPN, TLS 1.2 or later), one value shared by
// them all as x/net/http2 shares it, not a copy made per request; in
// cleartext r.TLS is nil. net/http's own HTTP/2 server agrees on all but
// the sharing.
func TestTLSStateOfRequests(t *testing.T) {
	for _, std := range []bool{false, true} {
		var mu sync.Mutex
		var seen []*tls.ConnectionState
		peers := map[string]bool{}
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen = append(seen, r.TLS)
			peers[r.RemoteAddr] = true
			mu.Unlock()
		})
		for _, useTLS := range []bool{true, false} {
			mu.Lock()
			seen = nil
			clear(peers)
			mu.Unlock()
			srv := startServer(t, h, h2.Config{StdHTTP2: std}, serverOpts{tls: useTLS})
			c, _ := srv.client(t)
			for range 3 {
				resp, err := c.Get(srv.url + "/")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
			}
			mu.Lock()
			seen, n := seen, len(peers)
			mu.Unlock()
			// The connections the requests came on, as the server saw
			// them: Go's client now and then dials a spare connection it
			// does not use, so its dials do not count them.
			if n != 1 || len(seen) != 3 {
				t.Fatalf("std %v tls %v: %d requests on %d connections, want 3 on 1", std, useTLS, len(seen), n)
			}
			for i, st := range seen {
				switch {
				case !useTLS && st != nil:
					t.Errorf("std %v: cleartext request %d has r.TLS %+v", std, i, st)
				case useTLS && (st == nil || !st.HandshakeComplete || st.NegotiatedProtocol != "h2" || st.Version < tls.VersionTLS12):
					t.Errorf("std %v: request %d has r.TLS %+v, want a complete TLS 1.2+ handshake with ALPN h2", std, i, st)
				case useTLS && !std && st != seen[0]:
					t.Errorf("request %d's r.TLS is a copy of its own, not the connection's shared state", i)
				}
			}
		}
	}
}

// smallWindows are flow-control windows well below the bodies sent.
var smallWindows = h2.Config{MaxReceiveBufferPerStream: 64 << 10, MaxReceiveBufferPerConnection: 128 << 10}

func echo(c *http.Client, url string, payload []byte) error {
	resp, err := c.Post(url+"/echo", "application/octet-stream", bytes.NewReader(payload))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		return fmt.Errorf("after %d bytes: %w", n, err)
	}
	if got := fmt.Sprintf("%x", h.Sum(nil)); n != int64(len(payload)) || got != sum(payload) {
		return fmt.Errorf("echoed %d bytes (sha256 %s), want %d (%s)", n, got, len(payload), sum(payload))
	}
	return nil
}

// Bodies far beyond every window, both ways, on one stream and on many
// streams of one connection.
func TestLargeBodies(t *testing.T) {
	base := runtime.NumGoroutine()
	srv := startServer(t, testMux(), smallWindows, serverOpts{})
	c, dials := srv.client(t)
	if err := echo(c, srv.url, pattern(5<<20)); err != nil {
		t.Fatalf("5 MiB echo: %v", err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			p := pattern(1<<20 + i*4099)
			if err := echo(c, srv.url, p); err != nil {
				errs <- fmt.Errorf("stream %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
	c.Transport.(*http2.Transport).CloseIdleConnections()
	waitGoroutines(t, base+2, "after the connection closed")
}

// The server never sends beyond the client's windows: a raw client with
// the default 64 KiB windows downloads 1 MiB, counting what arrives
// against what it granted.
func TestSendWithinClientWindows(t *testing.T) {
	srv := startServer(t, testMux(), h2.Config{}, serverOpts{})
	c := dialRaw(t, srv.addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 16 << 10})
	const total = 1 << 20
	c.request(1, "GET", fmt.Sprintf("/download?n=%d", total), true)
	connWindow, streamWindow := int64(65535), int64(16<<10)
	var got bytes.Buffer
	for {
		f, err := c.ReadFrame(5 * time.Second)
		if err != nil {
			t.Fatalf("after %d bytes: %v", got.Len(), err)
		}
		df, ok := f.(*http2.DataFrame)
		if !ok {
			if _, ok := f.(*http2.RSTStreamFrame); ok {
				t.Fatalf("RST_STREAM after %d bytes", got.Len())
			}
			continue
		}
		n := int64(df.Length)
		connWindow -= n
		streamWindow -= n
		if connWindow < 0 || streamWindow < 0 {
			t.Fatalf("server overran the windows: connection %d, stream %d", connWindow, streamWindow)
		}
		got.Write(df.Data())
		if df.StreamEnded() {
			break
		}
		// Grant the window back slowly, a frame at a time, once it is gone.
		if streamWindow == 0 {
			_ = c.Fr.WriteWindowUpdate(1, 16<<10)
			streamWindow += 16 << 10
		}
		if connWindow < 16<<10 {
			_ = c.Fr.WriteWindowUpdate(0, 32<<10)
			connWindow += 32 << 10
		}
	}
	if sum(got.Bytes()) != sum(pattern(total)) {
		t.Fatalf("downloaded %d bytes, not the %d sent", got.Len(), total)
	}
}

func TestResponseTrailers(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Declared, X-Also")
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "body before trailers")
		w.Header().Set("X-Declared", "declared value")
		w.Header().Set("X-Also", "also")
		w.Header().Set(http.TrailerPrefix+"X-Undeclared", "prefixed value")
	})
	srv := startServer(t, mux, h2.Config{}, serverOpts{})
	c, _ := srv.client(t)
	resp, err := c.Get(srv.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "body before trailers" {
		t.Fatalf("body %q, %v", body, err)
	}
	for k, want := range map[string]string{"X-Declared": "declared value", "X-Also": "also", "X-Undeclared": "prefixed value"} {
		if got := resp.Trailer.Get(k); got != want {
			t.Errorf("trailer %s = %q, want %q (trailers %v)", k, got, want, resp.Trailer)
		}
	}
	if resp.ContentLength != -1 || resp.Header.Get("Content-Length") != "" {
		t.Errorf("a response with trailers has Content-Length %q", resp.Header.Get("Content-Length"))
	}
}

func TestRequestTrailers(t *testing.T) {
	type seen struct {
		before, after string
		body          string
	}
	got := make(chan seen, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		var s seen
		// The whole request, trailers included, has arrived by now. Until
		// Body returns EOF the handler may look at Trailer's keys (net/http
		// documents them as present with nil values) without racing.
		time.Sleep(100 * time.Millisecond)
		if _, declared := r.Trailer["X-Req-Trailer"]; !declared {
			s.before = "undeclared"
		} else {
			s.before = r.Trailer.Get("X-Req-Trailer")
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.body = string(b)
		s.after = r.Trailer.Get("X-Req-Trailer")
		got <- s
	})
	srv := startServer(t, mux, h2.Config{}, serverOpts{})
	c, _ := srv.client(t)
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, srv.url+"/", pr)
	req.Trailer = http.Header{"X-Req-Trailer": nil}
	go func() {
		_, _ = io.WriteString(pw, "request body")
		req.Trailer.Set("X-Req-Trailer", "trailer value")
		pw.Close()
	}()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	s := <-got
	if s.body != "request body" || s.after != "trailer value" || s.before != "" {
		t.Errorf("handler saw body %q, trailer before EOF %q, after %q", s.body, s.before, s.after)
	}
}

// Flush sends what was written while the handler still runs.
func TestFlushStreams(t *testing.T) {
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "first chunk;")
		w.(http.Flusher).Flush()
		select {
		case <-release:
			_, _ = io.WriteString(w, "second chunk")
		case <-time.After(5 * time.Second):
			_, _ = io.WriteString(w, "not released")
		}
	})
	srv := startServer(t, mux, h2.Config{}, serverOpts{})
	c, _ := srv.client(t)
	resp, err := c.Get(srv.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, len("first chunk;"))
	read := make(chan error, 1)
	go func() { _, err := io.ReadFull(resp.Body, first); read <- err }()
	select {
	case err := <-read:
		if err != nil || string(first) != "first chunk;" {
			t.Fatalf("first chunk %q, %v", first, err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the flushed chunk did not arrive while the handler waited")
	}
	close(release)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "second chunk" {
		t.Fatalf("rest %q, %v", rest, err)
	}
}

func TestContentLengthHeadNoContent(t *testing.T) {
	noContentErr := make(chan error, 1)
	headErr := make(chan error, 1)
	mux := testMux()
	mux.HandleFunc("/nocontent", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
		_, err := io.WriteString(w, "not allowed")
		noContentErr <- err
	})
	mux.HandleFunc("/head", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Head", "yes")
		_, err := io.WriteString(w, "a body HEAD must not carry")
		headErr <- err
	})
	mux.HandleFunc("/flushed", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "part one ")
		w.(http.Flusher).Flush()
		_, _ = io.WriteString(w, "part two")
	})
	srv := startServer(t, mux, h2.Config{}, serverOpts{})
	c, _ := srv.client(t)

	resp, err := c.Get(srv.url + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hello" || resp.ContentLength != 5 || resp.Header.Get("Content-Length") != "5" {
		t.Errorf("complete response: body %q, Content-Length %q; want 5", b, resp.Header.Get("Content-Length"))
	}
	if resp.Header.Get("Content-Type") != "text/plain" || resp.Header.Get("X-Hello") != "yes" {
		t.Errorf("headers %v", resp.Header)
	}

	// A response flushed before it ended has no length.
	resp, err = c.Get(srv.url + "/flushed")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "part one part two" || resp.ContentLength != -1 {
		t.Errorf("flushed response: body %q, ContentLength %d; want -1", b, resp.ContentLength)
	}

	// HEAD: headers and the length the body would have, no body; the
	// handler's Write succeeds (the body is dropped), as with net/http.
	rc := dialRaw(t, srv.addr)
	rc.request(1, "HEAD", "/head", true)
	status, hdr, body, ended := rc.responseWithHeader(1)
	want := strconv.Itoa(len("a body HEAD must not carry"))
	if status != "200" || hdr["x-head"] != "yes" || hdr["content-length"] != want || len(body) != 0 || !ended {
		t.Errorf("HEAD: status %s, headers %v, body %q, ended %v; want 200, x-head, content-length %s, no body", status, hdr, body, ended, want)
	}
	select {
	case err := <-headErr:
		if err != nil {
			t.Errorf("HEAD handler's Write: %v, want nil (body dropped)", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("HEAD handler did not run")
	}

	// 204: Write is refused, no body sent.
	resp, err = c.Get(srv.url + "/nocontent")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || len(b) != 0 {
		t.Errorf("204: status %d body %q", resp.StatusCode, b)
	}
	if err := <-noContentErr; !errors.Is(err, http.ErrBodyNotAllowed) {
		t.Errorf("Write after 204: %v, want http.ErrBodyNotAllowed", err)
	}
}

func TestContentTypeSniffed(t *testing.T) {
	srv := startServer(t, testMux(), h2.Config{}, serverOpts{})
	c, _ := srv.client(t)
	resp, err := c.Get(srv.url + "/sniff")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Content-Type"); got != "text/html; charset=utf-8" {
		t.Errorf("sniffed Content-Type %q, want text/html; charset=utf-8", got)
	}
	// An encoded body is not sniffed (as net/http, golang.org/issue/31753):
	// the type would be the encoding's, not the content's.
	resp, err = c.Get(srv.url + "/encoded")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, ok := resp.Header["Content-Type"]; ok {
		t.Errorf("Content-Type %q sniffed from a body with Content-Encoding gzip", got)
	}
	// A set Content-Type is kept.
	resp, err = c.Get(srv.url + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Content-Type"); got != "text/plain" {
		t.Errorf("Content-Type %q, want the handler's text/plain", got)
	}
}

func TestHandlerPanic(t *testing.T) {
	base := runtime.NumGoroutine()
	release := make(chan struct{})
	mux := testMux()
	mux.HandleFunc("/panic", func(w http.ResponseWriter, r *http.Request) {
		panic("boom in the handler")
	})
	mux.HandleFunc("/panic-after-flush", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		panic("boom after flush")
	})
	mux.HandleFunc("/abort", func(w http.ResponseWriter, r *http.Request) {
		panic(http.ErrAbortHandler)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		<-release
		_, _ = io.WriteString(w, "slow done")
	})
	srv := startServer(t, mux, h2.Config{}, serverOpts{})
	c, dials := srv.client(t)

	// A stream in flight on the same connection while handlers panic.
	slow := make(chan string, 1)
	go func() {
		resp, err := c.Get(srv.url + "/slow")
		if err != nil {
			slow <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- string(b)
	}()

	for _, path := range []string{"/panic", "/abort", "/panic-after-flush", "/panic"} {
		resp, err := c.Get(srv.url + path)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if err == nil {
			t.Errorf("%s: the client saw a complete response", path)
		}
	}
	resp, err := c.Get(srv.url + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hello" {
		t.Errorf("after panics: %q", b)
	}
	close(release)
	if got := <-slow; got != "slow done" {
		t.Errorf("stream in flight during the panics got %q", got)
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("%d connections, want 1 (panics must not end the connection)", n)
	}
	logs := srv.log.String()
	if !strings.Contains(logs, "boom in the handler") || !strings.Contains(logs, "boom after flush") {
		t.Errorf("panics not logged: %q", logs)
	}
	if strings.Contains(logs, "abort") {
		t.Errorf("http.ErrAbortHandler logged: %q", logs)
	}
	c.Transport.(*http2.Transport).CloseIdleConnections()
	waitGoroutines(t, base+2, "after the panics")
}

func TestClientCancel(t *testing.T) {
	base := runtime.NumGoroutine()
	started := make(chan struct{}, 2)
	ctxErr := make(chan error, 1)
	readErr := make(chan error, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/wait", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		started <- struct{}{}
		select {
		case <-r.Context().Done():
			ctxErr <- r.Context().Err()
		case <-time.After(5 * time.Second):
			ctxErr <- errors.New("context not cancelled within 5s")
		}
	})
	mux.HandleFunc("/read", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		started <- struct{}{}
		_, err := io.ReadAll(r.Body)
		readErr <- err
	})
	srv := startServer(t, mux, h2.Config{}, serverOpts{})
	c, _ := srv.client(t)

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.url+"/wait", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	<-started
	cancel()
	resp.Body.Close()
	select {
	case err := <-ctxErr:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("handler's context: %v, want cancelled", err)
		}
	case <-time.After(6 * time.Second):
		t.Fatal("handler did not return")
	}

	// A handler blocked reading the body.
	ctx, cancel = context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = pw.Write([]byte("some body, never ended")) }()
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, srv.url+"/read", pr)
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	<-started
	time.Sleep(50 * time.Millisecond) // let the handler block in Read
	cancel()
	resp.Body.Close()
	select {
	case err := <-readErr:
		if err == nil {
			t.Error("body read after the client's reset ended without error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler still blocked reading the body after the client reset the stream")
	}
	c.Transport.(*http2.Transport).CloseIdleConnections()
	waitGoroutines(t, base+2, "after the cancellations")
}

func TestHeaderListTooLarge(t *testing.T) {
	srv := startServer(t, testMux(), h2.Config{MaxHeaderListSize: 8 << 10}, serverOpts{})
	c := dialRaw(t, srv.addr)
	if got := c.Settings[http2.SettingMaxHeaderListSize]; got != 8<<10 {
		t.Errorf("SETTINGS_MAX_HEADER_LIST_SIZE = %d, want 8192", got)
	}
	// Many fields, each well below the limit: a single field longer than
	// the whole list's limit is an HPACK error of the Framer's.
	var big []string
	for i := range 24 {
		big = append(big, fmt.Sprintf("x-big-%d", i), strings.Repeat("a", 500))
	}
	c.request(1, "GET", "/hello", true, big...)
	if status, _, _ := c.response(1); status != "431" {
		t.Errorf("status %s, want 431", status)
	}
	// The connection goes on.
	c.request(3, "GET", "/hello", true)
	if status, body, _ := c.response(3); status != "200" || string(body) != "hello" {
		t.Errorf("after 431: status %s body %q", status, body)
	}
}

// Malformed requests are stream errors; the connection keeps serving.
// A malformed request (RFC 9113 section 8.1.1) is a stream error
// PROTOCOL_ERROR, and the connection goes on. net/http's server answers
// some of them otherwise, as its column says: a 400, an INTERNAL_ERROR
// reset, and a method that is no token it serves. internal/h2 refuses
// each one.
func TestMalformedRequests(t *testing.T) {
	bothServers(t, func(t *testing.T, std bool) { testMalformedRequests(t, std) })
}

func testMalformedRequests(t *testing.T, stdServer bool) {
	srv := startServer(t, testMux(), h2.Config{StdHTTP2: stdServer}, serverOpts{})
	std := []string{":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/hello"}
	// The body cases go to a handler that reads the body: one that answers
	// without reading may complete its response before the DATA arrives,
	// and then the stream is closed, not malformed.
	post := []string{":method", "POST", ":scheme", "http", ":authority", "x", ":path", "/echo"}
	const refused = "RST_STREAM PROTOCOL_ERROR"
	tests := []struct {
		name   string
		fields []string
		end    bool
		data   []byte // sent with END_STREAM after the HEADERS
		net    string // net/http's answer where it is not refused's
	}{
		{"missing :path", []string{":method", "GET", ":scheme", "http", ":authority", "x"}, true, nil, ""},
		{"missing :method", []string{":scheme", "http", ":path", "/hello"}, true, nil, ""},
		{"uppercase header name", append(std[:len(std):len(std)], "X-Upper", "v"), true, nil, ""},
		{"connection header", append(std[:len(std):len(std)], "connection", "keep-alive"), true, nil, "status 400"},
		{"te other than trailers", append(std[:len(std):len(std)], "te", "gzip"), true, nil, "status 400"},
		{"content-length above DATA", append(post[:len(post):len(post)], "content-length", "10"), false, []byte("12345"), "RST_STREAM INTERNAL_ERROR"},
		{"content-length below DATA", append(post[:len(post):len(post)], "content-length", "2"), false, []byte("12345"), ""},
		{"relative :path", []string{":method", "GET", ":scheme", "http", ":path", "hello"}, true, nil, ""},
		{"pseudo-header after a regular one", []string{":method", "GET", ":scheme", "http", "x-a", "b", ":path", "/hello"}, true, nil, ""},
		{"unknown pseudo-header", append(std[:len(std):len(std)], ":status", "200"), true, nil, ""},
		{"duplicate :path", []string{":method", "GET", ":scheme", "http", ":path", "/hello", ":path", "/hello"}, true, nil, ""},
		{"control character in a value", append(std[:len(std):len(std)], "x-a", "b\x00c"), true, nil, ""},
		{"empty header name", append(std[:len(std):len(std)], "", "v"), true, nil, ""},
		{"method not a token", []string{":method", "GE T", ":scheme", "http", ":authority", "x", ":path", "/hello"}, true, nil, "status 200"},
		{"method with a control character", []string{":method", "GET\x01", ":scheme", "http", ":authority", "x", ":path", "/hello"}, true, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, srv.addr)
			c.WriteHeaders(1, tt.end, tt.fields...)
			if tt.data != nil {
				if err := c.Fr.WriteData(1, true, tt.data); err != nil {
					t.Fatal(err)
				}
			}
			want := refused
			if stdServer && tt.net != "" {
				want = tt.net
			}
			if got := c.answer(1); got != want {
				t.Errorf("stream 1: %s, want %s", got, want)
			}
			c.request(3, "GET", "/hello", true)
			if status, body, _ := c.response(3); status != "200" || string(body) != "hello" {
				t.Errorf("next stream: status %s body %q", status, body)
			}
		})
	}
}

func TestProtocolErrors(t *testing.T) {
	srv := startServer(t, testMux(), h2.Config{}, serverOpts{})

	t.Run("DATA on a closed stream", func(t *testing.T) {
		c := dialRaw(t, srv.addr)
		c.request(1, "GET", "/hello", true)
		if status, _, ended := c.response(1); status != "200" || !ended {
			t.Fatalf("status %s ended %v", status, ended)
		}
		if err := c.Fr.WriteData(1, true, []byte("late")); err != nil {
			t.Fatal(err)
		}
		c.expectRST(1, http2.ErrCodeStreamClosed)
	})
	t.Run("DATA after a malformed request's reset", func(t *testing.T) {
		c := dialRaw(t, srv.addr)
		c.request(1, "POST", "/hello", false, "X-Upper", "v")
		c.expectRST(1, http2.ErrCodeProtocol)
		if err := c.Fr.WriteData(1, true, []byte("late")); err != nil {
			t.Fatal(err)
		}
		// The stream is closed, not idle: a stream error (or nothing),
		// never the end of the connection.
		c.request(3, "GET", "/hello", true)
		for {
			f, err := c.ReadFrame(5 * time.Second)
			if err != nil {
				t.Fatalf("reading: %v", err)
			}
			if ga, ok := f.(*http2.GoAwayFrame); ok {
				t.Fatalf("GOAWAY %v for DATA on a stream the server reset: it treated the stream as idle", ga.ErrCode)
			}
			if h, ok := f.(*http2.MetaHeadersFrame); ok && h.StreamID == 3 {
				return
			}
		}
	})
	t.Run("HEADERS reusing a malformed request's stream id", func(t *testing.T) {
		c := dialRaw(t, srv.addr)
		c.request(3, "GET", "/hello", true, "X-Upper", "v")
		c.expectRST(3, http2.ErrCodeProtocol)
		c.request(3, "GET", "/hello", true)
		if ga := c.expectGoAway(); ga.ErrCode != http2.ErrCodeStreamClosed && ga.ErrCode != http2.ErrCodeProtocol {
			t.Errorf("GOAWAY %v, want STREAM_CLOSED or PROTOCOL_ERROR", ga.ErrCode)
		}
	})
	t.Run("HEADERS on a lower stream id", func(t *testing.T) {
		c := dialRaw(t, srv.addr)
		c.request(5, "GET", "/hello", true)
		if status, _, _ := c.response(5); status != "200" {
			t.Fatalf("status %s", status)
		}
		c.request(3, "GET", "/hello", true)
		ga := c.expectGoAway()
		if ga.ErrCode != http2.ErrCodeStreamClosed && ga.ErrCode != http2.ErrCodeProtocol {
			t.Errorf("GOAWAY %v, want STREAM_CLOSED or PROTOCOL_ERROR", ga.ErrCode)
		}
		if ga.LastStreamID != 5 {
			t.Errorf("GOAWAY last stream %d, want 5", ga.LastStreamID)
		}
	})
	t.Run("PING", func(t *testing.T) {
		c := dialRaw(t, srv.addr)
		payload := [8]byte{'h', '2', 't', 'e', 's', 't', 0, 9}
		if err := c.Fr.WritePing(false, payload); err != nil {
			t.Fatal(err)
		}
		for {
			f, err := c.ReadFrame(5 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if p, ok := f.(*http2.PingFrame); ok {
				if !p.IsAck() || p.Data != payload {
					t.Errorf("PING ack %v data %q, want ack of %q", p.IsAck(), p.Data, payload)
				}
				return
			}
		}
	})
	t.Run("SETTINGS", func(t *testing.T) {
		c := dialRaw(t, srv.addr)
		// dialRaw saw the ack of its first SETTINGS? Send another.
		if err := c.Fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 32 << 10}); err != nil {
			t.Fatal(err)
		}
		acks := 0
		for acks < 2 {
			f, err := c.ReadFrame(5 * time.Second)
			if err != nil {
				t.Fatalf("%d SETTINGS acks, want 2: %v", acks, err)
			}
			if sf, ok := f.(*http2.SettingsFrame); ok && sf.IsAck() {
				acks++
			}
		}
	})
	t.Run("WINDOW_UPDATE overflow on a stream", func(t *testing.T) {
		c := dialRaw(t, srv.addr)
		c.request(1, "GET", "/block", true)
		if err := c.Fr.WriteWindowUpdate(1, 1<<31-1); err != nil {
			t.Fatal(err)
		}
		c.expectRST(1, http2.ErrCodeFlowControl)
		c.request(3, "GET", "/hello", true)
		if status, _, _ := c.response(3); status != "200" {
			t.Errorf("next stream: status %s", status)
		}
	})
	t.Run("WINDOW_UPDATE overflow on the connection", func(t *testing.T) {
		c := dialRaw(t, srv.addr)
		if err := c.Fr.WriteWindowUpdate(0, 1<<31-1); err != nil {
			t.Fatal(err)
		}
		if ga := c.expectGoAway(); ga.ErrCode != http2.ErrCodeFlowControl {
			t.Errorf("GOAWAY %v, want FLOW_CONTROL_ERROR", ga.ErrCode)
		}
	})
}

func TestGracefulShutdown(t *testing.T) {
	started := make(chan struct{}, 4)
	release := make(chan struct{})
	var handled atomic.Int32
	mux := testMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		handled.Add(1)
		started <- struct{}{}
		<-release
		_, _ = io.WriteString(w, "slow done")
	})
	srv := startServer(t, mux, h2.Config{}, serverOpts{})
	c := dialRaw(t, srv.addr)
	c.request(1, "GET", "/slow", true)
	<-started

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- srv.hs.Shutdown(ctx)
	}()
	// RFC 9113 section 6.8: first a GOAWAY with the largest stream ID
	// and a PING; a stream whose HEADERS were on their way meanwhile is
	// still served.
	ga := c.expectGoAway()
	if ga.ErrCode != http2.ErrCodeNo || ga.LastStreamID != 1<<31-1 {
		t.Errorf("first GOAWAY %v last stream %d, want NO_ERROR, 2^31-1", ga.ErrCode, ga.LastStreamID)
	}
	c.request(3, "GET", "/hello", true)
	// Once the PING is answered, the final GOAWAY names the last stream.
	served3 := false
	for ga = nil; ga == nil; {
		f, err := c.ReadFrame(5 * time.Second)
		if err != nil {
			t.Fatalf("waiting for the final GOAWAY: %v", err)
		}
		switch f := f.(type) {
		case *http2.PingFrame:
			if !f.IsAck() {
				if err := c.Fr.WritePing(true, f.Data); err != nil {
					t.Fatal(err)
				}
			}
		case *http2.MetaHeadersFrame:
			served3 = served3 || f.StreamID == 3 && f.PseudoValue("status") == "200"
		case *http2.GoAwayFrame:
			ga = f
		}
	}
	if !served3 {
		if status, _, _ := c.response(3); status != "200" {
			t.Errorf("stream 3, opened between the two GOAWAYs: status %q, want 200", status)
		}
	}
	if ga.ErrCode != http2.ErrCodeNo || ga.LastStreamID != 3 {
		t.Errorf("final GOAWAY %v last stream %d, want NO_ERROR, 3", ga.ErrCode, ga.LastStreamID)
	}
	// A stream opened after the final GOAWAY is not served.
	c.request(5, "GET", "/slow", true)
	c.expectRST(5, http2.ErrCodeRefusedStream)
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a handler running", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	status, body, ended := c.response(1)
	if status != "200" || string(body) != "slow done" || !ended {
		t.Errorf("in-flight stream: status %s body %q ended %v", status, body, ended)
	}
	select {
	case err := <-shut:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return after the last stream ended")
	}
	if n := handled.Load(); n != 1 {
		t.Errorf("%d handlers ran, want 1", n)
	}
	if !c.Closed(3 * time.Second) {
		t.Error("connection still open after Shutdown")
	}
}

func TestCloseCancelsHandlers(t *testing.T) {
	base := runtime.NumGoroutine()
	started := make(chan struct{}, 1)
	ctxErr := make(chan error, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		select {
		case <-r.Context().Done():
			ctxErr <- r.Context().Err()
		case <-time.After(5 * time.Second):
			ctxErr <- errors.New("not cancelled within 5s")
		}
	})
	srv := startServer(t, mux, h2.Config{}, serverOpts{})
	c := dialRaw(t, srv.addr)
	c.request(1, "GET", "/", true)
	<-started
	if err := srv.hs.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ctxErr:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("handler's context: %v", err)
		}
	case <-time.After(6 * time.Second):
		t.Fatal("handler still running")
	}
	if !c.Closed(3 * time.Second) {
		t.Error("connection open after Close")
	}
	c.Conn.Close()
	waitGoroutines(t, base, "after Close")
}

func TestIdleTimeout(t *testing.T) {
	release := make(chan struct{})
	mux := testMux()
	mux.HandleFunc("/long", func(w http.ResponseWriter, r *http.Request) {
		<-release
		_, _ = io.WriteString(w, "long done")
	})
	srv := startServer(t, mux, h2.Config{IdleTimeout: 300 * time.Millisecond}, serverOpts{})

	idle := dialRaw(t, srv.addr)
	start := time.Now()
	ga := idle.expectGoAway()
	if ga.ErrCode != http2.ErrCodeNo {
		t.Errorf("idle GOAWAY %v, want NO_ERROR", ga.ErrCode)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 2*time.Second {
		t.Errorf("idle connection ended after %v, IdleTimeout is 300ms", d)
	}
	if !idle.Closed(2 * time.Second) {
		t.Error("idle connection still open after its GOAWAY")
	}

	busy := dialRaw(t, srv.addr)
	busy.request(1, "GET", "/long", true)
	time.AfterFunc(1200*time.Millisecond, func() { close(release) })
	status, body, _ := busy.response(1)
	if status != "200" || string(body) != "long done" {
		t.Fatalf("a stream longer than IdleTimeout: status %s body %q", status, body)
	}
	// Idle again, it ends.
	if ga := busy.expectGoAway(); ga.ErrCode != http2.ErrCodeNo || ga.LastStreamID != 1 {
		t.Errorf("GOAWAY %v last %d, want NO_ERROR 1", ga.ErrCode, ga.LastStreamID)
	}
}

// A client that grants huge windows and stops reading: the server's
// writes block on the socket, and WriteTimeout ends the connection and
// the handler's writes.
func TestWriteTimeout(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", tls), func(t *testing.T) {
			for _, chunk := range []int{4 << 10, 256 << 10} {
				t.Run(fmt.Sprintf("writes of %d", chunk), func(t *testing.T) { testWriteTimeout(t, serverOpts{tls: tls}, chunk) })
			}
		})
	}
}

func testWriteTimeout(t *testing.T, o serverOpts, chunk int) {
	base := runtime.NumGoroutine()
	type result struct {
		written int
		err     error
		at      time.Time
	}
	done := make(chan result, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		p := pattern(chunk)
		n := 0
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			k, err := w.Write(p)
			n += k
			if err == nil {
				err = http.NewResponseController(w).Flush()
			}
			if err != nil {
				done <- result{n, err, time.Now()}
				return
			}
		}
		done <- result{n, nil, time.Now()}
	})
	const writeTimeout = 300 * time.Millisecond
	obs := newRecorder()
	srv := startServer(t, mux, h2.Config{WriteTimeout: writeTimeout, Observer: obs}, o)
	huge := http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1}
	var c *rawConn
	if o.tls {
		c = &rawConn{testserver.DialH2TLS(t, srv.addr, srv.pool, huge)}
	} else {
		c = dialRaw(t, srv.addr, huge)
	}
	if err := c.Fr.WriteWindowUpdate(0, 1<<31-1-65535); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.request(1, "GET", "/", true)
	// Never read again.
	select {
	case r := <-done:
		if r.err == nil {
			t.Fatalf("handler wrote %d bytes for 15s to a client that does not read", r.written)
		}
		if d := r.at.Sub(start); d > 5*time.Second {
			t.Errorf("handler's write failed after %v (%d bytes written), WriteTimeout is %v", d, r.written, writeTimeout)
		}
		t.Logf("handler's write failed after %v, %d bytes: %v", r.at.Sub(start), r.written, r.err)
	case <-time.After(10 * time.Second):
		t.Fatal("handler still writing 10s after the client stopped reading")
	}
	if !c.Closed(5 * time.Second) {
		t.Error("connection still open")
	}
	if ping, write := obs.timeouts(); ping != 0 || write != 1 {
		t.Errorf("observed %d ping and %d write timeouts, want 0 and 1", ping, write)
	}
	c.Conn.Close()
	waitGoroutines(t, base+1, "after the write timeout")
}

// After connections end, the goroutines they used go too (idle handler
// workers within about a second).
func TestGoroutinesReturn(t *testing.T) {
	srv := startServer(t, testMux(), h2.Config{}, serverOpts{})
	time.Sleep(10 * time.Millisecond)
	base := runtime.NumGoroutine()
	for range 3 {
		c, _ := srv.client(t)
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				resp, err := c.Get(srv.url + "/download?n=100000")
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			})
		}
		wg.Wait()
		c.Transport.(*http2.Transport).CloseIdleConnections()
	}
	// Raw connections that end abruptly, mid-stream.
	for range 3 {
		rc := dialRaw(t, srv.addr)
		rc.request(1, "GET", "/block", true)
		rc.request(3, "POST", "/echo", false)
		_ = rc.Fr.WriteData(3, false, []byte("half a body"))
		rc.Conn.Close()
	}
	waitGoroutines(t, base, "after every connection closed")
}

// burst sends one GET HEADERS frame (END_STREAM) per path, on streams 1,
// 3, 5..., in a single write, so that the server reads them together.
func (c *rawConn) burst(paths ...string) {
	c.T.Helper()
	var buf bytes.Buffer
	fr := http2.NewFramer(&buf, nil)
	for i, path := range paths {
		block := c.HeaderBlock(":method", "GET", ":scheme", "http", ":authority", "h2test", ":path", path)
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), BlockFragment: block, EndHeaders: true, EndStream: true})
	}
	if _, err := c.Conn.Write(buf.Bytes()); err != nil {
		c.T.Fatal(err)
	}
}

// awaitEnds reads until n streams have ended.
func (c *rawConn) awaitEnds(n int) {
	c.T.Helper()
	for ended := 0; ended < n; {
		f, err := c.ReadFrame(10 * time.Second)
		if err != nil {
			c.T.Fatalf("after %d of %d responses: %v", ended, n, err)
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			if f.StreamEnded() {
				ended++
			}
		case *http2.DataFrame:
			if f.StreamEnded() {
				ended++
			}
		case *http2.RSTStreamFrame:
			c.T.Fatalf("stream %d reset: %v", f.StreamID, f.ErrCode)
		}
	}
}

// A burst of requests runs in the order the requests arrived. On one P,
// where handlers on goroutines of their own would run in the scheduler's
// order (the last one readied first).
func TestHandlersRunInArrivalOrder(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	// A GC stop between a worker taking a stream and its handler's first
	// line could let the next worker's handler record first.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	var mu sync.Mutex
	var order []int
	mux := http.NewServeMux()
	mux.HandleFunc("/n/{i}", func(w http.ResponseWriter, r *http.Request) {
		i, _ := strconv.Atoi(r.PathValue("i"))
		mu.Lock()
		order = append(order, i)
		mu.Unlock()
	})
	srv := startServer(t, mux, h2.Config{}, serverOpts{})
	c := dialRaw(t, srv.addr)
	const n = 20
	paths := make([]string, n)
	for i := range paths {
		paths[i] = "/n/" + strconv.Itoa(i)
	}
	c.burst(paths...)
	c.awaitEnds(n)
	mu.Lock()
	defer mu.Unlock()
	if len(order) != n {
		t.Fatalf("%d handlers ran, want %d", len(order), n)
	}
	for i, got := range order {
		if got != i {
			t.Fatalf("handlers ran in the order %v, want the requests' order", order)
		}
	}
}

// A handler that blocks holds its own worker, not the streams queued
// behind it: each of a burst of blocking handlers starts while the ones
// before it still wait. One P makes the server read the whole burst
// before any worker runs.
func TestBlockedHandlersLeaveTheQueue(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	release := make(chan struct{})
	started := make(chan struct{}, 64)
	mux := http.NewServeMux()
	mux.HandleFunc("/hold", func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	srv := startServer(t, mux, h2.Config{}, serverOpts{})
	c := dialRaw(t, srv.addr)
	const n = 40
	c.burst(slices.Repeat([]string{"/hold"}, n)...)
	awaitStarted(t, started, n)
	close(release)
	c.awaitEnds(n)
	if srv.h2.WorkersRescued() == 0 {
		t.Errorf("%d handlers blocked on the server's side started with a limit of %d counted handlers, but the pool never stopped counting them", n, srv.h2.WorkerLimit())
	}
}

// A handler that says it is about to wait on the server's side
// (waits.Begin, as the team store does before a commit) counts no more:
// a burst of them, beyond the limit, each starts without a rescue.
func TestHandlersThatSayTheyWaitDoNotCount(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	release := make(chan struct{})
	started := make(chan struct{}, 64)
	mux := http.NewServeMux()
	mux.HandleFunc("/commit", func(w http.ResponseWriter, r *http.Request) {
		// Beneath the contexts a handler derives, as connect's is.
		ctx, cancel := context.WithTimeout(context.WithValue(r.Context(), struct{ k int }{1}, 1), time.Minute)
		defer cancel()
		started <- struct{}{}
		waits.Begin(ctx)
		select {
		case <-release:
		case <-ctx.Done():
		}
	})
	srv := startServer(t, mux, h2.Config{}, serverOpts{})
	c := dialRaw(t, srv.addr)
	n := min(5*srv.h2.WorkerLimit(), 60)
	c.burst(slices.Repeat([]string{"/commit"}, n)...)
	awaitStarted(t, started, n)
	wantNoRescue(t, srv, n, "that said they wait")
	close(release)
	c.awaitEnds(n)
}

// Handlers that yield without waiting (as a handler does when its lock is
// contended or the connection's writer takes its response) each let the
// next worker start: without a bound that chain ran a worker, and its
// grown stack, per stream in flight. The pool runs at most its limit of
// them at once, and more only after a rescue (each rescue lets up to the
// limit more start).
func TestYieldingHandlersAreBounded(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var inflight, most atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/yield", func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		for range 20 {
			runtime.Gosched()
		}
		inflight.Add(-1)
	})
	srv := startServer(t, mux, h2.Config{}, serverOpts{})
	limit := srv.h2.WorkerLimit()
	c := dialRaw(t, srv.addr)
	const n = 90
	c.burst(slices.Repeat([]string{"/yield"}, n)...)
	c.awaitEnds(n)
	rescued := srv.h2.WorkersRescued()
	if got, bound := int(most.Load()), limit*(1+int(rescued)); got > bound {
		t.Fatalf("%d handlers ran at once, want at most %d (a limit of %d, %d rescues)", got, bound, limit, rescued)
	}
	if limit >= n {
		t.Fatalf("the pool's limit %d does not bound a burst of %d", limit, n)
	}
}

// A handler waiting for its client does not count against the limit:
// streams whose handlers wait for the request body's next bytes, or for
// send window, each get a worker at once, without a rescue.
func TestHandlersWaitingForTheClientDoNotCount(t *testing.T) {
	for _, wait := range []string{"body", "window"} {
		t.Run(wait, func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
			started := make(chan struct{}, 64)
			mux := http.NewServeMux()
			mux.HandleFunc("/wait", func(w http.ResponseWriter, r *http.Request) {
				started <- struct{}{}
				if wait == "body" {
					_, _ = io.Copy(io.Discard, r.Body)
					return
				}
				_, _ = w.Write(make([]byte, 100))
			})
			srv := startServer(t, mux, h2.Config{}, serverOpts{})
			// With "window" the client opens no send window: each
			// handler's write waits for it.
			c := dialRaw(t, srv.addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
			n := min(5*srv.h2.WorkerLimit(), 60)
			for i := range n {
				c.request(uint32(2*i+1), "POST", "/wait", wait != "body")
			}
			awaitStarted(t, started, n)
			wantNoRescue(t, srv, n, "waiting for their client")
			for i := range n {
				if wait == "body" {
					if err := c.Fr.WriteData(uint32(2*i+1), true, nil); err != nil {
						t.Fatal(err)
					}
				} else if err := c.Fr.WriteWindowUpdate(uint32(2*i+1), 100); err != nil {
					t.Fatal(err)
				}
			}
			c.awaitEnds(n)
		})
	}
}

// Nor does a handler waiting because its client reads nothing: with the
// connection's pending output full, each handler's write waits for room,
// and every stream still gets a worker without a rescue.
func TestHandlersWaitingForANonReadingClientDoNotCount(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	started := make(chan struct{}, 64)
	mux := http.NewServeMux()
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		_, _ = w.Write(make([]byte, 64<<10))
	})
	srv := startServer(t, mux, h2.Config{}, serverOpts{})
	_, fr := dialNonReading(t, srv.addr)
	// Windows wide enough that only the unread bytes hold the handlers.
	if err := fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteSettingsAck(); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteWindowUpdate(0, 64<<20); err != nil {
		t.Fatal(err)
	}
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	n := min(5*srv.h2.WorkerLimit(), 60) // 40 x 64 KiB: several times the pending output's bound
	for i := range n {
		hbuf.Reset()
		for _, kv := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "h2test"}, {":path", "/big"}} {
			_ = enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
		}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), BlockFragment: hbuf.Bytes(), EndHeaders: true, EndStream: true}); err != nil {
			t.Fatal(err)
		}
	}
	awaitStarted(t, started, n)
	wantNoRescue(t, srv, n, "waiting for a client that reads nothing")
}

// awaitStarted waits for n handlers to say they started.
func awaitStarted(t *testing.T, started <-chan struct{}, n int) {
	t.Helper()
	for i := range n {
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d handlers started; the other streams found no worker", i, n)
		}
	}
}

// wantNoRescue: more handlers started than the pool's limit counts, so
// those waiting left the count; none needed the rescue.
func wantNoRescue(t *testing.T, srv *testServer, n int, which string) {
	t.Helper()
	if r := srv.h2.WorkersRescued(); r != 0 {
		t.Errorf("%d handlers %s took %d rescues, want none (a limit of %d)", n, which, r, srv.h2.WorkerLimit())
	}
}

// rawConn is a client connection that writes frames with http2.Framer.
type rawConn struct{ *testserver.H2Conn }

// dialRaw opens a prior-knowledge h2c connection and exchanges SETTINGS.
func dialRaw(t *testing.T, addr string, settings ...http2.Setting) *rawConn {
	t.Helper()
	return &rawConn{testserver.DialH2(t, addr, settings...)}
}

// request opens stream id with a request and extra header pairs.
func (c *rawConn) request(id uint32, method, path string, endStream bool, extra ...string) {
	c.T.Helper()
	kv := append([]string{":method", method, ":scheme", "http", ":authority", "h2test", ":path", path}, extra...)
	c.WriteHeaders(id, endStream, kv...)
}

// headerBlock is one HEADERS block of a response as it came on the wire:
// an informational response, the final one, or trailers.
type headerBlock struct {
	status string              // "" for trailers
	fields map[string][]string // by the name as sent (lower case)
	ended  bool
}

// readResponse reads stream id's frames until the stream ends: its header
// blocks in order and its body. It stops with an error, and what came
// until then, when the stream is reset, the connection goes away with an
// error, or nothing comes for 5 s.
func (c *rawConn) readResponse(id uint32) (blocks []headerBlock, body []byte, err error) {
	for {
		f, err := c.ReadFrame(5 * time.Second)
		if err != nil {
			return blocks, body, fmt.Errorf("reading stream %d's response: %v", id, err)
		}
		if f.Header().StreamID != id {
			if ga, ok := f.(*http2.GoAwayFrame); ok && ga.ErrCode != http2.ErrCodeNo {
				return blocks, body, fmt.Errorf("GOAWAY %v while reading stream %d", ga.ErrCode, id)
			}
			continue
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			b := headerBlock{fields: map[string][]string{}, ended: f.StreamEnded()}
			for _, hf := range f.Fields {
				if hf.Name == ":status" {
					b.status = hf.Value
				} else {
					b.fields[hf.Name] = append(b.fields[hf.Name], hf.Value)
				}
			}
			blocks = append(blocks, b)
			if b.ended {
				return blocks, body, nil
			}
		case *http2.DataFrame:
			body = append(body, f.Data()...)
			if f.StreamEnded() {
				return blocks, body, nil
			}
		case *http2.RSTStreamFrame:
			return blocks, body, fmt.Errorf("stream %d reset: %v", id, f.ErrCode)
		}
	}
}

// responseWithHeader reads stream id's response until it ends, the stream
// is reset or nothing comes for 5 s: the first status, the fields of all
// its blocks (the last value of each name) and its body.
func (c *rawConn) responseWithHeader(id uint32) (status string, header map[string]string, body []byte, ended bool) {
	c.T.Helper()
	blocks, body, err := c.readResponse(id)
	header = map[string]string{}
	for _, b := range blocks {
		if status == "" {
			status = b.status
		}
		for name, vv := range b.fields {
			header[name] = vv[len(vv)-1]
		}
	}
	if err != nil {
		c.T.Error(err)
	}
	return status, header, body, err == nil
}

func (c *rawConn) response(id uint32) (status string, body []byte, ended bool) {
	c.T.Helper()
	status, _, body, ended = c.responseWithHeader(id)
	return
}

// answer reads until stream id is answered or reset: "status N" or
// "RST_STREAM CODE".
func (c *rawConn) answer(id uint32) string {
	c.T.Helper()
	for {
		f, err := c.ReadFrame(5 * time.Second)
		if err != nil {
			c.T.Fatalf("waiting for an answer on stream %d: %v", id, err)
		}
		if f.Header().StreamID != id {
			continue
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			return "status " + f.PseudoValue("status")
		case *http2.RSTStreamFrame:
			return "RST_STREAM " + f.ErrCode.String()
		}
	}
}

// expectRST reads until stream id is reset, and fails unless with code.
func (c *rawConn) expectRST(id uint32, code http2.ErrCode) {
	c.T.Helper()
	for {
		f, err := c.ReadFrame(5 * time.Second)
		if err != nil {
			c.T.Fatalf("waiting for RST_STREAM %v on stream %d: %v", code, id, err)
		}
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				if f.ErrCode != code {
					c.T.Errorf("RST_STREAM %v on stream %d, want %v", f.ErrCode, id, code)
				}
				return
			}
		case *http2.GoAwayFrame:
			c.T.Fatalf("GOAWAY %v (last stream %d) waiting for RST_STREAM %v on stream %d", f.ErrCode, f.LastStreamID, code, id)
		case *http2.MetaHeadersFrame:
			if f.StreamID == id {
				c.T.Fatalf("stream %d got a response (%v), want RST_STREAM %v", id, f.Fields, code)
			}
		}
	}
}

// expectGoAway reads until a GOAWAY and returns it.
func (c *rawConn) expectGoAway() *http2.GoAwayFrame {
	c.T.Helper()
	for {
		f, err := c.ReadFrame(5 * time.Second)
		if err != nil {
			c.T.Fatalf("waiting for GOAWAY: %v", err)
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			return ga
		}
	}
}

// A handler that writes more than the Content-Length it declared gets an
// error, and the client a response of the declared length (as net/http).
func TestDeclaredContentLengthEnforced(t *testing.T) {
	writeErr := make(chan error, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "3")
		_, err := io.WriteString(w, "hello")
		writeErr <- err
	})
	srv := startServer(t, mux, h2.Config{}, serverOpts{})
	c := dialRaw(t, srv.addr)
	c.request(1, "GET", "/", true)
	status, hdr, body, ended := c.responseWithHeader(1)
	if err := <-writeErr; err == nil {
		t.Error("writing 5 bytes after declaring Content-Length: 3 succeeded")
	}
	if status != "200" || hdr["content-length"] != "3" || len(body) > 3 {
		t.Errorf("status %s, content-length %q, body %q (ended %v): the body overruns its declared length", status, hdr["content-length"], body, ended)
	}
}

// Response headers larger than the client's frame size go out in
// CONTINUATION frames; a client without an HPACK dynamic table is obeyed.
func TestLargeResponseHeaders(t *testing.T) {
	big := strings.Repeat("v", 40<<10)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Big", big)
		w.Header().Set("X-Repeated", "the same value each time")
		_, _ = io.WriteString(w, "ok")
	})
	srv := startServer(t, mux, h2.Config{}, serverOpts{})
	c := dialRaw(t, srv.addr, http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0})
	c.Fr.ReadMetaHeaders = hpack.NewDecoder(0, nil)
	for id := uint32(1); id <= 5; id += 2 {
		c.request(id, "GET", "/", true)
		status, hdr, body, _ := c.responseWithHeader(id)
		if status != "200" || hdr["x-big"] != big || hdr["x-repeated"] == "" || string(body) != "ok" {
			t.Fatalf("stream %d: status %s, x-big %d bytes, body %q", id, status, len(hdr["x-big"]), body)
		}
	}
}

func TestMaxConcurrentStreams(t *testing.T) {
	srv := startServer(t, testMux(), h2.Config{MaxConcurrentStreams: 2}, serverOpts{})
	c := dialRaw(t, srv.addr)
	if got := c.Settings[http2.SettingMaxConcurrentStreams]; got != 2 {
		t.Errorf("SETTINGS_MAX_CONCURRENT_STREAMS = %d, want 2", got)
	}
	c.request(1, "GET", "/block", true)
	c.request(3, "GET", "/block", true)
	c.request(5, "GET", "/hello", true)
	c.expectRST(5, http2.ErrCodeRefusedStream)
	// Once a stream ends, another may start.
	_ = c.Fr.WriteRSTStream(1, http2.ErrCodeCancel)
	deadline := time.Now().Add(5 * time.Second)
	for id := uint32(7); ; id += 2 {
		c.request(id, "GET", "/hello", true)
		f, err := c.ReadFrame(5 * time.Second)
		for err == nil {
			if f.Header().StreamID == id {
				break
			}
			f, err = c.ReadFrame(5 * time.Second)
		}
		if err != nil {
			t.Fatal(err)
		}
		if h, ok := f.(*http2.MetaHeadersFrame); ok && h.PseudoValue("status") == "200" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %d: %v, still refused after a stream was reset", id, f)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A silent connection is pinged; one that does not answer is closed.
func TestPingTimeout(t *testing.T) {
	obs := newRecorder()
	srv := startServer(t, testMux(), h2.Config{SendPingTimeout: 200 * time.Millisecond, PingTimeout: 300 * time.Millisecond, Observer: obs}, serverOpts{})
	c := dialRaw(t, srv.addr)
	start := time.Now()
	var ping *http2.PingFrame
	for ping == nil {
		f, err := c.ReadFrame(3 * time.Second)
		if err != nil {
			t.Fatalf("no PING from the server: %v", err)
		}
		ping, _ = f.(*http2.PingFrame)
	}
	if ping.IsAck() {
		t.Fatal("server sent a PING ack unasked")
	}
	// Answered, the connection lives on and is pinged again.
	if err := c.Fr.WritePing(true, ping.Data); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := c.ReadFrame(3 * time.Second)
		if err != nil {
			t.Fatalf("connection ended though the PING was answered: %v", err)
		}
		if p, ok := f.(*http2.PingFrame); ok && !p.IsAck() {
			break
		}
	}
	// Unanswered, it is closed, and the Observer is told why.
	if !c.Closed(3 * time.Second) {
		t.Fatal("connection that ignores PINGs still open")
	}
	if ping, write := obs.timeouts(); ping != 1 || write != 0 {
		t.Errorf("observed %d ping and %d write timeouts, want 1 and 0", ping, write)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("closed after %v", d)
	}
}

// Streams reset with request data the handler never read give that data's
// connection window back: otherwise each such reset shrinks the window
// for good, and the client's next uploads overrun it (FLOW_CONTROL_ERROR).
func TestResetStreamsReturnWindow(t *testing.T) {
	srv := startServer(t, testMux(), h2.Config{MaxReceiveBufferPerConnection: 65535, MaxReceiveBufferPerStream: 65535}, serverOpts{})
	c := dialRaw(t, srv.addr)
	chunk := pattern(16 << 10)
	for i := range uint32(8) { // 128 KiB in all, twice the connection window
		id := 2*i + 1
		c.request(id, "POST", "/block", false)
		if err := c.Fr.WriteData(id, false, chunk); err != nil {
			t.Fatal(err)
		}
		if err := c.Fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
			t.Fatal(err)
		}
	}
	c.request(17, "POST", "/echo", false)
	if err := c.Fr.WriteData(17, true, chunk); err != nil {
		t.Fatal(err)
	}
	status, body, ended := c.response(17)
	if status != "200" || !bytes.Equal(body, chunk) || !ended {
		t.Fatalf("upload after resets: status %q, %d bytes, ended %v; want 200 and the 16 KiB echoed", status, len(body), ended)
	}
}

// A stream's context: LimitDuration gives it a deadline (never a later
// one), contexts derived from it see its end, and outside a stream
// LimitDuration reports false.
func TestStreamContext(t *testing.T) {
	if h2.LimitDuration(context.Background(), time.Second) {
		t.Error("LimitDuration took a context that is not a stream's")
	}
	type seen struct {
		limited, shorter                  bool
		deadlineIn                        time.Duration
		err, derivedErr, derivedCancelErr error
		cause, derivedCause               error
		after                             time.Duration
		server                            any
	}
	results := make(chan seen, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/limited", func(w http.ResponseWriter, r *http.Request) {
		var s seen
		start := time.Now()
		ctx := context.WithValue(r.Context(), struct{}{}, "as connect does")
		s.limited = h2.LimitDuration(ctx, 100*time.Millisecond)
		s.shorter = h2.LimitDuration(ctx, time.Hour) // does not extend
		if d, ok := ctx.Deadline(); ok {
			s.deadlineIn = time.Until(d)
		}
		derived, cancel := context.WithCancel(ctx)
		defer cancel()
		<-derived.Done()
		s.after = time.Since(start)
		s.err, s.derivedErr = ctx.Err(), derived.Err()
		results <- s
	})
	mux.HandleFunc("/reset", func(w http.ResponseWriter, r *http.Request) {
		derived, cancel := context.WithTimeout(r.Context(), time.Hour)
		defer cancel()
		<-derived.Done()
		results <- seen{
			derivedCancelErr: derived.Err(), err: r.Context().Err(),
			cause: context.Cause(r.Context()), derivedCause: context.Cause(derived),
			server: r.Context().Value(http.ServerContextKey),
		}
	})
	srv := startServer(t, mux, h2.Config{}, serverOpts{})
	base := runtime.NumGoroutine()

	c := dialRaw(t, srv.addr)
	c.request(1, "GET", "/limited", true)
	s := <-results
	if !s.limited || !s.shorter {
		t.Errorf("LimitDuration on a stream's context = %v, %v; want true", s.limited, s.shorter)
	}
	if s.deadlineIn <= 0 || s.deadlineIn > 100*time.Millisecond {
		t.Errorf("deadline in %v, want within 100ms (the later limit must not extend it)", s.deadlineIn)
	}
	if !errors.Is(s.err, context.DeadlineExceeded) || !errors.Is(s.derivedErr, context.DeadlineExceeded) || s.after < 90*time.Millisecond {
		t.Errorf("after %v: context %v, derived %v; want deadline exceeded after ~100ms", s.after, s.err, s.derivedErr)
	}

	c.request(3, "POST", "/reset", false)
	time.Sleep(50 * time.Millisecond)
	if err := c.Fr.WriteRSTStream(3, http2.ErrCodeCancel); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-results:
		if !errors.Is(s.err, context.Canceled) || !errors.Is(s.derivedCancelErr, context.Canceled) {
			t.Errorf("after RST_STREAM: context %v, derived %v; want canceled", s.err, s.derivedCancelErr)
		}
		// The connection is alive: its context's cause must not stand
		// in for the stream's, while its values are the stream's.
		if !errors.Is(s.cause, context.Canceled) || !errors.Is(s.derivedCause, context.Canceled) {
			t.Errorf("after RST_STREAM: context.Cause %v, of the derived %v; want canceled", s.cause, s.derivedCause)
		}
		if s.server != srv.hs {
			t.Errorf("the stream's context holds http.ServerContextKey %v, want the connection's server %p", s.server, srv.hs)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a context derived from the stream's did not end with the stream")
	}
	c.Conn.Close()
	waitGoroutines(t, base, "after the streams ended")
}

// Contexts derived from a Linked handler context need no goroutine each
// and end with the stream, with its error; those cancelled first keep
// their own. Linked over a context with a cancellation of its own above
// the stream's, not the context package's, ends children with it.
func TestLinkedContext(t *testing.T) {
	if ctx := context.Background(); h2.Linked(ctx) != ctx {
		t.Error("Linked wrapped a context that is not a stream's")
	}
	const n = 50
	type seen struct {
		unlinkedGrew, linkedGrew int
		ownErr                   error
		errs                     []error
	}
	results := make(chan seen, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/derive", func(w http.ResponseWriter, r *http.Request) {
		var s seen
		ctx := context.WithValue(r.Context(), struct{}{}, "as connect does")
		// Deriving from ctx as it is costs a goroutine per child (the
		// control: it shows what the count measures).
		before := contextWatchers()
		for range n {
			_, cancel := context.WithCancel(ctx)
			defer cancel()
		}
		s.unlinkedGrew = contextWatchers() - before

		linked := h2.Linked(ctx)
		before = contextWatchers()
		children := make([]context.Context, n)
		for i := range children {
			child, cancel := context.WithCancel(linked)
			children[i] = child
			if i%2 == 1 {
				cancel() // unregisters from the stream
			} else {
				defer cancel()
			}
		}
		s.linkedGrew = contextWatchers() - before

		own := ownCancel{Context: ctx, done: make(chan struct{})}
		ownChild, cancel := context.WithCancel(h2.Linked(own))
		defer cancel()
		close(own.done)
		select {
		case <-ownChild.Done():
			s.ownErr = ownChild.Err()
		case <-time.After(5 * time.Second):
		}

		h2.LimitDuration(ctx, 50*time.Millisecond)
		<-r.Context().Done()
		for _, child := range children {
			<-child.Done()
			s.errs = append(s.errs, child.Err())
		}
		results <- s
	})
	srv := startServer(t, mux, h2.Config{}, serverOpts{})
	c := dialRaw(t, srv.addr)
	c.request(1, "GET", "/derive", true)
	var s seen
	select {
	case s = <-results:
	case <-time.After(5 * time.Second):
		t.Fatal("contexts derived from a linked context did not end with the stream")
	}
	if s.unlinkedGrew < n {
		t.Errorf("control: %d children of the unlinked context added %d goroutines, want >= %d", n, s.unlinkedGrew, n)
	}
	if s.linkedGrew != 0 {
		t.Errorf("%d children of the linked context added %d goroutines, want none", n, s.linkedGrew)
	}
	if !errors.Is(s.ownErr, context.Canceled) {
		t.Errorf("a child of Linked over a context cancelled before its stream: %v, want canceled with it", s.ownErr)
	}
	for i, err := range s.errs {
		want := context.DeadlineExceeded // the stream's
		if i%2 == 1 {
			want = context.Canceled // its own, first
		}
		if !errors.Is(err, want) {
			t.Errorf("child %d: %v, want %v", i, err, want)
		}
	}
}

// contextWatchers counts the goroutines the context package has started to
// carry a parent's cancellation to a child. Counting only these, not
// runtime.NumGoroutine, keeps the count exact while the process's other
// goroutines come and go (a server from the test before being shut down,
// a connection's own goroutines).
func contextWatchers() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	return bytes.Count(buf, []byte("\ncreated by context.(*cancelCtx).propagateCancel"))
}

// ownCancel is a cancelable context of a kind the context package does not
// know.
type ownCancel struct {
	context.Context
	done chan struct{}
}

func (c ownCancel) Done() <-chan struct{} { return c.done }

func (c ownCancel) Err() error {
	select {
	case <-c.done:
		return context.Canceled
	default:
		return nil
	}
}

// Deadlines from LimitDuration on one connection: those that fall in
// arrival order share the connection's timer, one that falls earlier than
// the last listed gets its own, a stream that ends first leaves the others
// alone, and each stream's context ends at its own deadline.
func TestStreamDeadlines(t *testing.T) {
	type ended struct {
		limit, after time.Duration
		err          error
	}
	results := make(chan ended, 8)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("d"))
		if err != nil {
			t.Error(err)
			return
		}
		start := time.Now()
		h2.LimitDuration(r.Context(), d)
		if r.URL.Query().Has("return") {
			return // ends long before its deadline
		}
		<-r.Context().Done()
		results <- ended{d, time.Since(start), r.Context().Err()}
	})
	srv := startServer(t, h, h2.Config{}, serverOpts{})
	base := runtime.NumGoroutine()
	c := dialRaw(t, srv.addr)
	c.request(1, "GET", "/?d=30ms&return", true)
	if status, _, ended := c.response(1); status != "200" || !ended {
		t.Fatalf("the stream that returns: status %q, ended %v", status, ended)
	}
	// 300ms and 700ms join the list in order; 100ms and 200ms fall before
	// the last listed and get timers of their own.
	for i, d := range []string{"300ms", "100ms", "700ms", "200ms"} {
		c.request(uint32(3+2*i), "GET", "/?d="+d, true)
	}
	seen := map[time.Duration]bool{}
	for range 4 {
		select {
		case e := <-results:
			if !errors.Is(e.err, context.DeadlineExceeded) || e.after < e.limit || e.after > e.limit+250*time.Millisecond {
				t.Errorf("limit %v: context ended after %v with %v, want deadline exceeded at the limit", e.limit, e.after, e.err)
			}
			seen[e.limit] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("streams whose deadline passed are still running (ended: %v)", seen)
		}
	}
	if len(seen) != 4 {
		t.Errorf("deadlines seen %v, want four different ones", seen)
	}
	c.Conn.Close()
	waitGoroutines(t, base, "after the connection closed")
}

// A stream's deadline, which its client chose (an hour, say), takes a
// timer of its own (LimitStreamDuration): in the connection's list it
// would be the last, and every unary limit after it, falling before it,
// would take a timer of its own while the stream lasts. The second case
// shows that, with the stream's deadline listed.
func TestStreamDeadlineLeavesTheListInOrder(t *testing.T) {
	for _, tc := range []struct {
		limit      func(context.Context, time.Duration) bool
		wantListed bool
	}{{h2.LimitStreamDuration, true}, {h2.LimitDuration, false}} {
		started := make(chan struct{})
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/stream" {
				tc.limit(r.Context(), time.Hour)
				close(started)
				<-r.Context().Done()
				return
			}
			h2.LimitDuration(r.Context(), 30*time.Second)
			fmt.Fprint(w, h2.Listed(r.Context()))
		})
		srv := startServer(t, h, h2.Config{}, serverOpts{})
		c := dialRaw(t, srv.addr)
		c.request(1, "POST", "/stream", false)
		<-started
		c.request(3, "GET", "/unary", true)
		if status, body, _ := c.response(3); status != "200" || string(body) != fmt.Sprint(tc.wantListed) {
			t.Errorf("a unary limit after a stream's hour: %s, listed %s, want %v", status, body, tc.wantListed)
		}
		c.Conn.Close()
	}
}

// gatedConn holds its socket writes after the first `open` ones until
// release is closed.
type gatedConn struct {
	net.Conn
	writes  *atomic.Int32
	open    int32
	release chan struct{}
}

func (c gatedConn) Write(p []byte) (int, error) {
	if c.writes.Add(1) > c.open {
		<-c.release
	}
	return c.Conn.Write(p)
}

// The flushes of one stream that pile up while the socket is busy go out
// as one DATA frame, END_STREAM included: a server stream that flushes
// every message (as connect does) costs no frame per message under load.
func TestPendingDataFramesMerge(t *testing.T) {
	release := make(chan struct{})
	flushed := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		for range 3 {
			_, _ = io.WriteString(w, "part")
			w.(http.Flusher).Flush() // the first goes to the socket, which then blocks
		}
		close(flushed)
	})
	var writes atomic.Int32
	srv := startServer(t, mux, h2.Config{}, serverOpts{wrap: func(c net.Conn) net.Conn {
		// Open for the server's SETTINGS and the ACK of the client's.
		return gatedConn{Conn: c, writes: &writes, open: 2, release: release}
	}})
	c := dialRaw(t, srv.addr)
	time.Sleep(50 * time.Millisecond) // the SETTINGS ACK is out
	c.request(1, "GET", "/", true)
	<-flushed
	time.Sleep(50 * time.Millisecond) // the handler has returned and ended the stream
	close(release)
	var frames []string
	var body []byte
	for {
		f, err := c.ReadFrame(5 * time.Second)
		if err != nil {
			t.Fatalf("after %v: %v", frames, err)
		}
		if d, ok := f.(*http2.DataFrame); ok {
			frames = append(frames, fmt.Sprintf("%q end=%v", d.Data(), d.StreamEnded()))
			body = append(body, d.Data()...)
			if d.StreamEnded() {
				break
			}
		}
	}
	// At least the second and third part and the end were pending together
	// behind the held write: one frame, not three.
	if string(body) != "partpartpart" || len(frames) > 2 {
		t.Errorf("DATA frames %v, want the parts in two frames at most", frames)
	}
}

// A request whose handler answered before its declared body arrived: the
// rest of the body may still be on the wire, so the stream waits for it,
// and a length the body then breaks is the malformed request it is (RFC
// 9113 section 8.1.1; h2spec 8.1.2.6/1 and /2, which raced the late reset
// when the reader had drained its buffer before the body came). A body
// that never comes is still ended with NO_ERROR, after a watchdog tick.
// (net/http's server resets such a stream as soon as its response ends.)
func TestContentLengthAfterTheResponse(t *testing.T) {
	srv := startServer(t, testMux(), h2.Config{}, serverOpts{})
	for _, tc := range []struct {
		name string
		data []byte // sent with END_STREAM after the response
	}{
		{"more than declared", []byte("0123456789ab")},
		{"less than declared", []byte("0123")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, srv.addr)
			c.request(1, "POST", "/hello", false, "content-length", "10")
			if status, body, ended := c.response(1); status != "200" || string(body) != "hello" || !ended {
				t.Fatalf("response: status %s body %q ended %v", status, body, ended)
			}
			// The server reads the PING and finds nothing more to read:
			// where it sent the late reset then, the DATA met a closed
			// stream.
			c.pingAcked()
			if err := c.Fr.WriteData(1, true, tc.data); err != nil {
				t.Fatal(err)
			}
			c.expectRST(1, http2.ErrCodeProtocol)
		})
	}
	t.Run("held streams are bounded", func(t *testing.T) {
		// At most MaxConcurrentStreams wait: the third is reset at once,
		// long before a tick (7.5s with these defaults).
		srv := startServer(t, testMux(), h2.Config{MaxConcurrentStreams: 2}, serverOpts{})
		c := dialRaw(t, srv.addr)
		for _, id := range []uint32{1, 3, 5} {
			c.request(id, "POST", "/hello", false, "content-length", "10")
			if status, _, ended := c.response(id); status != "200" || !ended {
				t.Fatalf("stream %d: status %s ended %v", id, status, ended)
			}
		}
		if err := c.Fr.WritePing(false, [8]byte{}); err != nil {
			t.Fatal(err)
		}
		c.expectRST(5, http2.ErrCodeNo)
	})
	t.Run("no body", func(t *testing.T) {
		// Pings after 200ms of silence: the watchdog looks every 100ms.
		srv := startServer(t, testMux(), h2.Config{SendPingTimeout: 200 * time.Millisecond, PingTimeout: 5 * time.Second}, serverOpts{})
		c := dialRaw(t, srv.addr)
		c.request(1, "POST", "/hello", false, "content-length", "10")
		if status, _, ended := c.response(1); status != "200" || !ended {
			t.Fatalf("response: status %s ended %v", status, ended)
		}
		start := time.Now()
		c.expectRST(1, http2.ErrCodeNo)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("the late reset took %v; want it after a tick or two (100ms each)", d)
		}
	})
}

// pingAcked sends a PING and reads until its ACK, failing on a reset or
// GOAWAY meanwhile.
func (c *rawConn) pingAcked() {
	c.T.Helper()
	payload := [8]byte{'l', 'a', 't', 'e'}
	if err := c.Fr.WritePing(false, payload); err != nil {
		c.T.Fatal(err)
	}
	for {
		f, err := c.ReadFrame(5 * time.Second)
		if err != nil {
			c.T.Fatalf("waiting for the PING's ACK: %v", err)
		}
		switch f := f.(type) {
		case *http2.PingFrame:
			if f.IsAck() && f.Data == payload {
				return
			}
		case *http2.RSTStreamFrame:
			c.T.Fatalf("RST_STREAM %v on stream %d before the PING's ACK", f.ErrCode, f.StreamID)
		case *http2.GoAwayFrame:
			c.T.Fatalf("GOAWAY %v before the PING's ACK", f.ErrCode)
		}
	}
}
