package h2_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/switchyard/switchyard/internal/h2"
)

// FuzzFrames sends arbitrary bytes as a client's frames, after a valid
// preface and SETTINGS, to a live server: whatever they are, the server
// must not panic or wedge, and must go on serving other connections.
func FuzzFrames(f *testing.F) {
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello")
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		n, _ := io.Copy(w, r.Body)
		w.Header().Set("X-Sum", string(rune('a'+n%26)))
	})
	srv := startServer(f, mux, h2.Config{MaxConcurrentStreams: 8, MaxHeaderListSize: 4 << 10, MaxReadFrameSize: 16 << 10}, serverOpts{})
	for _, seed := range frameSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, frames []byte) {
		nc, err := net.Dial("tcp", srv.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
		var start bytes.Buffer
		start.WriteString(http2.ClientPreface)
		_ = http2.NewFramer(&start, nil).WriteSettings()
		if _, err := nc.Write(append(start.Bytes(), frames...)); err != nil {
			return // the server may close on a connection error while we write
		}
		_ = nc.(*net.TCPConn).CloseWrite()
		// The server answers, ends the connection, or both; it does not
		// leave it hanging once the client is done.
		if _, err := io.Copy(io.Discard, nc); err != nil {
			if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the server kept the connection open 5 s after the client's last frame")
			}
		}
		c := dialRaw(t, srv.addr)
		c.request(1, "GET", "/hello", true)
		if status, body, _ := c.response(1); status != "200" || string(body) != "hello" {
			t.Fatalf("the next connection got status %q body %q", status, body)
		}
	})
}

// frameSeeds are well-formed and nearly well-formed frame sequences.
func frameSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	var seeds [][]byte
	build := func(write func(fr *http2.Framer, block func(kv ...string) []byte)) {
		var out, hbuf bytes.Buffer
		enc := hpack.NewEncoder(&hbuf)
		fr := http2.NewFramer(&out, nil)
		fr.AllowIllegalWrites = true
		block := func(kv ...string) []byte {
			hbuf.Reset()
			for i := 0; i+1 < len(kv); i += 2 {
				_ = enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
			}
			return bytes.Clone(hbuf.Bytes())
		}
		write(fr, block)
		seeds = append(seeds, out.Bytes())
	}
	get := []string{":method", "GET", ":scheme", "http", ":authority", "fuzz", ":path", "/hello"}
	post := []string{":method", "POST", ":scheme", "http", ":authority", "fuzz", ":path", "/echo", "trailer", "x-client"}
	build(func(fr *http2.Framer, block func(...string) []byte) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(get...), EndStream: true, EndHeaders: true})
	})
	build(func(fr *http2.Framer, block func(...string) []byte) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(post...), EndHeaders: true})
		_ = fr.WriteData(1, false, []byte("ping pong"))
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block("x-client", "done"), EndStream: true, EndHeaders: true})
	})
	build(func(fr *http2.Framer, block func(...string) []byte) {
		b := block(get...)
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: b[:4], EndStream: true})
		_ = fr.WriteContinuation(3, true, b[4:])
	})
	build(func(fr *http2.Framer, block func(...string) []byte) {
		_ = fr.WritePing(false, [8]byte{1, 2, 3})
		_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(get...), EndStream: true, EndHeaders: true})
		_ = fr.WriteWindowUpdate(1, 3)
		_ = fr.WriteWindowUpdate(0, 1<<20)
	})
	build(func(fr *http2.Framer, block func(...string) []byte) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, BlockFragment: block(post...), EndHeaders: true,
			Priority: http2.PriorityParam{StreamDep: 3, Weight: 7}})
		_ = fr.WriteData(5, false, bytes.Repeat([]byte("x"), 1000))
		_ = fr.WriteRSTStream(5, http2.ErrCodeCancel)
		_ = fr.WritePriority(7, http2.PriorityParam{StreamDep: 5})
		_ = fr.WriteGoAway(0, http2.ErrCodeNo, nil)
	})
	return seeds
}
