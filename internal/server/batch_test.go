package server

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestBatchedFlushes(t *testing.T) {
	t.Parallel()
	services := []string{"teams.v1.TeamsService", "routeguide.v1.RouteGuideService"}
	for _, tc := range []struct {
		path      string
		pause     time.Duration // between the two flushes
		wantFlush bool
	}{
		{"/teams.v1.TeamsService/GetTeam", 3 * maxFlushDelay, false},               // unary: the server flushes at return
		{"/routeguide.v1.RouteGuideService/RouteChat", 0, true},                    // bidi: every message at once
		{"/routeguide.v1.RouteGuideService/RecordRoute", 0, true},                  // not batched
		{"/routeguide.v1.RouteGuideService/ListFeatures", 0, false},                // tight loop: batched
		{"/routeguide.v1.RouteGuideService/ListFeatures", 2 * maxFlushDelay, true}, // slow sender still streams
		{"/unknown.Service/Method", 0, true},
	} {
		h := withBatchedFlushes(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte("message"))
			time.Sleep(tc.pause)
			w.(http.Flusher).Flush()
		}), services)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, tc.path, nil))
		if rec.Flushed != tc.wantFlush {
			t.Errorf("%s with %v between sends: flushed %v, want %v", tc.path, tc.pause, rec.Flushed, tc.wantFlush)
		}
	}
}
