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
	droppedLines := func() int {
		dropped := 0
		for _, m := range regexp.MustCompile(`lines dropped under load.* dropped=(\d+)`).FindAllStringSubmatch(logs.String(), -1) {
			n, _ := strconv.Atoi(m[1])
			dropped += n
		}
		return dropped
	}
	// Each call's line is preceded by the count of lines dropped since
	// the last count: call until every failure is written or counted
	// (the server may still be failing handshakes after the client is
	// done). The calls are rejected ones, whose lines are sampled too.
	calls := 0
	callLines := func() int { return strings.Count(logs.String(), "procedure=/unknown.Service/Method") }
	accounted := func() bool { return handshakeLines()+droppedLines() == conns+calls-callLines() }
	deadline := time.Now().Add(10 * time.Second)
	for calls == 0 || !accounted() && time.Now().Before(deadline) {
		res, err := srv.HTTPClient.Get(srv.URL + "/unknown.Service/Method")
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		calls++
		time.Sleep(100 * time.Millisecond)
	}
	written, dropped := handshakeLines(), droppedLines()
	if !accounted() {
		t.Fatalf("%d TLS handshake failures logged, %d lines counted dropped, %d of %d calls' lines logged; want %d failures in all:\n%s",
			written, dropped, callLines(), calls, conns, logs.String())
	}
	// The burst, and what the rate refilled while the flood lasted.
	if most := 100 + int(time.Since(start).Seconds()*20) + 1; written > most || written == 0 {
		t.Errorf("%d of %d TLS handshake failures logged; want between 1 and %d:\n%s", written, conns, most, logs.String())
	}
}
