package h2_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/switchyard/switchyard/internal/h2"
)

// Connections that net/http serves end with a response that carries
// Connection: close — past their age, and over HTTP/1.1 once the server
// drains — not by a close while they are idle, which races with the
// client's next request (a proxy's POST, which it cannot retry).

// h1Conn is a raw HTTP/1.1 keep-alive client connection.
type h1Conn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dialH1(t *testing.T, addr string) *h1Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &h1Conn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// get makes one GET on the connection and reads its response whole: an
// error when the server closed or reset the connection instead.
func (c *h1Conn) get(path string) (*http.Response, error) {
	_ = c.nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c.nc, "GET %s HTTP/1.1\r\nHost: h1test\r\n\r\n", path); err != nil {
		return nil, err
	}
	res, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return nil, err
	}
	_, err = io.ReadAll(res.Body)
	res.Body.Close()
	return res, err
}

// mustGet is get, failing the test on an error or a body other than "ok".
func (c *h1Conn) mustGet(what string) *http.Response {
	c.t.Helper()
	res, err := c.get("/")
	if err != nil {
		c.t.Fatalf("%s: %v, want a response on the open connection", what, err)
	}
	if res.StatusCode != http.StatusOK {
		c.t.Fatalf("%s: status %d", what, res.StatusCode)
	}
	return res
}

// closedByServer reports whether the server closes the connection (a
// clean EOF, nothing more sent) within 5 s.
func (c *h1Conn) closedByServer() error {
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.br.Read(make([]byte, 1))
	switch {
	case n > 0:
		return errors.New("the server sent more after its last response")
	case errors.Is(err, io.EOF):
		return nil
	default:
		return fmt.Errorf("no EOF: %v", err)
	}
}

// wantConnectionClose checks that res is the connection's last response
// (res.Close: it carried Connection: close, which ReadResponse takes out
// of res.Header) and that the server then closes the connection.
func wantConnectionClose(t *testing.T, c *h1Conn, res *http.Response, what string) {
	t.Helper()
	if !res.Close {
		t.Errorf("%s: no Connection: close", what)
	}
	if err := c.closedByServer(); err != nil {
		t.Errorf("after %s: %v", what, err)
	}
}

// wantKeepAlive checks that res leaves the connection open.
func wantKeepAlive(t *testing.T, res *http.Response, what string) {
	t.Helper()
	if res.Close {
		t.Errorf("%s: Connection: close, want a keep-alive response", what)
	}
}

// testAge is the connection age of these tests: its first request is
// answered well within it, and the tests wait three times it to be past.
const testAge = 300 * time.Millisecond

// An HTTP/1.1 keep-alive connection past its age is not closed while it
// is idle: its next request is answered, with Connection: close, and then
// the server closes it. (Under either HTTP/2 server: net/http serves
// HTTP/1.1.)
func TestAgedHTTP1ConnectionEndsWithItsNextResponse(t *testing.T) {
	bothServers(t, func(t *testing.T, std bool) {
		srv := startServer(t, okHandler, h2.Config{StdHTTP2: std, MaxConnectionAge: testAge}, serverOpts{})
		c := dialH1(t, srv.addr)
		wantKeepAlive(t, c.mustGet("the request before the age"), "the request before the age")
		time.Sleep(3 * testAge) // idle, and old
		res := c.mustGet("the request past the age")
		wantConnectionClose(t, c, res, "the request past the age")
	})
}

