package outcome_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/outcome"
)

// records is an outcome.Observer that hands a copy of each record ended to
// the test.
type records chan outcome.Record

func (r records) CallStarted(*outcome.Record) {}
func (r records) CallEnded(rec *outcome.Record) {
	c := *rec
	c.Header, c.Span = nil, nil
	r <- c
}
func (records) StreamReset(bool, uint32)            {}
func (records) StreamRefused()                      {}
func (records) GoAway(uint32, outcome.GoAwayReason) {}
func (records) PingTimeout()                        {}
func (records) WriteTimeout()                       {}
func (r records) next(t *testing.T) outcome.Record {
	t.Helper()
	select {
	case rec := <-r:
		return rec
	case <-time.After(10 * time.Second):
		t.Fatal("no record")
		return outcome.Record{}
	}
}

// observed serves h through Observe on a real loopback listener, over
// HTTP/1.1, or with net/http's HTTP/2 server over cleartext (h2c), and
// returns its URL, a client that speaks the same, and the records.
func observed(t *testing.T, h http.Handler, http2 bool) (string, *http.Client, records) {
	t.Helper()
	recs := make(records, 16)
	srv := httptest.NewUnstartedServer(outcome.Observe(h, recs))
	tr := &http.Transport{}
	if http2 {
		srv.Config.Protocols = new(http.Protocols)
		srv.Config.Protocols.SetUnencryptedHTTP2(true)
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(tr.CloseIdleConnections)
	return srv.URL, &http.Client{Transport: tr}, recs
}

// streaming answers with a first message at once and then waits for the
// client to go, as a server stream between its messages does.
func streaming(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
	_, _ = w.Write([]byte{0, 0, 0, 0, 1, 'x'})
	w.(http.Flusher).Flush()
	<-r.Context().Done()
}

// A call whose client goes before its status is recorded with the code
// its client reports, whatever the transport: canceled for its cancel
// (over HTTP/1.1, where the client can only close the connection, and
// over HTTP/2, where it resets the stream), deadline_exceeded for its
// deadline, which its request's header states.
func TestObserveClientGoes(t *testing.T) {
	for _, http2 := range []bool{false, true} {
		wantEnd := outcome.EndConnClosed
		if http2 {
			wantEnd = outcome.EndClientReset
		}
		for _, tc := range []struct {
			name     string
			deadline time.Duration // the client's; zero: it cancels instead
			want     outcome.Code
		}{
			{"cancel", 0, outcome.CodeCanceled},
			{"deadline", 300 * time.Millisecond, outcome.CodeDeadlineExceeded},
		} {
			t.Run(map[bool]string{false: "HTTP/1.1", true: "net/http HTTP/2"}[http2]+" "+tc.name, func(t *testing.T) {
				url, client, recs := observed(t, http.HandlerFunc(streaming), http2)
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				if tc.deadline > 0 {
					ctx, cancel = context.WithTimeout(ctx, tc.deadline)
					defer cancel()
				}
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/routeguide.v1.RouteGuideService/ListFeatures", strings.NewReader("\x00\x00\x00\x00\x00"))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/connect+proto")
				if tc.deadline > 0 {
					// As connect-go sends it: the time left when the
					// request is made.
					req.Header.Set("Connect-Timeout-Ms", "300")
				}
				res, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				if _, err := io.ReadFull(res.Body, make([]byte, 6)); err != nil {
					t.Fatal(err)
				}
				if tc.deadline == 0 {
					cancel()
				}
				if _, err := io.ReadAll(res.Body); err == nil {
					t.Fatal("the body ended without the client going")
				}
				rec := recs.next(t)
				if rec.End != wantEnd || rec.Code != tc.want {
					t.Errorf("record %v %v, want %v %v", rec.End, rec.Code, wantEnd, tc.want)
				}
			})
		}
	}
}

// bareRejection answers as connect-go answers a content type it does not
// serve or a GET it cannot read, with an empty 415 (the transport
// explains it), and an unknown procedure with a Connect error, without
// reading the request.
func bareRejection(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/NoSuchMethod") {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"code":"unimplemented","message":"no such method"}`)
		return
	}
	w.Header().Set("Accept-Post", "application/grpc, application/grpc-web, application/proto")
	w.WriteHeader(http.StatusUnsupportedMediaType)
}

// A rejection's plain-text explanation is counted in the bytes sent but
// holds no message (its first letters are no envelope's prefix), and a
// Connect unary request refused before it was read holds none either,
// over HTTP/1.1 and net/http's HTTP/2 server alike.
func TestObserveCountsNoMessagesInRejections(t *testing.T) {
	for _, http2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "HTTP/1.1", true: "net/http HTTP/2"}[http2], func(t *testing.T) {
			url, client, recs := observed(t, http.HandlerFunc(bareRejection), http2)
			for _, tc := range []struct {
				method, path, contentType, body string
				status                          int
			}{
				{"POST", "/greeter.v1.GreeterService/SayHello", "application/grpc-web+bogus", "abc", http.StatusUnsupportedMediaType},
				{"POST", "/greeter.v1.GreeterService/SayHello", "application/grpc+bogus", "abc", http.StatusUnsupportedMediaType},
				{"POST", "/greeter.v1.GreeterService/SayHello", "application/connect+bogus", "abc", http.StatusUnsupportedMediaType},
				{"GET", "/greeter.v1.GreeterService/SayHello?encoding=xml&message=x", "", "", http.StatusUnsupportedMediaType},
				{"GET", "/greeter.v1.GreeterService/NoSuchMethod?encoding=json&message={}", "", "", http.StatusNotFound},
			} {
				req, err := http.NewRequest(tc.method, url+tc.path, strings.NewReader(tc.body))
				if err != nil {
					t.Fatal(err)
				}
				if tc.contentType != "" {
					req.Header.Set("Content-Type", tc.contentType)
				}
				res, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				rec := recs.next(t)
				if res.StatusCode != tc.status || rec.MsgsIn != 0 || rec.MsgsOut != 0 || rec.BytesOut != int64(len(body)) {
					t.Errorf("%s %s (%s): %d, %d messages in, %d out, %d bytes out; want %d, none, %d bytes (%q)",
						tc.method, tc.path, tc.contentType, res.StatusCode, rec.MsgsIn, rec.MsgsOut, rec.BytesOut, tc.status, len(body), body)
				}
			}
		})
	}
}

// A call whose client goes before its response's header was written has
// no HTTP status in its record: the 200 net/http would answer for a
// handler that writes nothing never reached the client.
func TestObserveUnansweredCallHasNoStatus(t *testing.T) {
	for _, http2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "HTTP/1.1", true: "net/http HTTP/2"}[http2], func(t *testing.T) {
			// It reads the request first: net/http notices an HTTP/1.1
			// client's close only once the body is read.
			silent := func(_ http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				<-r.Context().Done()
			}
			url, client, recs := observed(t, http.HandlerFunc(silent), http2)
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/routeguide.v1.RouteGuideService/GetFeature", strings.NewReader("\x00\x00\x00\x00\x00"))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/grpc")
			if res, err := client.Do(req); err == nil {
				res.Body.Close()
				t.Fatalf("the client got an answer: %s", res.Status)
			}
			if rec := recs.next(t); rec.End == outcome.EndSent || rec.HTTPStatus != 0 {
				t.Errorf("record %v, HTTP status %d; want no status for a call never answered", rec.End, rec.HTTPStatus)
			}
		})
	}
}
