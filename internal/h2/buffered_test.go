package h2_test

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/h2"
)

// A write deadline set while written bytes are still pending in the
// buffered connection governs later writes only: the pending bytes reach
// the peer, and a Close right after does not drop them. This is what
// closing a TLS connection does (close alert, then a deadline of now).
func TestBufferedConnDeadlineKeepsPendingBytes(t *testing.T) {
	t.Parallel()
	client, sc := bufferedPair(t)
	// More than the kernel's socket buffers hold, read slowly, so that
	// bytes are pending in the connection when the deadline is set.
	want := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB
	got := make(chan []byte, 1)
	go func() {
		var buf bytes.Buffer
		chunk := make([]byte, 256<<10)
		_ = client.SetReadDeadline(time.Now().Add(30 * time.Second))
		for {
			n, err := client.Read(chunk)
			buf.Write(chunk[:n])
			if err != nil {
				got <- buf.Bytes()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	for p := want; len(p) > 0; p = p[min(len(p), 64<<10):] {
		if _, err := sc.Write(p[:min(len(p), 64<<10)]); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	if err := sc.SetWriteDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := sc.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("peer read %d bytes of %d", len(b), len(want))
	}
}

// A connection internal/h2 takes over reads through the listener's buffer
// only while it holds bytes read before (net/http may read past what it
// needs): those come first and whole, then the buffer is let go and reads
// go to the socket. internal/h2 reads through a buffer of its own; the
// listener's, kept for the connection's life, cost 16 KiB a connection
// (TestIdleConnectionCostsNoMoreThanNetHTTP). A connection not taken over
// (net/http's HTTP/1.1 server) keeps its buffer.
func TestTakenOverConnLetsGoOfItsReadBuffer(t *testing.T) {
	t.Parallel()
	read := func(c net.Conn, n int) string {
		t.Helper()
		b := make([]byte, n)
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, takeOver := range []bool{true, false} {
		client, server := bufferedPair(t)
		_ = server.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(client, "first-and-rest"); err != nil {
			t.Fatal(err)
		}
		// One small read: the buffer takes in all that has arrived.
		if got := read(server, 5); got != "first" {
			t.Fatalf("read %q, want %q", got, "first")
		}
		if takeOver {
			h2.TakeOver(server)
		}
		if got := read(server, 9); got != "-and-rest" {
			t.Fatalf("taken over %v: read %q after the first bytes, want %q", takeOver, got, "-and-rest")
		}
		if _, err := io.WriteString(client, "later"); err != nil {
			t.Fatal(err)
		}
		if got := read(server, 5); got != "later" {
			t.Fatalf("taken over %v: read %q, want %q", takeOver, got, "later")
		}
		if h2.ReadsThroughBuffer(server) == takeOver {
			t.Errorf("taken over %v: reads through the buffer %v once it is empty, want %v", takeOver, !takeOver, !takeOver)
		}
	}
}

// bufferedPair connects a client to a BufferedListener's connection; both
// are closed when the test ends.
func bufferedPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bln := h2.BufferedListener(ln)
	t.Cleanup(func() { bln.Close() })
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = bln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}
