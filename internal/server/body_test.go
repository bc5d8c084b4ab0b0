package server

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestBufferedBodies(t *testing.T) {
	t.Parallel()
	var kept io.Reader
	h := withBufferedBodies(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got, err := io.ReadAll(r.Body)
		if err != nil || string(got) != "0123456789" {
			t.Errorf("body %q, %v", got, err)
		}
		kept = r.Body
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/x", strings.NewReader("0123456789")))
	// The pooled buffer may serve another request now: a late read fails
	// instead of reading someone else's bytes.
	if _, err := kept.Read(make([]byte, 1)); !errors.Is(err, errBodyReleased) {
		t.Fatalf("read after the handler returned: %v, want %v", err, errBodyReleased)
	}
}
