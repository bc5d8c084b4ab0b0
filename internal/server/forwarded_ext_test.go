package server_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	greeterv1 "github.com/switchyard/switchyard/gen/greeter/v1"
	"github.com/switchyard/switchyard/gen/greeter/v1/greeterv1connect"
	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/testserver"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The per-call log line names the client a trusted proxy forwarded, and
// the connection's own address when the connection is not from a trusted
// proxy, whatever headers it sends. The test's connections come from
// 127.0.0.1.
func TestForwardedClientAddress(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		trusted string
		headers map[string]string
		want    string // the logged peer; "conn" is the connection's address
	}{
		{"trusted proxy, X-Forwarded-For", "127.0.0.1", map[string]string{"X-Forwarded-For": "198.51.100.7"}, "198.51.100.7"},
		{"a client's own X-Forwarded-For is not believed", "127.0.0.1/32",
			map[string]string{"X-Forwarded-For": "203.0.113.9, 198.51.100.7"}, "198.51.100.7"},
		{"a chain of trusted proxies", "127.0.0.0/8, 10.0.0.0/8",
			map[string]string{"X-Forwarded-For": "203.0.113.9, 10.1.2.3"}, "203.0.113.9"},
		{"X-Real-IP", "127.0.0.1", map[string]string{"X-Real-IP": "2001:db8::5"}, "2001:db8::5"},
		{"X-Forwarded-For wins over X-Real-IP", "127.0.0.1",
			map[string]string{"X-Forwarded-For": "198.51.100.7", "X-Real-IP": "192.0.2.1"}, "198.51.100.7"},
		{"malformed X-Forwarded-For", "127.0.0.1", map[string]string{"X-Forwarded-For": "not-an-address"}, "conn"},
		{"untrusted connection: X-Forwarded-For ignored", "10.0.0.0/8", map[string]string{"X-Forwarded-For": "198.51.100.7"}, "conn"},
		{"untrusted connection: X-Real-IP ignored", "192.0.2.0/24", map[string]string{"X-Real-IP": "198.51.100.7"}, "conn"},
		{"no trusted proxies", "", map[string]string{"X-Forwarded-For": "198.51.100.7"}, "conn"},
		// A zone is free text, and names another host's interface.
		{"an IPv6 zone is dropped", "127.0.0.1", map[string]string{"X-Forwarded-For": "fe80::1%evil level=ERROR"}, "fe80::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			trusted, err := server.ParseTrustedProxies(tc.trusted)
			if err != nil {
				t.Fatal(err)
			}
			logs := &lockedBuffer{}
			srv := testserver.Start(t, server.Config{TrustedProxies: trusted, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
			for _, p := range testserver.Protocols() {
				client := greeterv1connect.NewGreeterServiceClient(srv.HTTPClient, srv.URL, p.Opts...)
				req := connect.NewRequest(&greeterv1.SayHelloRequest{Name: "proxy"})
				for k, v := range tc.headers {
					req.Header().Set(k, v)
				}
				if _, err := client.SayHello(t.Context(), req); err != nil {
					t.Fatalf("%s: %v", p.Name, err)
				}
			}
			// A call's line is written once its response is on the wire:
			// the last may still be on its way when the client returns.
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) &&
				strings.Count(logs.String(), `"msg":"rpc"`) < len(testserver.Protocols()); time.Sleep(10 * time.Millisecond) {
			}
			n := 0
			for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				var rec struct{ Msg, Peer string }
				if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg != "rpc" {
					continue
				}
				n++
				if tc.want == "conn" {
					if !strings.HasPrefix(rec.Peer, "127.0.0.1:") {
						t.Errorf("peer %q, want the connection's 127.0.0.1:port", rec.Peer)
					}
				} else if rec.Peer != tc.want {
					t.Errorf("peer %q, want %q", rec.Peer, tc.want)
				}
			}
			if n != len(testserver.Protocols()) {
				t.Errorf("%d rpc log lines, want %d:\n%s", n, len(testserver.Protocols()), logs)
			}
		})
	}
}

// A call rejected before any handler sees it (a body that does not
// decode, an unknown method, a content type not served) is logged with
// the client a trusted proxy forwarded too, over either HTTP/2 server and
// over HTTP/1.1.
func TestForwardedClientOfRejectedCalls(t *testing.T) {
	t.Parallel()
	trusted, err := server.ParseTrustedProxies("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		path, contentType, body string
		status                  int
	}{
		{greeterv1connect.GreeterServiceSayHelloProcedure, "application/json", "{", http.StatusBadRequest},
		{"/greeter.v1.GreeterService/NoSuchMethod", "application/json", "{}", http.StatusNotFound},
		{greeterv1connect.GreeterServiceSayHelloProcedure, "text/plain", "hello", http.StatusUnsupportedMediaType},
	}
	for _, stdHTTP2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "internal/h2", true: "net/http"}[stdHTTP2], func(t *testing.T) {
			t.Parallel()
			logs := &lockedBuffer{}
			srv := testserver.StartWith(t, server.Config{TrustedProxies: trusted, Logger: slog.New(slog.NewJSONHandler(logs, nil))},
				testserver.Options{HTTP: server.HTTPConfig{StdHTTP2: stdHTTP2}})
			http1 := &http.Client{Transport: &http.Transport{}}
			defer http1.CloseIdleConnections()
			for _, client := range []*http.Client{srv.HTTPClient, http1} {
				for _, c := range calls {
					a := testserver.Ask(client, http.MethodPost, srv.URL+c.path,
						http.Header{"Content-Type": {c.contentType}, "X-Forwarded-For": {"203.0.113.7"}}, []byte(c.body))
					if a.Status != c.status {
						t.Fatalf("%s %s: %v, want status %d", c.path, c.contentType, a, c.status)
					}
				}
			}
			want := 2 * len(calls)
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) &&
				strings.Count(logs.String(), `"msg":"rpc"`) < want; time.Sleep(10 * time.Millisecond) {
			}
			n := 0
			for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				var rec struct {
					Msg, Peer, Procedure string
					Status               int `json:"http_status"`
				}
				if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg != "rpc" {
					continue
				}
				n++
				if rec.Peer != "203.0.113.7" {
					t.Errorf("%s (%d): peer %q, want the forwarded 203.0.113.7", rec.Procedure, rec.Status, rec.Peer)
				}
			}
			if n != want {
				t.Errorf("%d rpc log lines, want %d:\n%s", n, want, logs)
			}
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	t.Parallel()
	got, err := server.ParseTrustedProxies(" 10.0.0.0/8, 127.0.0.1 ,::1,192.168.1.7/24,")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32"),
		netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("192.168.1.0/24")}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("prefix %d = %v, want %v", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "proxy.example.com", "10.0.0"} {
		if _, err := server.ParseTrustedProxies(bad); err == nil {
			t.Errorf("ParseTrustedProxies(%q) succeeded", bad)
		}
	}
	if got, err := server.ParseTrustedProxies(""); err != nil || len(got) != 0 {
		t.Errorf(`ParseTrustedProxies("") = %v, %v`, got, err)
	}
}
