package h2_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"golang.org/x/net/http2"

	"github.com/switchyard/switchyard/internal/h2"
)

// The server remembers what a request header block of table indexes
// decoded to, and sends a response's header block again without encoding
// it. Both hold only while HPACK's tables stay as they were: after the
// client adds a field to its table, the same bytes mean another field.
// The block that adds it comes in one frame, or in a CONTINUATION after
// a first fragment of indexes only.
func TestRepeatedHeaderBlocks(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen", r.Header.Get("X-Echo"))
		_, _ = io.WriteString(w, r.Header.Get("X-Echo"))
	})
	srv := startServer(t, h, h2.Config{}, serverOpts{})
	for _, split := range []bool{false, true} {
		c := dialRaw(t, srv.addr)
		id := uint32(1)
		send := func(block []byte, splitAt int) string {
			t.Helper()
			first, rest := block, []byte(nil)
			if splitAt > 0 {
				first, rest = block[:splitAt], block[splitAt:]
			}
			if err := c.Fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: true, EndHeaders: rest == nil}); err != nil {
				t.Fatal(err)
			}
			if rest != nil {
				if err := c.Fr.WriteContinuation(id, true, rest); err != nil {
					t.Fatal(err)
				}
			}
			status, header, body, ended := c.responseWithHeader(id)
			id += 2
			if status != "200" || !ended || header["x-seen"] != string(body) {
				t.Fatalf("split %v: status %q, ended %v, x-seen %q, body %q", split, status, ended, header["x-seen"], body)
			}
			return string(body)
		}
		fields := func(echo string) []string {
			return []string{":method", "GET", ":scheme", "http", ":path", "/", "x-echo", echo}
		}
		if got := send(c.HeaderBlock(fields("a")...), 0); got != "a" { // adds x-echo: a to the table
			t.Fatalf("first request saw x-echo %q, want a", got)
		}
		indexed := c.HeaderBlock(fields("a")...)
		if !bytes.Equal(indexed, []byte{0x82, 0x86, 0x84, 0xbe}) { // x-echo: a is index 62
			t.Fatalf("the client encoded the repeated request as %x, want indexes only", indexed)
		}
		for range 3 {
			if got := send(indexed, 0); got != "a" {
				t.Fatalf("split %v: a repeated request saw x-echo %q, want a", split, got)
			}
		}
		splitAt := 0
		if split {
			splitAt = 3 // :method, :scheme, :path, then the new field in a CONTINUATION
		}
		if got := send(c.HeaderBlock(fields("b")...), splitAt); got != "b" { // x-echo: b is now index 62
			t.Fatalf("split %v: x-echo %q, want b", split, got)
		}
		if got := send(indexed, 0); got != "b" {
			t.Fatalf("split %v: after the table changed, the bytes of a remembered block gave x-echo %q, want b", split, got)
		}
		// The response's x-seen: a, remembered while it was index 62 of
		// the server's table, is index 63 now.
		if got := send(c.HeaderBlock(fields("a")...), 0); got != "a" {
			t.Fatalf("split %v: x-echo %q, want a", split, got)
		}
	}
}
