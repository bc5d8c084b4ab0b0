package server_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/testserver"
)

// A request that connect-go refuses with a bare HTTP 415 (no or a wrong
// Content-Type, a GET with a body) gets a body that says why and what to
// send, over internal/h2, net/http's HTTP/2 server and HTTP/1.1 alike.
func TestUnsupportedMediaTypeExplained(t *testing.T) {
	for _, stdHTTP2 := range []bool{false, true} {
		srv := testserver.StartWith(t, server.Config{}, testserver.Options{HTTP: server.HTTPConfig{StdHTTP2: stdHTTP2}})
		http1 := &http.Client{Transport: &http.Transport{}}
		defer http1.CloseIdleConnections()
		for name, client := range map[string]*http.Client{"h2c": srv.HTTPClient, "http/1.1": http1} {
			for _, tc := range []struct{ contentType, want string }{
				{"", "the request has no Content-Type header"},
				{"text/xml", "not served with Content-Type text/xml"},
			} {
				req, err := http.NewRequest(http.MethodPost, srv.URL+"/teams.v1.TeamsService/GetTeam", strings.NewReader(`{"city":"Chicago"}`))
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
				where := name
				if stdHTTP2 {
					where += " (net/http HTTP/2 server)"
				}
				if res.StatusCode != http.StatusUnsupportedMediaType {
					t.Errorf("%s, Content-Type %q: HTTP %d, want 415", where, tc.contentType, res.StatusCode)
				}
				if !strings.Contains(string(body), tc.want) || !strings.Contains(string(body), "application/json") {
					t.Errorf("%s, Content-Type %q: body %q, want it to say %q and list the accepted types", where, tc.contentType, body, tc.want)
				}
				if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
					t.Errorf("%s: Content-Type %q of the explanation", where, ct)
				}
				if res.Header.Get("Accept-Post") == "" {
					t.Errorf("%s: Accept-Post is gone", where)
				}
			}
		}
	}
}

// A GET (or another method) that connect-go refuses with a bare 405 or
// 415 gets a body that says why and what to send instead, over
// internal/h2, net/http's HTTP/2 server and HTTP/1.1 alike.
func TestRefusedMethodsExplained(t *testing.T) {
	const keywords = "/keywords.v1.KeywordsService/GetKeywords"
	cases := []struct {
		method, target string
		status         int
		want           string
	}{
		{"GET", "/teams.v1.TeamsService/PutTeam?encoding=json&message=%7B%7D", http.StatusMethodNotAllowed,
			"this procedure does not answer GET: only unary procedures marked read-only (idempotency_level NO_SIDE_EFFECTS) do; call it with POST\n"},
		{"GET", "/teams.v1.TeamsService/ListTeams?encoding=json&message=%7B%7D", http.StatusMethodNotAllowed,
			"this procedure does not answer GET: only unary procedures"},
		// GetTeam answers GET too (its Allow header says so), PutTeam POST only.
		{"PUT", "/teams.v1.TeamsService/GetTeam", http.StatusMethodNotAllowed, "this procedure does not answer PUT; call it with GET or POST\n"},
		{"DELETE", "/teams.v1.TeamsService/PutTeam", http.StatusMethodNotAllowed, "this procedure does not answer DELETE; call it with POST\n"},
		{"GET", keywords + "?message=%7B%7D", http.StatusUnsupportedMediaType,
			"a GET request to a procedure names its codec and carries its message in the query (?encoding=json&message=<the request as JSON>, or encoding=proto&base64=1&message=<base64 of the binary request>)\n"},
		{"GET", keywords + "?encoding=xml&message=%7B%7D", http.StatusUnsupportedMediaType, "a GET request's encoding is json or proto, not xml ("},
		{"GET", keywords + "?encoding=" + strings.Repeat("x", 30000), http.StatusUnsupportedMediaType,
			"a GET request's encoding is json or proto, not " + strings.Repeat("x", 125) + "... ("},
	}
	for _, stdHTTP2 := range []bool{false, true} {
		logs := &lockedBuffer{}
		srv := testserver.StartWith(t, server.Config{Logger: slog.New(slog.NewJSONHandler(logs, nil))},
			testserver.Options{HTTP: server.HTTPConfig{StdHTTP2: stdHTTP2}})
		http1 := &http.Client{Transport: &http.Transport{}}
		defer http1.CloseIdleConnections()
		calls := map[string]int{}
		for name, client := range map[string]*http.Client{"h2c": srv.HTTPClient, "http/1.1": http1} {
			if stdHTTP2 {
				name += " (net/http HTTP/2 server)"
			}
			for _, tc := range cases {
				res := testserver.Ask(client, tc.method, srv.URL+tc.target, nil, nil)
				if res.Err != "" {
					t.Fatal(res.Err)
				}
				body := res.Body
				if res.Status != tc.status || !strings.HasPrefix(string(body), tc.want) {
					t.Errorf("%s: %s %s: HTTP %d %q, want %d %q", name, tc.method, tc.target, res.Status, body, tc.status, tc.want)
				}
				if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") || res.Header.Get("X-Content-Type-Options") != "nosniff" {
					t.Errorf("%s: %s %s: Content-Type %q of the explanation, X-Content-Type-Options %q (it repeats the request: nosniff)",
						name, tc.method, tc.target, ct, res.Header.Get("X-Content-Type-Options"))
				}
				// The call's log line gives the same reason.
				calls[tc.target]++
				if want := strings.TrimSuffix(string(body), "\n"); !loggedError(logs, tc.target, want, calls[tc.target]) {
					t.Errorf("%s: %s %s: no log line with error %q in\n%s", name, tc.method, tc.target, want, logs)
				}
			}
		}
	}
}

