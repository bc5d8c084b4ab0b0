package h2_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/switchyard/switchyard/internal/h2"
)

// What a response's header blocks carry, where internal/h2 must do what
// net/http's HTTP/2 server does: the fields as WriteHeader found them,
// informational (1xx) responses, and the Date field.

// blocks is readResponse, failing the test where it stops early.
func (c *rawConn) blocks(id uint32) ([]headerBlock, []byte) {
	c.T.Helper()
	blocks, body, err := c.readResponse(id)
	if err != nil {
		c.T.Fatal(err)
	}
	return blocks, body
}

// getRoot makes one GET / on a connection of its own and reads its
// header blocks and body.
func getRoot(t *testing.T, addr string) ([]headerBlock, []byte) {
	t.Helper()
	c := dialRaw(t, addr)
	c.request(1, "GET", "/", true)
	return c.blocks(1)
}

// statusesOf is the :status of each block, in order ("" for trailers).
func statusesOf(blocks []headerBlock) []string {
	var statuses []string
	for _, b := range blocks {
		statuses = append(statuses, b.status)
	}
	return statuses
}

// The response's header fields are those the handler set before
// WriteHeader: what it sets, deletes or changes in the map afterwards
// does not go out with them, the names declared in Trailer included
// (http.ResponseWriter's contract). Only the values of the declared names
// and keys with http.TrailerPrefix go out later, as trailers. The
// Content-Type the server sniffs goes on the wire, not into the
// handler's map.
func TestHeaderFixedAtWriteHeader(t *testing.T) {
	sniffed := make(chan string, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Kept", "before")
		hd.Set("X-Mutated", "a")
		hd.Set("X-Deleted", "yes")
		hd.Set("Trailer", "X-Declared")
		w.WriteHeader(http.StatusAccepted)
		hd.Set("X-Added", "after")
		hd.Del("X-Deleted")
		hd["X-Mutated"][0] = "b"
		hd.Set("X-Kept", "changed")
		hd.Set("Trailer", "X-Declared-Late")
		_, _ = io.WriteString(w, "hello")
		if r.URL.Path == "/flush" { // the header block goes out before the handler returns
			http.NewResponseController(w).Flush()
			sniffed <- hd.Get("Content-Type")
		}
		hd.Set("X-Declared", "t")
		hd.Set("X-Declared-Late", "l")
		hd.Set(http.TrailerPrefix+"X-Prefixed", "p")
	})
	bothServers(t, func(t *testing.T, std bool) {
		srv := startServer(t, h, h2.Config{StdHTTP2: std}, serverOpts{})
		c := dialRaw(t, srv.addr)
		for i, path := range []string{"/", "/flush"} {
			id := uint32(2*i + 1)
			c.request(id, "GET", path, true)
			blocks, body := c.blocks(id)
			if len(blocks) != 2 || string(body) != "hello" {
				t.Fatalf("%s: %d header blocks, body %q; want the header, \"hello\", trailers", path, len(blocks), body)
			}
			hdr, tr := blocks[0], blocks[1]
			want := map[string]string{"x-kept": "before", "x-mutated": "a", "x-deleted": "yes",
				"trailer": "X-Declared", "content-type": "text/plain; charset=utf-8"}
			if hdr.status != "202" {
				t.Errorf("%s: status %s, want 202", path, hdr.status)
			}
			for name, v := range want {
				if got := hdr.fields[name]; !slices.Equal(got, []string{v}) {
					t.Errorf("%s: header %s %q, want %q", path, name, got, v)
				}
			}
			if got, ok := hdr.fields["x-added"]; ok {
				t.Errorf("%s: x-added %q went out, set after WriteHeader", path, got)
			}
			wantTr := map[string][]string{"x-declared": {"t"}, "x-prefixed": {"p"}}
			if len(tr.fields) != len(wantTr) || tr.status != "" || !tr.ended {
				t.Errorf("%s: trailers %v (status %q, ended %v), want %v", path, tr.fields, tr.status, tr.ended, wantTr)
			}
			for name, v := range wantTr {
				if got := tr.fields[name]; !slices.Equal(got, v) {
					t.Errorf("%s: trailer %s %q, want %q", path, name, got, v)
				}
			}
		}
		if got := <-sniffed; got != "" {
			t.Errorf("the sniffed Content-Type %q went into the handler's map", got)
		}
	})
}

