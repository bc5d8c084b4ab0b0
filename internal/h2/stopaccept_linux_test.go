//go:build linux

package h2_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/h2"
)

// gatedListener accepts nothing until gate closes: the connections made
// meanwhile wait in the kernel's accept queue, as they do on a busy
// replica that nginx opens a connection per request to during a drain.
type gatedListener struct {
	*net.TCPListener
	gate chan struct{}
}

func (l gatedListener) Accept() (net.Conn, error) {
	<-l.gate
	return l.TCPListener.Accept()
}

// Closing a listening socket resets the connections in its accept queue:
// their clients sent a request (nginx a POST, which it does not retry:
// 502) and read ECONNRESET. StopAccepting takes what the queue holds, and
// serves it, before it closes the socket.
func TestStopAcceptingServesTheAcceptQueue(t *testing.T) {
	bothServers(t, func(t *testing.T, std bool) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		gl := gatedListener{TCPListener: ln.(*net.TCPListener), gate: make(chan struct{})}
		hs := &http.Server{Handler: okHandler, Protocols: new(http.Protocols)}
		hs.Protocols.SetHTTP1(true)
		hs.Protocols.SetUnencryptedHTTP2(true)
		s := h2.Configure(hs, h2.Config{StdHTTP2: std})
		go func() { _ = hs.Serve(s.Listener(gl)) }()
		defer hs.Close()

		var queued []net.Conn
		for range 3 {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
			queued = append(queued, c)
		}
		stopped := make(chan struct{})
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s.StopAccepting(ctx)
			close(stopped)
		}()
		time.Sleep(100 * time.Millisecond) // StopAccepting has begun
		close(gl.gate)
		for i, c := range queued {
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Errorf("connection %d, queued when StopAccepting began: %v", i, err)
				continue
			}
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
				t.Errorf("connection %d answered %d %q", i, res.StatusCode, body)
			}
		}
		<-stopped
		if d, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
			d.Close()
			t.Error("a new connection was accepted after StopAccepting")
		}
	})
}

// A server at MaxConnections takes nothing from its accept queue until a
// connection it serves closes: StopAccepting does not wait for a queue
// that nobody empties, which would hold a drain (and the wait for the
// connections just accepted) for the whole of its ctx.
func TestStopAcceptingDoesNotWaitForAQueueNobodyTakes(t *testing.T) {
	bothServers(t, func(t *testing.T, std bool) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		hs := &http.Server{Handler: okHandler, Protocols: new(http.Protocols)}
		hs.Protocols.SetHTTP1(true)
		hs.Protocols.SetUnencryptedHTTP2(true)
		s := h2.Configure(hs, h2.Config{StdHTTP2: std, MaxConnections: 1})
		go func() { _ = hs.Serve(s.Listener(ln)) }()
		defer hs.Close()

		// The one connection served, kept alive.
		held, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		fmt.Fprintf(held, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		_ = held.SetReadDeadline(time.Now().Add(5 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(held), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		// One more, left in the accept queue.
		queued, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer queued.Close()

		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		s.StopAccepting(ctx)
		if d := time.Since(start); d > time.Second {
			t.Errorf("StopAccepting took %v with the server at MaxConnections", d)
		}
	})
}
