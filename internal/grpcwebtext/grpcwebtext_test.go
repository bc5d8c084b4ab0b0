package grpcwebtext_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	routeguidev1 "github.com/switchyard/switchyard/gen/routeguide/v1"
	"github.com/switchyard/switchyard/gen/routeguide/v1/routeguidev1connect"
	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/internal/grpcwebtext"
	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/testserver"
)

// frame is one gRPC-Web frame: flags (0x80 = trailers) and payload.
type frame struct {
	flags byte
	data  []byte
}

func envelope(t *testing.T, msg proto.Message) []byte {
	t.Helper()
	data, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 5, 5+len(data))
	binary.BigEndian.PutUint32(out[1:], uint32(len(data)))
	return append(out, data...)
}

// encodeChunks base64-encodes b as separately padded chunks split at the
// given offsets, as gRPC-Web text clients may send it.
func encodeChunks(b []byte, splits ...int) string {
	var sb strings.Builder
	prev := 0
	for _, s := range append(splits, len(b)) {
		sb.WriteString(base64.StdEncoding.EncodeToString(b[prev:s]))
		prev = s
	}
	return sb.String()
}

// decodeText decodes a text response: base64 in 4-character quanta, with
// padding allowed at the end of any quantum.
func decodeText(t *testing.T, s string) []byte {
	t.Helper()
	if len(s)%4 != 0 {
		t.Fatalf("response body is %d base64 characters, not a multiple of 4: %q", len(s), s)
	}
	var out []byte
	for i := 0; i < len(s); i += 4 {
		b, err := base64.StdEncoding.DecodeString(s[i : i+4])
		if err != nil {
			t.Fatalf("response body is not base64 at %d: %v (%q)", i, err, s)
		}
		out = append(out, b...)
	}
	return out
}

func parseFrames(t *testing.T, b []byte) []frame {
	t.Helper()
	var frames []frame
	for len(b) > 0 {
		if len(b) < 5 {
			t.Fatalf("truncated frame header: %x", b)
		}
		n := int(binary.BigEndian.Uint32(b[1:5]))
		if len(b) < 5+n {
			t.Fatalf("frame says %d bytes, %d left", n, len(b)-5)
		}
		frames = append(frames, frame{flags: b[0], data: b[5 : 5+n]})
		b = b[5+n:]
	}
	return frames
}

func trailerOf(t *testing.T, frames []frame) http.Header {
	t.Helper()
	if len(frames) == 0 || frames[len(frames)-1].flags&0x80 == 0 {
		t.Fatalf("response does not end with a trailer frame: %v", frames)
	}
	tp := bufio.NewReader(bytes.NewReader(append(frames[len(frames)-1].data, "\r\n"...)))
	h := http.Header{}
	for {
		line, err := tp.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		if line == "" || err != nil {
			return h
		}
		k, v, _ := strings.Cut(line, ":")
		h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
}

func postText(t *testing.T, client *http.Client, url, contentType, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Grpc-Web", "1")
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.ProtoMajor != 2 {
		t.Fatalf("response over HTTP/%d, want HTTP/2", res.ProtoMajor)
	}
	return res, string(b)
}

// TestUnary calls GetTeam in text mode over HTTP/2 against the whole
// server, with both text content types (in any case, as media types are
// and as the server takes binary gRPC-Web's) and a request body made of
// several separately padded base64 chunks.
func TestUnary(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	req := envelope(t, &teamsv1.GetTeamRequest{City: "Chicago"})
	for _, ct := range []string{"application/grpc-web-text", "application/grpc-web-text+proto", "Application/gRPC-Web-Text+proto"} {
		for _, body := range []string{encodeChunks(req), encodeChunks(req, 1, 5, 7)} {
			t.Run(ct, func(t *testing.T) {
				res, text := postText(t, srv.HTTPClient, srv.URL+"/teams.v1.TeamsService/GetTeam", ct, body)
				if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/grpc-web-text") {
					t.Fatalf("status %d, content-type %q", res.StatusCode, res.Header.Get("Content-Type"))
				}
				frames := parseFrames(t, decodeText(t, text))
				if len(frames) != 2 {
					t.Fatalf("got %d frames, want a message and trailers", len(frames))
				}
				var got teamsv1.GetTeamResponse
				if err := proto.Unmarshal(frames[0].data, &got); err != nil {
					t.Fatal(err)
				}
				if got.GetNickname() != "Jackals" {
					t.Errorf("nickname %q, want Jackals", got.GetNickname())
				}
				if s := trailerOf(t, frames).Get("grpc-status"); s != "0" {
					t.Errorf("grpc-status %q, want 0", s)
				}
			})
		}
	}
}