// An informational status (1xx) goes out at WriteHeader, with the fields
// set so far but Content-Length, and leaves the final response to come:
// a 103 Early Hints lets a client fetch what the page will need while
// the server still works on it (RFC 8297). A status sent at last is
// final; WriteHeader does nothing after it.
func TestInformationalResponses(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Link", "</style.css>; rel=preload")
		hd.Set("Content-Length", "5")
		w.WriteHeader(http.StatusEarlyHints)
		hd.Add("Link", "</app.js>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusCreated)
		w.WriteHeader(http.StatusEarlyHints) // after the final status: nothing
		_, _ = io.WriteString(w, "hello")
	})
	bothServers(t, func(t *testing.T, std bool) {
		srv := startServer(t, h, h2.Config{StdHTTP2: std}, serverOpts{})
		blocks, body := getRoot(t, srv.addr)
		statuses := statusesOf(blocks)
		if !slices.Equal(statuses, []string{"103", "103", "201"}) || string(body) != "hello" {
			t.Fatalf("statuses %v, body %q; want 103, 103, 201 and \"hello\"", statuses, body)
		}
		for i, links := range [][]string{{"</style.css>; rel=preload"}, {"</style.css>; rel=preload", "</app.js>; rel=preload"}} {
			b := blocks[i]
			if b.ended || !slices.Equal(b.fields["link"], links) || len(b.fields) != 1 {
				t.Errorf("103 number %d: %v (ended %v), want link %q alone", i+1, b.fields, b.ended, links)
			}
		}
		if final := blocks[2]; !slices.Equal(final.fields["content-length"], []string{"5"}) || len(final.fields["link"]) != 2 {
			t.Errorf("final response's fields %v, want content-length 5 and both links", final.fields)
		}

		// Go's client hands the hints to its trace and the final
		// response to the caller.
		hc, _ := srv.client(t)
		var hints []string
		req, _ := http.NewRequest("GET", srv.url+"/", nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
				hints = append(hints, http.StatusText(code)+": "+strings.Join(h["Link"], ", "))
				return nil
			},
		}))
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusCreated || string(b) != "hello" || len(hints) != 2 {
			t.Errorf("Go's client: %d %q after hints %q, want 201 \"hello\" after two", res.StatusCode, b, hints)
		}
	})
}

// Every final response carries Date (RFC 9110 section 6.6.1: an origin
// server with a clock must send it with its 2xx, 3xx and 4xx), unless the
// handler set its own, which goes out as it is. internal/h2 reads the
// clock once a second (dateClock): in a second's first moments the value
// may be the second before.
func TestDateField(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/own" {
			w.Header().Set("Date", "Tue, 01 Dec 2026 10:00:00 GMT")
		}
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	bothServers(t, func(t *testing.T, std bool) {
		srv := startServer(t, h, h2.Config{StdHTTP2: std}, serverOpts{})
		c := dialRaw(t, srv.addr)
		for i, path := range []string{"/", "/missing", "/", "/own"} {
			id := uint32(2*i + 1)
			before := time.Now().Truncate(time.Second).Add(-time.Second)
			c.request(id, "GET", path, true)
			blocks, _ := c.blocks(id)
			after := time.Now()
			dates := blocks[0].fields["date"]
			if len(dates) != 1 {
				t.Errorf("%s: date %q, want one", path, dates)
				continue
			}
			if path == "/own" {
				if dates[0] != "Tue, 01 Dec 2026 10:00:00 GMT" {
					t.Errorf("the handler's own Date went out as %q", dates[0])
				}
				continue
			}
			d, err := http.ParseTime(dates[0])
			if err != nil || !strings.HasSuffix(dates[0], " GMT") || d.Before(before) || d.After(after) {
				t.Errorf("%s: date %q (%v), want the time of the response in http.TimeFormat", path, dates[0], err)
			}
		}
	})
}

// A handler that sends informational responses to a client that reads
// nothing is held back, as for its body: the hints do not pile up in the
// server. Each hint is a new value, which HPACK cannot compress.
func TestInformationalResponsesWaitForTheClient(t *testing.T) {
	const hints, size = 5000, 4 << 10 // 20 MiB: more than the socket buffers hold
	var sent atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pad := strings.Repeat("x", size)
		for i := range hints {
			if r.Context().Err() != nil {
				return
			}
			w.Header().Set("Link", fmt.Sprintf("</%d%s>; rel=preload", i, pad))
			w.WriteHeader(http.StatusEarlyHints)
			sent.Add(1)
		}
	})
	bothServers(t, func(t *testing.T, std bool) {
		sent.Store(0)
		srv := startServer(t, h, h2.Config{StdHTTP2: std}, serverOpts{})
		c := dialRaw(t, srv.addr)
		c.request(1, "GET", "/", true)
		time.Sleep(2 * time.Second) // the client reads nothing meanwhile
		if n := sent.Load(); n >= hints {
			t.Errorf("the handler sent all %d hints (%d MiB) to a client that read none", n, hints*size>>20)
		} else {
			t.Logf("held back after %d hints", n)
		}
		c.Conn.Close()
	})
}

