package h2_test

import (
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/switchyard/switchyard/internal/h2"
)

// Behaviour where internal/h2 must do what net/http's HTTP/2 server does:
// each test runs the same exchange against both.

// A handler that sets a field whose name is no token (a space, a colon, a
// byte beyond ASCII, nothing), or a trailer HTTP forbids in trailers, must
// not cost its response: net/http's server leaves such fields out. Sent,
// the block makes every HTTP/2 client drop the response (a malformed
// field is a stream error, RFC 9113 section 8.2.1).
func TestInvalidResponseFieldsLeftOut(t *testing.T) {
	bad := []string{"Bad Name", ":path", "Caf\xc3\xa9", "Tab\tName", ""}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, k := range bad {
			w.Header()[k] = []string{"v"}
		}
		w.Header().Set("X-Ok", "fine")
		w.Header().Set("Trailer", "X-Trailer, Content-Length, Bad Name, Host")
		_, _ = io.WriteString(w, "hello")
		http.NewResponseController(w).Flush() // the header block goes out now
		w.Header().Set("X-Trailer", "t")
		w.Header().Set("Content-Length", "12345")
		w.Header()["Bad Name"] = []string{"v"}
		w.Header().Set("Host", "elsewhere")
		w.Header()[http.TrailerPrefix+"Content-Type"] = []string{"text/evil"}
		w.Header()[http.TrailerPrefix+"Also Bad"] = []string{"v"}
		w.Header()[http.TrailerPrefix+"X-Late"] = []string{"late"}
	})
	for _, std := range []bool{false, true} {
		name := map[bool]string{false: "internal/h2", true: "net/http"}[std]
		srv := startServer(t, h, h2.Config{StdHTTP2: std}, serverOpts{})

		// Through Go's client, which refuses a response with a
		// malformed field.
		hc, _ := srv.client(t)
		res, err := hc.Get(srv.url + "/")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || string(body) != "hello" || res.Header.Get("X-Ok") != "fine" {
			t.Errorf("%s: %d %q %v (%v), want 200 \"hello\" with X-Ok", name, res.StatusCode, body, res.Header, err)
		}
		if got := res.Trailer.Get("X-Trailer") + res.Trailer.Get("X-Late"); got != "tlate" {
			t.Errorf("%s: trailers %v, want X-Trailer and X-Late", name, res.Trailer)
		}

		// On the wire: which fields went out, header block and trailers.
		c := dialRaw(t, srv.addr)
		c.request(1, "GET", "/", true)
		status, fields, body, ended := c.responseWithHeader(1)
		if status != "200" || string(body) != "hello" || !ended {
			t.Fatalf("%s: %s %q ended=%v", name, status, body, ended)
		}
		for f := range fields {
			switch f {
			case "x-ok", "x-trailer", "x-late", "content-type", "date", "trailer":
			case "content-length": // the server's own, for the whole body
				if fields[f] != "5" {
					t.Errorf("%s: content-length %q, want the body's 5", name, fields[f])
				}
			default:
				t.Errorf("%s: field %q (%q) went out", name, f, fields[f])
			}
		}
		if fields["content-type"] == "text/evil" {
			t.Errorf("%s: a Content-Type trailer went out", name)
		}
	}
}

// A stream accepted while the final GOAWAY of a graceful shutdown goes out
// is answered before the connection closes. internal/h2 builds a request
// off its lock; a GOAWAY sent meanwhile (here the drain's timer, the
// client not answering its PING) names the stream, so a client may not
// retry it, and used to close the connection at once, its response lost.
// net/http's server serves every frame and timer on one goroutine and has
// no such window; the hook widens internal/h2's to the GOAWAY's time.
func TestStreamAcceptedDuringFinalGoAwayIsAnswered(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "answer") })
	srv := startServer(t, h, h2.Config{}, serverOpts{})
	c := dialRaw(t, srv.addr)
	accepted, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	h2.SetAcceptedHook(func() {
		once.Do(func() {
			close(accepted)
			<-release
		})
	})
	defer h2.SetAcceptedHook(nil)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.hs.Shutdown(ctx)
	}()
	if ga := c.expectGoAway(); ga.LastStreamID != 1<<31-1 {
		t.Fatalf("first GOAWAY names stream %d, want 2^31-1", ga.LastStreamID)
	}
	c.request(1, "GET", "/", true)
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		close(release)
		t.Fatal("stream 1 was not accepted")
	}
	// The drain's PING goes unanswered: its timer sends the final GOAWAY.
	ga := c.expectGoAway()
	close(release)
	if ga.LastStreamID != 1 || ga.ErrCode != http2.ErrCodeNo {
		t.Errorf("final GOAWAY %v names stream %d, want NO_ERROR, 1", ga.ErrCode, ga.LastStreamID)
	}
	if status, body, ended := c.response(1); status != "200" || string(body) != "answer" || !ended {
		t.Errorf("stream 1, named by the GOAWAY: %q %q ended=%v, want 200 \"answer\"", status, body, ended)
	}
}
