package h2

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The net/http adapter's flush policies: unary held to the end, tight
// server streams batched (a slow sender still streams), a chat's replies
// held while it sends and flushed before it waits for the client, other
// procedures untouched; over HTTP/1.1 every procedure untouched.
func TestStdTuningFlushes(t *testing.T) {
	t.Parallel()
	unary := []string{"/teams.v1.TeamsService/GetTeam", "/routeguide.v1.RouteGuideService/GetFeature"}
	for _, tc := range []struct {
		path      string
		pause     time.Duration // between the send and its flush
		receive   bool          // the handler reads the request after sending
		wantFlush bool
	}{
		{"/teams.v1.TeamsService/GetTeam", 3 * maxFlushDelay, false, false},
		{"/routeguide.v1.RouteGuideService/RecordRoute", 0, false, true},
		{"/routeguide.v1.RouteGuideService/ListFeatures", 0, false, false},
		{"/routeguide.v1.RouteGuideService/ListFeatures", 2 * maxFlushDelay, false, true},
		{"/routeguide.v1.RouteGuideService/RouteChat", 0, false, false},
		{"/routeguide.v1.RouteGuideService/RouteChat", 0, true, true},
		{"/unknown.Service/Method", 0, false, true},
	} {
		h := stdTuning(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("message"))
			time.Sleep(tc.pause)
			w.(http.Flusher).Flush()
			if tc.receive {
				_, _ = io.ReadAll(r.Body)
			}
		}), unary)
		for _, major := range []int{2, 1} {
			req := httptest.NewRequest(http.MethodPost, tc.path, strings.NewReader("request"))
			req.ProtoMajor, req.ProtoMinor = major, 0
			if major == 1 {
				req.ProtoMinor = 1
			}
			// Over HTTP/1.1 nothing is held back: a flush is what makes the
			// reply chunked, so that it can carry trailers.
			want := tc.wantFlush || major == 1
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Flushed != want {
				t.Errorf("%s over HTTP/%d (pause %v, receive %v): flushed %v, want %v", tc.path, major, tc.pause, tc.receive, rec.Flushed, want)
			}
		}
	}
}

// A body read after its handler returned fails: the pooled buffer may
// serve another request by then.
func TestStdTuningBodyReleased(t *testing.T) {
	t.Parallel()
	var kept io.Reader
	h := stdTuning(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got, err := io.ReadAll(r.Body)
		if err != nil || string(got) != "0123456789" {
			t.Errorf("body %q, %v", got, err)
		}
		kept = r.Body
	}), nil)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/x", strings.NewReader("0123456789")))
	if _, err := kept.Read(make([]byte, 1)); !errors.Is(err, errBodyReleased) {
		t.Fatalf("read after the handler returned: %v, want %v", err, errBodyReleased)
	}
}