// 101 Switching Protocols is not sent: HTTP/2 has no protocol switch (RFC
// 9113 section 8.6). net/http's server sends it as any 1xx, which a
// client may take for a malformed response; what it sends is logged.
func TestNoSwitchingProtocols(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusSwitchingProtocols)
		_, _ = io.WriteString(w, "ok")
	})
	bothServers(t, func(t *testing.T, std bool) {
		srv := startServer(t, h, h2.Config{StdHTTP2: std}, serverOpts{})
		blocks, body := getRoot(t, srv.addr)
		statuses := statusesOf(blocks)
		if std {
			t.Logf("net/http's server sent statuses %v", statuses)
			return
		}
		if !slices.Equal(statuses, []string{"200"}) || string(body) != "ok" {
			t.Errorf("statuses %v, body %q; want 200 alone and \"ok\"", statuses, body)
		}
	})
}

// A Content-Length the handler sets goes out only if it is a length: one
// that does not parse is left out (and the server's own count goes out
// for a response it holds whole), and of several values only the first,
// which is the one the body is held to. Sent as set, either made every
// client drop the response as malformed (RFC 9113 section 8.1.1).
func TestHandlerContentLengthChecked(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/word":
			w.Header().Set("Content-Length", "five")
		case "/negative":
			w.Header().Set("Content-Length", "-5")
		case "/two":
			w.Header()["Content-Length"] = []string{"5", "7"}
		}
		_, _ = io.WriteString(w, "hello")
	})
	bothServers(t, func(t *testing.T, std bool) {
		srv := startServer(t, h, h2.Config{StdHTTP2: std}, serverOpts{})
		c := dialRaw(t, srv.addr)
		hc, _ := srv.client(t)
		for i, path := range []string{"/word", "/negative", "/two"} {
			id := uint32(2*i + 1)
			c.request(id, "GET", path, true)
			blocks, body := c.blocks(id)
			if got := blocks[0].fields["content-length"]; !slices.Equal(got, []string{"5"}) || string(body) != "hello" {
				t.Errorf("%s: content-length %q, body %q; want 5 and \"hello\"", path, got, body)
			}
			res, err := hc.Get(srv.url + path)
			if err != nil {
				t.Errorf("%s: Go's client: %v", path, err)
				continue
			}
			b, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil || string(b) != "hello" {
				t.Errorf("%s: Go's client read %q (%v)", path, b, err)
			}
		}
	})
}

// Where the handler did not call WriteHeader, the fields are those it had
// set when the server sent them: at its Flush or its return. A field it
// set to nil (Date, Content-Length) keeps the server from adding its
// own, as http.ResponseWriter documents.
func TestFieldsWithoutWriteHeader(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Before", "b")
		switch r.URL.Path {
		case "/flush":
			http.NewResponseController(w).Flush()
			hd.Set("X-After", "a")
			_, _ = io.WriteString(w, "hello")
		case "/nil":
			hd["Date"] = nil
			hd["Content-Length"] = nil
			_, _ = io.WriteString(w, "hello")
		}
	})
	bothServers(t, func(t *testing.T, std bool) {
		srv := startServer(t, h, h2.Config{StdHTTP2: std}, serverOpts{})
		c := dialRaw(t, srv.addr)
		for i, tc := range []struct {
			path, body string
			absent     []string
		}{
			{"/flush", "hello", []string{"x-after"}},
			{"/return", "", nil},
			{"/nil", "hello", []string{"date", "content-length"}},
		} {
			id := uint32(2*i + 1)
			c.request(id, "GET", tc.path, true)
			blocks, body := c.blocks(id)
			hdr := blocks[0]
			if hdr.status != "200" || string(body) != tc.body || !slices.Equal(hdr.fields["x-before"], []string{"b"}) {
				t.Errorf("%s: %s %v %q, want 200 with x-before and %q", tc.path, hdr.status, hdr.fields, body, tc.body)
			}
			for _, name := range tc.absent {
				if v, ok := hdr.fields[name]; ok {
					t.Errorf("%s: %s %q went out", tc.path, name, v)
				}
			}
		}
	})
}