// TestErrors: server errors and undecodable bodies come back as gRPC
// statuses in an encoded trailer frame.
func TestErrors(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	url := srv.URL + "/teams.v1.TeamsService/GetTeam"
	for _, tc := range []struct {
		name, body, status, message string
	}{
		{"not found", encodeChunks(envelope(t, &teamsv1.GetTeamRequest{City: "Atlantis"})), "5", "Atlantis"},
		{"not base64", "!!!!AAAA", "3", "not valid base64"},
		{"truncated base64", "AAAAAA", "3", "groups of 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res, text := postText(t, srv.HTTPClient, url, "application/grpc-web-text+proto", tc.body)
			if !strings.HasPrefix(res.Header.Get("Content-Type"), "application/grpc-web-text") {
				t.Fatalf("content-type %q", res.Header.Get("Content-Type"))
			}
			// connect may put the status in headers (trailers-only) or in
			// the encoded trailer frame; both are valid gRPC-Web.
			status, message := res.Header.Get("Grpc-Status"), res.Header.Get("Grpc-Message")
			if text != "" {
				tr := trailerOf(t, parseFrames(t, decodeText(t, text)))
				status, message = tr.Get("grpc-status"), tr.Get("grpc-message")
			}
			if status != tc.status || !strings.Contains(message, strings.ReplaceAll(tc.message, " ", "%20")) && !strings.Contains(message, tc.message) {
				t.Errorf("grpc-status %q message %q, want %s containing %q", status, message, tc.status, tc.message)
			}
		})
	}
}

// holdingRouteGuide sends one feature, waits for release, sends another.
type holdingRouteGuide struct {
	routeguidev1connect.UnimplementedRouteGuideServiceHandler
	release chan struct{}
}

