package h2_test

import (
	"bytes"
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bln := h2.BufferedListener(ln)
	defer bln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sc, err := bln.Accept()
	if err != nil {
		t.Fatal(err)
	}
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
