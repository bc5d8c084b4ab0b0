package h2_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/h2"
)

// net/http's server drops an HTTP/1.1 request it reads once its shutdown
// has begun: a connection accepted just before, whose request was on its
// way, is closed unanswered (a proxy answers 502 to a POST). StopAccepting
// refuses new connections, waits for those accepted to send their
// requests, and the shutdown after it finds them answered; Serve still
// ends with http.ErrServerClosed.
func TestStopAcceptingBeforeShutdown(t *testing.T) {
	bothServers(t, func(t *testing.T, std bool) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		accepted := make(chan struct{}, 1)
		hs := &http.Server{Handler: okHandler, Protocols: new(http.Protocols),
			ConnState: func(_ net.Conn, state http.ConnState) {
				if state == http.StateNew {
					accepted <- struct{}{}
				}
			}}
		hs.Protocols.SetHTTP1(true)
		hs.Protocols.SetUnencryptedHTTP2(true)
		s := h2.Configure(hs, h2.Config{StdHTTP2: std})
		served := make(chan error, 1)
		go func() { served <- hs.Serve(s.Listener(ln)) }()
		defer hs.Close()

		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		<-accepted // nothing sent yet
		stopped := make(chan struct{})
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s.StopAccepting(ctx)
			close(stopped)
		}()
		select {
		case <-stopped:
			t.Fatal("StopAccepting returned before the accepted connection sent its request")
		case <-time.After(200 * time.Millisecond):
		}
		if d, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
			d.Close()
			t.Error("a new connection was accepted after StopAccepting")
		}
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
		<-stopped
		shutdown := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			shutdown <- hs.Shutdown(ctx)
		}()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("the request sent as the server stopped accepting: %v", err)
		}
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
			t.Errorf("answered %d %q", res.StatusCode, body)
		}
		if err := <-shutdown; err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve ended with %v, want http.ErrServerClosed", err)
		}
	})
}