func (h *holdingRouteGuide) ListFeatures(ctx context.Context, _ *connect.Request[routeguidev1.ListFeaturesRequest], stream *connect.ServerStream[routeguidev1.ListFeaturesResponse]) error {
	if err := stream.Send(&routeguidev1.ListFeaturesResponse{Name: "first feature"}); err != nil {
		return err
	}
	select {
	case <-h.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return stream.Send(&routeguidev1.ListFeaturesResponse{Name: "second"})
}

// TestServerStreamFlushesPerMessage proves the stream is not buffered: the
// client decodes the first message while the handler is still blocked
// before sending the second.
func TestServerStreamFlushesPerMessage(t *testing.T) {
	t.Parallel()
	h := &holdingRouteGuide{release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.Handle(routeguidev1connect.NewRouteGuideServiceHandler(h))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := server.NewHTTPServer(grpcwebtext.Handler(mux), server.HTTPConfig{}, nil)
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	body := encodeChunks(envelope(t, &routeguidev1.ListFeaturesRequest{}))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+ln.Addr().String()+"/routeguide.v1.RouteGuideService/ListFeatures", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/grpc-web-text+proto")
	res, err := testserver.NewH2CClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()

	// Read until the first message frame decodes; the handler is blocked.
	var got []byte
	buf := make([]byte, 64)
	for {
		n, err := res.Body.Read(buf)
		got = append(got, buf[:n]...)
		if whole := len(got) - len(got)%4; whole > 0 {
			if b := decodeText(t, string(got[:whole])); len(b) >= 5 && len(b) >= 5+int(binary.BigEndian.Uint32(b[1:5])) {
				break
			}
		}
		if err != nil {
			t.Fatalf("stream ended (%v) before the first message arrived: %q", err, got)
		}
	}
	close(h.release)
	rest, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	frames := parseFrames(t, decodeText(t, string(got)+string(rest)))
	var names []string
	for _, f := range frames[:len(frames)-1] {
		var m routeguidev1.ListFeaturesResponse
		if err := proto.Unmarshal(f.data, &m); err != nil {
			t.Fatal(err)
		}
		names = append(names, m.GetName())
	}
	if strings.Join(names, ",") != "first feature,second" {
		t.Errorf("messages %v, want first feature,second", names)
	}
	if s := trailerOf(t, frames).Get("grpc-status"); s != "0" {
		t.Errorf("grpc-status %q, want 0", s)
	}
}

// TestServerStreamWholeMap streams all 100 features in text mode through
// the real server.
func TestServerStreamWholeMap(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	body := encodeChunks(envelope(t, &routeguidev1.ListFeaturesRequest{
		Lo: &routeguidev1.Point{Latitude: 400000000, Longitude: -750000000},
		Hi: &routeguidev1.Point{Latitude: 420000000, Longitude: -730000000},
	}))
	_, text := postText(t, srv.HTTPClient, srv.URL+"/routeguide.v1.RouteGuideService/ListFeatures", "application/grpc-web-text", body)
	frames := parseFrames(t, decodeText(t, text))
	if len(frames) != 101 {
		t.Fatalf("got %d frames, want 100 features and trailers", len(frames))
	}
	if s := trailerOf(t, frames).Get("grpc-status"); s != "0" {
		t.Errorf("grpc-status %q, want 0", s)
	}
}

// TestPassThrough: requests that are not gRPC-Web text reach the handler
// unchanged, and non-gRPC-Web answers to text requests (an unknown path's
// 404) are not encoded.
func TestPassThrough(t *testing.T) {
	t.Parallel()
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
		_, _ = w.Write(b)
	})
	h := grpcwebtext.Handler(echo)
	for _, ct := range []string{"application/grpc-web+proto", "application/proto", "application/json", "application/grpc", "application/grpc-web-textual"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader("AAAA raw body"))
		req.Header.Set("Content-Type", ct)
		h.ServeHTTP(rec, req)
		if rec.Body.String() != "AAAA raw body" || rec.Header().Get("Content-Type") != ct {
			t.Errorf("%s: body %q content-type %q, want untouched", ct, rec.Body.String(), rec.Header().Get("Content-Type"))
		}
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/missing", strings.NewReader("AAAA"))
	req.Header.Set("Content-Type", "application/grpc-web-text")
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "404 page not found") {
		t.Errorf("unknown path: %d %q, want a plain 404", rec.Code, rec.Body.String())
	}
}

// TestBodyReadError: a broken connection surfaces as a read error, not as
// garbage decoded bytes.
func TestBodyReadError(t *testing.T) {
	t.Parallel()
	boom := errors.New("connection reset")
	var readErr error
	h := grpcwebtext.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, readErr = io.ReadAll(r.Body)
	}))
	req := httptest.NewRequest(http.MethodPost, "/x", io.MultiReader(strings.NewReader("AAAA"), errReader{boom}))
	req.Header.Set("Content-Type", "application/grpc-web-text")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if !errors.Is(readErr, boom) {
		t.Errorf("read error %v, want %v", readErr, boom)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// BenchmarkPassThrough measures what the middleware adds to a request that
// is not gRPC-Web text (gRPC, binary gRPC-Web, Connect): one header lookup.
func BenchmarkPassThrough(b *testing.B) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	req := httptest.NewRequest(http.MethodPost, "/teams.v1.TeamsService/GetTeam", nil)
	req.Header.Set("Content-Type", "application/grpc")
	rec := httptest.NewRecorder()
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			next.ServeHTTP(rec, req)
		}
	})
	wrapped := grpcwebtext.Handler(next)
	b.Run("wrapped", func(b *testing.B) {
		for b.Loop() {
			wrapped.ServeHTTP(rec, req)
		}
	})
}
