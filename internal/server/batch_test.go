package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestBatchedFlushes(t *testing.T) {
	t.Parallel()
	services := []string{"teams.v1.TeamsService", "routeguide.v1.RouteGuideService"}
	for _, tc := range []struct {
		path      string
		pause     time.Duration // between the send and its flush
		receive   bool          // the handler reads the request after sending
		wantFlush bool
	}{
		{"/teams.v1.TeamsService/GetTeam", 3 * maxFlushDelay, false, false},               // unary: the server flushes at return
		{"/routeguide.v1.RouteGuideService/RecordRoute", 0, false, true},                  // not batched
		{"/routeguide.v1.RouteGuideService/ListFeatures", 0, false, false},                // tight loop: batched
		{"/routeguide.v1.RouteGuideService/ListFeatures", 2 * maxFlushDelay, false, true}, // slow sender still streams
		{"/routeguide.v1.RouteGuideService/RouteChat", 0, false, false},                   // reply held while sending
		{"/routeguide.v1.RouteGuideService/RouteChat", 0, true, true},                     // ...and sent before waiting for the client
		{"/unknown.Service/Method", 0, false, true},
	} {
		h := withBufferedBodies(withBatchedFlushes(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("message"))
			time.Sleep(tc.pause)
			w.(http.Flusher).Flush()
			if tc.receive {
				_, _ = io.ReadAll(r.Body)
			}
		}), services))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, tc.path, strings.NewReader("request")))
		if rec.Flushed != tc.wantFlush {
			t.Errorf("%s (pause %v, receive %v): flushed %v, want %v", tc.path, tc.pause, tc.receive, rec.Flushed, tc.wantFlush)
		}
	}
}