// A handler that sets "Connection: close" asks for its connection to end
// (as over HTTP/1.1): its response goes out whole, without the field,
// and the server then closes the connection gracefully, GOAWAY first.
func TestConnectionCloseEndsTheConnection(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
		}
		_, _ = io.WriteString(w, "bye")
	})
	bothServers(t, func(t *testing.T, std bool) {
		srv := startServer(t, h, h2.Config{StdHTTP2: std}, serverOpts{})
		c := dialRaw(t, srv.addr)
		c.request(1, "GET", "/", true)
		if blocks, body := c.blocks(1); string(body) != "bye" || blocks[0].status != "200" {
			t.Fatalf("first response %q", body)
		}
		// The GOAWAY may come before the response's end: the frames in
		// order, until it has come and the stream has ended.
		c.request(3, "GET", "/close", true)
		var (
			ga     *http2.GoAwayFrame
			ended  bool
			body   []byte
			fields []hpack.HeaderField
		)
		for ga == nil || !ended {
			f, err := c.ReadFrame(5 * time.Second)
			if err != nil {
				t.Fatalf("after Connection: close: %v before the GOAWAY (%v) and the stream's end (%v)", err, ga, ended)
			}
			switch f := f.(type) {
			case *http2.GoAwayFrame:
				ga = f
			case *http2.MetaHeadersFrame:
				fields, ended = f.Fields, f.StreamEnded()
			case *http2.DataFrame:
				body, ended = append(body, f.Data()...), f.StreamEnded()
			}
		}
		if ga.ErrCode != http2.ErrCodeNo || ga.LastStreamID < 3 {
			t.Errorf("GOAWAY %v (last stream %d), want NO_ERROR with stream 3 served", ga.ErrCode, ga.LastStreamID)
		}
		for _, f := range fields {
			if f.Name == "connection" {
				t.Errorf("the response carried connection: %s", f.Value)
			}
		}
		if string(body) != "bye" {
			t.Errorf("response %q, want \"bye\"", body)
		}
		if !c.Closed(5 * time.Second) {
			t.Error("the connection stayed open 5 s after the GOAWAY")
		}
	})
}

// The Content-Type and Content-Length the server adds: a HEAD response
// gets the type sniffed from the body its handler wrote (which is not
// sent) and that body's length; a complete response without trailers
// gets its length, 0 when it has no body, except where its status allows
// none (204, 304). A type or length the handler set is left alone, and
// a handler that changes its request's method changes nothing.
// net/http's server gives a HEAD response no length where the body
// outgrew its 4 KiB buffer before the handler returned; internal/h2
// counts the whole body.
func TestAddedTypeAndLength(t *testing.T) {
	const page = "<html><body>a page</body></html>"
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/page":
			_, _ = io.WriteString(w, page)
		case "/typed":
			w.Header().Set("Content-Type", "application/x-mine")
			_, _ = io.WriteString(w, page)
		case "/long":
			_, _ = io.WriteString(w, page)
			_, _ = w.Write(make([]byte, 40<<10)) // past what the writer holds
		case "/method-changed-before", "/method-changed-after":
			// The response is to the method the request came with.
			other := map[string]string{"GET": "HEAD", "HEAD": "GET"}[r.Method]
			if r.URL.Path == "/method-changed-before" {
				r.Method = other
			}
			_, _ = io.WriteString(w, page)
			r.Method = other
		case "/empty":
		case "/no-content":
			w.WriteHeader(http.StatusNoContent)
		case "/not-modified":
			w.WriteHeader(http.StatusNotModified)
		}
	})
	type want struct {
		ctype, length string // "" for none
		body          int
	}
	cases := []struct {
		method, path string
		want         want
	}{
		{"GET", "/page", want{"text/html; charset=utf-8", "32", 32}},
		{"HEAD", "/page", want{"text/html; charset=utf-8", "32", 0}},
		{"HEAD", "/typed", want{"application/x-mine", "32", 0}},
		{"HEAD", "/long", want{"text/html; charset=utf-8", "40992", 0}},
		{"GET", "/method-changed-before", want{"text/html; charset=utf-8", "32", 32}},
		{"HEAD", "/method-changed-before", want{"text/html; charset=utf-8", "32", 0}},
		{"GET", "/method-changed-after", want{"text/html; charset=utf-8", "32", 32}},
		{"HEAD", "/method-changed-after", want{"text/html; charset=utf-8", "32", 0}},
		{"GET", "/empty", want{"", "0", 0}},
		{"HEAD", "/empty", want{"", "", 0}},
		{"GET", "/no-content", want{"", "", 0}},
		{"GET", "/not-modified", want{"", "", 0}},
	}
	bothServers(t, func(t *testing.T, std bool) {
		srv := startServer(t, h, h2.Config{StdHTTP2: std}, serverOpts{})
		c := dialRaw(t, srv.addr)
		for i, tc := range cases {
			id := uint32(2*i + 1)
			c.request(id, tc.method, tc.path, true)
			blocks, body := c.blocks(id)
			hdr := blocks[0].fields
			got := want{strings.Join(hdr["content-type"], ","), strings.Join(hdr["content-length"], ","), len(body)}
			if std && tc.path == "/long" {
				tc.want.length = ""
			}
			if got != tc.want {
				t.Errorf("%s %s: content-type %q, content-length %q, %d body bytes; want %q, %q, %d",
					tc.method, tc.path, got.ctype, got.length, got.body, tc.want.ctype, tc.want.length, tc.want.body)
			}
		}
	})
}
