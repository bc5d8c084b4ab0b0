package server_test

import (
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/testserver"
)

// TLS handshake failures, which any client makes as fast as it connects,
// are logged as WARN lines sampled with the lines of rejected calls:
// a flood of them writes a bounded number of lines, and the rest are
// counted in the summary line the next call's line follows.
func TestTLSHandshakeErrorsSampled(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv := testserver.StartWith(t, server.Config{Logger: logger}, testserver.Options{TLS: true})
	const conns = 300
	start := time.Now()
	for range conns {
		c, err := net.Dial("tcp", srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")) // no TLS
		_ = c.Close()
	}
	handshakeLines := func() int { return strings.Count(logs.String(), "TLS handshake error") }
	// Every connection's failure is written or dropped within moments.
	deadline := time.Now().Add(10 * time.Second)
	for prev := -1; ; {
		time.Sleep(200 * time.Millisecond)
		n := handshakeLines()
		if n == prev || time.Now().After(deadline) {
			break
		}
		prev = n
	}
	written := handshakeLines()
	// The burst, and what the rate refilled while the flood lasted.
	if most := 100 + int(time.Since(start).Seconds()*20) + 1; written > most || written == 0 {
		t.Fatalf("%d of %d TLS handshake failures logged; want between 1 and %d:\n%s", written, conns, most, logs.String())
	}
	// The next line, of a call, first says how many were dropped since
	// the last such summary.
	res, err := srv.HTTPClient.Get(srv.URL + "/unknown.Service/Method")
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	dropped := 0
	for time.Now().Before(deadline) {
		if !strings.Contains(logs.String(), "procedure=/unknown.Service/Method") {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		for _, m := range regexp.MustCompile(`lines dropped under load.* dropped=(\d+)`).FindAllStringSubmatch(logs.String(), -1) {
			n, _ := strconv.Atoi(m[1])
			dropped += n
		}
		break
	}
	written = handshakeLines() // with any a late connection added
	if written+dropped != conns {
		t.Errorf("%d TLS handshake failures logged and %d counted dropped; want %d in all:\n%s", written, dropped, conns, logs.String())
	}
}
