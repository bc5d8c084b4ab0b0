package h2_test

import (
	"net/http"
	"testing"

	"github.com/switchyard/switchyard/internal/h2"
)

// A gRPC response that ends with no body and no header metadata of the
// handler's own goes out as gRPC's Trailers-Only response: one HEADERS
// frame with END_STREAM holding its header fields and trailers, as
// grpc-go's server sends it (clients retry only such answers under a
// retry policy). Any other response keeps its headers and trailers apart.
func TestGRPCTrailersOnly(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	// As connect-go ends a call: the status in trailers, then a Flush as
	// the handler returns.
	mux.HandleFunc("/grpc/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
		w.Header().Set("Grpc-Accept-Encoding", "gzip")
		if r.URL.Query().Has("custom") {
			w.Header().Set("X-Custom", "header")
		}
		if r.URL.Query().Has("body") {
			_, _ = w.Write([]byte{0, 0, 0, 0, 0})
		}
		w.Header().Set(http.TrailerPrefix+"Grpc-Status", "14")
		w.Header().Set(http.TrailerPrefix+"Grpc-Message", "retry it")
		w.(http.Flusher).Flush()
	})
	srv := startServer(t, mux, h2.Config{}, serverOpts{})
	c := dialRaw(t, srv.addr)
	id := uint32(1)
	for _, tt := range []struct {
		path, contentType string
		blocks            int // HEADERS blocks: 1 is Trailers-Only
	}{
		{"/grpc/", "application/grpc", 1},
		{"/grpc/", "application/grpc+proto", 1},
		{"/grpc/", "application/grpc", 1}, // again: the encoder's remembered blocks
		{"/grpc/?custom", "application/grpc", 2},
		{"/grpc/?body", "application/grpc", 2},
		{"/grpc/", "application/grpc-web", 2},
		{"/grpc/", "application/grpc", 1},
	} {
		c.request(id, "POST", tt.path, true, "content-type", tt.contentType)
		blocks, body, err := c.readResponse(id)
		if err != nil {
			t.Fatalf("%s %s: %v", tt.path, tt.contentType, err)
		}
		if len(blocks) != tt.blocks {
			t.Errorf("%s %s: %d header blocks %v, want %d", tt.path, tt.contentType, len(blocks), blocks, tt.blocks)
			id += 2
			continue
		}
		first, last := blocks[0], blocks[len(blocks)-1]
		if first.status != "200" || first.fields["content-type"][0] != tt.contentType || !last.ended ||
			last.fields["grpc-status"][0] != "14" || last.fields["grpc-message"][0] != "retry it" {
			t.Errorf("%s %s: blocks %v", tt.path, tt.contentType, blocks)
		}
		if tt.blocks == 1 && (len(body) != 0 || first.fields["grpc-accept-encoding"][0] != "gzip") {
			t.Errorf("%s %s: Trailers-Only %v, body %q", tt.path, tt.contentType, blocks, body)
		}
		if tt.blocks == 2 && first.fields["grpc-status"] != nil {
			t.Errorf("%s %s: the status went out with the headers: %v", tt.path, tt.contentType, blocks)
		}
		id += 2
	}
}
