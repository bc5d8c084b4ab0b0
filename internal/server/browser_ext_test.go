package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/testserver"
	"github.com/switchyard/switchyard/web"
)

func preflight(t *testing.T, srv *testserver.Server, origin string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodOptions, srv.URL+"/teams.v1.TeamsService/GetTeam", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "connect-protocol-version,content-type,grpc-timeout,x-grpc-web,x-user-agent") // sorted, as browsers send them
	res, err := srv.HTTPClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

func TestCORS(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{CORSOrigins: []string{"https://console.example"}})

	res := preflight(t, srv, "https://console.example")
	if got := res.Header.Get("Access-Control-Allow-Origin"); got != "https://console.example" {
		t.Errorf("preflight Allow-Origin %q", got)
	}
	if got := res.Header.Get("Access-Control-Max-Age"); got != "7200" {
		t.Errorf("preflight Max-Age %q, want 7200 (cached preflights)", got)
	}
	if got := res.Header.Get("Access-Control-Allow-Credentials"); got != "" {
		t.Errorf("credentials allowed cross-origin: %q", got)
	}
	if got := preflight(t, srv, "https://evil.example").Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("origin not in the list got Allow-Origin %q", got)
	}

	// An actual gRPC-Web call from the allowed origin exposes the status headers.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/teams.v1.TeamsService/GetTeam", strings.NewReader("\x00\x00\x00\x00\x00"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", "https://console.example")
	req.Header.Set("Content-Type", "application/grpc-web+proto")
	res, err = srv.HTTPClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	exposed := strings.ToLower(res.Header.Get("Access-Control-Expose-Headers"))
	for _, h := range []string{"grpc-status", "grpc-message", "grpc-status-details-bin"} {
		if !strings.Contains(exposed, h) {
			t.Errorf("Expose-Headers %q lacks %s", exposed, h)
		}
	}
}

func TestCORSDisabledByDefault(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	if got := preflight(t, srv, "https://console.example").Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("no CORSOrigins configured, but Allow-Origin %q", got)
	}
}

// TestConsoleDoesNotShadowProcedures: the console answers GET / and
// /console/*, while unknown procedures still get connect's 404 /
// UNIMPLEMENTED in every protocol.
func TestConsoleDoesNotShadowProcedures(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	for path, want := range map[string]string{"/": "<title>Switchyard console</title>", "/console/app.js": "", "/console/style.css": "#map"} {
		res, err := srv.HTTPClient.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(string(body), want) || len(body) == 0 {
			t.Errorf("GET %s: %d, %d bytes", path, res.StatusCode, len(body))
		}
		// Its own script and style only, framed by no page, not sniffed,
		// never reused without asking.
		for field, want := range map[string]string{
			"Content-Security-Policy": "script-src 'self'", "X-Frame-Options": "DENY",
			"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache", "Referrer-Policy": "no-referrer",
		} {
			if got := res.Header.Get(field); !strings.Contains(got, want) {
				t.Errorf("GET %s: %s %q, want %q in it", path, field, got, want)
			}
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
	}
	res, err := srv.HTTPClient.Get(srv.URL + "/index.html.missing")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("GET of an unknown page: %d, want 404", res.StatusCode)
	}
	for _, p := range testserver.Protocols() {
		client := connect.NewClient[emptypb.Empty, emptypb.Empty](srv.HTTPClient, srv.URL+"/nope.v1.NopeService/Nope", p.Opts...)
		_, err := client.CallUnary(context.Background(), connect.NewRequest(&emptypb.Empty{}))
		if ce := new(connect.Error); !errors.As(err, &ce) || ce.Code() != connect.CodeUnimplemented {
			t.Errorf("%s: unknown procedure error %v, want unimplemented", p.Name, err)
		}
	}
}

// TestConsoleListsNoFolder: /console/ serves the console's files, not a
// listing of them; an unknown asset is a 404 with the console's headers.
func TestConsoleListsNoFolder(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	for _, path := range []string{"/console/", "/console/nope.js"} {
		res, err := srv.HTTPClient.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound || strings.Contains(string(body), "app.js") {
			t.Errorf("GET %s: %d %q, want a 404 that lists nothing", path, res.StatusCode, body)
		}
		if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q", path, got)
		}
	}
}

// TestConsoleRevalidates: each console file carries an ETag made of its
// content, so a browser (told no-cache) revalidates it with a 304
// instead of downloading it again, and a rebuilt file, whose content
// differs, is never taken for the one it has.
func TestConsoleRevalidates(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	get := func(path, ifNoneMatch string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ifNoneMatch != "" {
			req.Header.Set("If-None-Match", ifNoneMatch)
		}
		res, err := srv.HTTPClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res, body
	}
	for path, file := range map[string]string{"/": "index.html", "/console/app.js": "console/app.js", "/console/style.css": "console/style.css"} {
		res, body := get(path, "")
		want, err := fs.ReadFile(web.Assets(), file)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(want)
		tag := res.Header.Get("ETag")
		if res.StatusCode != http.StatusOK || !bytes.Equal(body, want) || tag != `"`+hex.EncodeToString(sum[:16])+`"` {
			t.Errorf("GET %s: %d, %d bytes, ETag %q; want 200, %s, the ETag of its content", path, res.StatusCode, len(body), tag, file)
			continue
		}
		if res, body := get(path, tag); res.StatusCode != http.StatusNotModified || len(body) != 0 {
			t.Errorf("GET %s If-None-Match %s: %d, %d bytes; want 304", path, tag, res.StatusCode, len(body))
		}
		if res, _ := get(path, `"a-build-before"`); res.StatusCode != http.StatusOK {
			t.Errorf("GET %s with another build's ETag: %d, want 200", path, res.StatusCode)
		}
	}
}