// loggedError reports whether logs (JSON lines) come to hold, within 5 s,
// n calls of target (its path and query) whose error is want: a call is
// logged once its response has gone, so maybe after the client read it.
func loggedError(logs *lockedBuffer, target, want string, n int) bool {
	path, _, _ := strings.Cut(target, "?")
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		found := 0
		for line := range strings.Lines(logs.String()) {
			var rec struct {
				Procedure string `json:"procedure"`
				Error     string `json:"error"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Procedure == path && rec.Error == want {
				found++
			}
		}
		if found >= n {
			return true
		}
	}
	return false
}

// The log line of a call of an unknown service gives the message the
// client got, in Connect's unary and streaming protocols alike (the
// message is longer than most: it lists the services).
func TestUnknownServiceLogged(t *testing.T) {
	logs := &lockedBuffer{}
	srv := testserver.Start(t, server.Config{Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	const path = "/nosuch.v1.Service/Method"
	for i, tc := range []struct {
		contentType, body string
		status            int
	}{
		{"application/json", "{}", http.StatusNotFound},
		{"application/connect+json", "\x00\x00\x00\x00\x02{}", http.StatusOK},
	} {
		res := testserver.Ask(srv.HTTPClient, http.MethodPost, srv.URL+path, http.Header{"Content-Type": {tc.contentType}}, []byte(tc.body))
		if res.Err != "" {
			t.Fatal(res.Err)
		}
		if res.Status != tc.status {
			t.Errorf("%s: HTTP %d, want %d", tc.contentType, res.Status, tc.status)
		}
		body := res.Body
		if i == 1 && len(body) > 5 {
			body = body[5:] // the end-of-stream message's envelope
		}
		var answer struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Error   *struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(body, &answer); err != nil {
			t.Fatalf("%s: %q: %v", tc.contentType, body, err)
		}
		if answer.Error != nil {
			answer.Code, answer.Message = answer.Error.Code, answer.Error.Message
		}
		if answer.Code != "unimplemented" || len(answer.Message) < 300 {
			t.Errorf("%s: answered %q %q, want unimplemented with the services listed", tc.contentType, answer.Code, answer.Message)
		}
		if !loggedError(logs, path, answer.Message, i+1) {
			t.Errorf("%s: no log line with error %q in\n%s", tc.contentType, answer.Message, logs)
		}
	}
}

// A Connect GET whose message is not the base64 its query says it is gets
// invalid_argument (HTTP 400) with what is wrong, through internal/grpcunary
// and through connect-go alone (-grpc-unary connect), where connect-go
// would answer "unknown" with HTTP 500. Good base64, padded or not, is
// read as before.
func TestBadBase64Query(t *testing.T) {
	const keywords = "/keywords.v1.KeywordsService/GetKeywords?encoding=proto&base64=1&message="
	for _, connectOnly := range []bool{false, true} {
		srv := testserver.Start(t, server.Config{ConnectOnly: connectOnly})
		for _, tc := range []struct {
			message string
			status  int
			want    string
		}{
			{"!!!", http.StatusBadRequest, `{"code":"invalid_argument","message":"the query's message is not URL-safe base64 (the alphabet A-Z a-z 0-9 - _, padded or not), as base64=1 says: illegal base64 data at input byte 0"}`},
			{"CgJoaQ+/", http.StatusBadRequest, `"code":"invalid_argument"`},
			{"CgJoaQ", http.StatusOK, `{"keywords":[]}`},   // "hi", unpadded
			{"CgJoaQ==", http.StatusOK, `{"keywords":[]}`}, // padded
		} {
			res := testserver.Ask(srv.HTTPClient, http.MethodGet, srv.URL+keywords+tc.message, http.Header{"Accept": {"application/json"}}, nil)
			if res.Err != "" {
				t.Fatal(res.Err)
			}
			if res.Status != tc.status || (tc.status != http.StatusOK && !strings.Contains(string(res.Body), tc.want)) {
				t.Errorf("connect-only %v, message %q: HTTP %d %q, want %d %q", connectOnly, tc.message, res.Status, res.Body, tc.status, tc.want)
			}
		}
		// Only a procedure that takes GETs reads the query: elsewhere the
		// answer is the path's, whatever the message.
		const query = "?encoding=proto&base64=1&message=!!!"
		for _, tc := range []struct {
			path   string
			status int
			want   string
		}{
			{"/nope.v1.NopeService/Get", http.StatusNotFound, `"code":"unimplemented"`},
			{"/keywords.v1.KeywordsService/Nope", http.StatusNotFound, `"code":"unimplemented"`},
			{"/teams.v1.TeamsService/PutTeam", http.StatusMethodNotAllowed, ""},
			{"/teams.v1.TeamsService/ListTeams", http.StatusMethodNotAllowed, ""},
			{"/", http.StatusOK, "<!doctype html>"},
		} {
			res := testserver.Ask(srv.HTTPClient, http.MethodGet, srv.URL+tc.path+query, http.Header{"Accept": {"application/json"}}, nil)
			if res.Err != "" {
				t.Fatal(res.Err)
			}
			if res.Status != tc.status || !strings.Contains(strings.ToLower(string(res.Body)), tc.want) {
				t.Errorf("connect-only %v, GET %s: HTTP %d %.200q, want %d %q", connectOnly, tc.path, res.Status, res.Body, tc.status, tc.want)
			}
		}
	}
}

// White space around the Authorization header's value is no part of it:
// a write is authorized, or not, alike over HTTP/1.1 (whose server strips
// it) and HTTP/2 (whose servers keep it), on both HTTP/2 servers.
func TestBearerTokenSpacesAnyVersion(t *testing.T) {
	t.Parallel()
	for _, stdHTTP2 := range []bool{false, true} {
		srv := testserver.StartWith(t, server.Config{AdminToken: "tok"}, testserver.Options{HTTP: server.HTTPConfig{StdHTTP2: stdHTTP2}})
		http1 := &http.Client{Transport: &http.Transport{}}
		defer http1.CloseIdleConnections()
		for name, client := range map[string]*http.Client{"h2c": srv.HTTPClient, "http/1.1": http1} {
			for auth, want := range map[string]int{"Bearer tok ": http.StatusOK, " Bearer tok": http.StatusOK, "Bearer tok\t": http.StatusOK, "Bearer tok x": http.StatusUnauthorized} {
				res := testserver.Ask(client, http.MethodPost, srv.URL+"/teams.v1.TeamsService/PutTeam",
					http.Header{"Content-Type": {"application/json"}, "Authorization": {auth}}, []byte(`{"city":"Miami","nickname":"Sharks"}`))
				if res.Status != want {
					t.Errorf("net/http HTTP/2 %v, %s, Authorization %q: %v, want HTTP %d", stdHTTP2, name, auth, res, want)
				}
			}
		}
	}
}