// frameUntilEnd reads stream id's response: the body, and whether a
// GOAWAY (NO_ERROR) came before its end; an error ends the test.
func (c *rawConn) frameUntilEnd(id uint32) (body []byte, goAway *http2.GoAwayFrame) {
	c.T.Helper()
	for {
		f, err := c.ReadFrame(5 * time.Second)
		if err != nil {
			c.T.Fatalf("reading stream %d's response: %v", id, err)
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			if f.ErrCode != http2.ErrCodeNo {
				c.T.Fatalf("GOAWAY %v while reading stream %d", f.ErrCode, id)
			}
			goAway = f
		case *http2.RSTStreamFrame:
			c.T.Fatalf("stream %d reset: %v", f.StreamID, f.ErrCode)
		case *http2.MetaHeadersFrame:
			for _, hf := range f.Fields {
				if hf.Name == "connection" {
					c.T.Errorf("stream %d's response carried connection: %s", id, hf.Value)
				}
			}
			if f.StreamID == id && f.StreamEnded() {
				return body, goAway
			}
		case *http2.DataFrame:
			if f.StreamID == id {
				body = append(body, f.Data()...)
				if f.StreamEnded() {
					return body, goAway
				}
			}
		}
	}
}

// A connection of net/http's HTTP/2 server (StdHTTP2) past its age is not
// closed while it is idle: its next request is answered, and a GOAWAY
// ends the connection gracefully.
func TestAgedStdHTTP2ConnectionGetsGoAway(t *testing.T) {
	srv := startServer(t, okHandler, h2.Config{StdHTTP2: true, MaxConnectionAge: testAge}, serverOpts{})
	c := dialRaw(t, srv.addr)
	c.request(1, "GET", "/", true)
	if body, ga := c.frameUntilEnd(1); string(body) != "ok" || ga != nil {
		t.Fatalf("before the age: %q, GOAWAY %v; want \"ok\" and no GOAWAY", body, ga)
	}
	time.Sleep(3 * testAge) // idle, and old
	c.request(3, "GET", "/", true)
	body, ga := c.frameUntilEnd(3)
	if string(body) != "ok" {
		t.Fatalf("past the age: %q, want \"ok\"", body)
	}
	if ga == nil {
		ga = untilGoAway(c.H2Conn, 5*time.Second)
	}
	if ga == nil || ga.ErrCode != http2.ErrCodeNo || ga.LastStreamID < 3 {
		t.Fatalf("past the age: GOAWAY %v, want NO_ERROR with stream 3 served", ga)
	}
	if !c.Closed(5 * time.Second) {
		t.Error("the connection stayed open 5 s after the GOAWAY")
	}
}

// Once the server drains, an HTTP/1.1 keep-alive connection's next
// response carries Connection: close and the server then closes it; its
// HTTP/2 connections go on serving, with no GOAWAY until the shutdown.
func TestDrainEndsHTTP1ConnectionsWithTheirNextResponse(t *testing.T) {
	bothServers(t, func(t *testing.T, std bool) {
		srv := startServer(t, okHandler, h2.Config{StdHTTP2: std}, serverOpts{})
		c1 := dialH1(t, srv.addr)
		wantKeepAlive(t, c1.mustGet("before the drain"), "before the drain")
		c2 := dialRaw(t, srv.addr)
		c2.request(1, "GET", "/", true)
		if body, ga := c2.frameUntilEnd(1); string(body) != "ok" || ga != nil {
			t.Fatalf("HTTP/2 before the drain: %q, GOAWAY %v", body, ga)
		}

		srv.h2.Drain()
		wantConnectionClose(t, c1, c1.mustGet("draining"), "an HTTP/1.1 request while draining")
		// A fresh HTTP/1.1 connection gets one response too.
		fresh := dialH1(t, srv.addr)
		wantConnectionClose(t, fresh, fresh.mustGet("a new connection while draining"), "a new connection's request while draining")
		// Over HTTP/2, stream after stream is answered: a GOAWAY would
		// have refused the streams after the first.
		for id := uint32(3); id <= 7; id += 2 {
			c2.request(id, "GET", "/", true)
			if body, ga := c2.frameUntilEnd(id); string(body) != "ok" || ga != nil {
				t.Fatalf("HTTP/2 stream %d while draining: %q, GOAWAY %v; want \"ok\" and no GOAWAY", id, body, ga)
			}
		}
	})
}
