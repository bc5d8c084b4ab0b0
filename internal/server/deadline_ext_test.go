package server_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/net/http2"
	"google.golang.org/protobuf/proto"

	routeguidev1 "github.com/switchyard/switchyard/gen/routeguide/v1"
	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/testserver"
	"github.com/switchyard/switchyard/services/routeguide"
	"github.com/switchyard/switchyard/services/teams"
)

// stuckStore is a team store whose reads hang until their context ends,
// like a database under a lock; it reports the deadline each read saw.
type stuckStore struct {
	teams.Store
	deadlines chan time.Duration
}

func (s stuckStore) wait(ctx context.Context) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		s.deadlines <- -1
	} else {
		s.deadlines <- time.Until(deadline)
	}
	<-ctx.Done()
	return ctx.Err()
}

func (s stuckStore) Get(ctx context.Context, _ string) (teams.Team, error) {
	return teams.Team{}, s.wait(ctx)
}

func (s stuckStore) List(ctx context.Context, _ teams.ListOptions) ([]teams.Team, bool, error) {
	return nil, false, s.wait(ctx)
}

// The client's deadline (grpc-timeout, connect-timeout-ms) and, without
// one, the server's unary deadline reach the store's queries, and a call
// stuck in the store ends on time with DEADLINE_EXCEEDED.
func TestDeadlinesReachTheStore(t *testing.T) {
	t.Parallel()
	store := stuckStore{Store: teams.NewMemStore(teams.TutorialTeams), deadlines: make(chan time.Duration, 64)}
	srv := testserver.Start(t, server.Config{Teams: store, UnaryTimeout: 700 * time.Millisecond})
	seen := func(t *testing.T, limit time.Duration) {
		t.Helper()
		select {
		case d := <-store.deadlines:
			if d < 0 || d > limit {
				t.Errorf("the store saw a deadline %v away, want at most %v", d, limit)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the call never reached the store")
		}
	}
	for _, p := range testserver.Protocols() {
		t.Run(p.Name, func(t *testing.T) {
			c := newClients(srv, p)
			for _, tc := range []struct {
				name    string
				timeout time.Duration // client deadline; 0 = none
				limit   time.Duration
			}{{"client deadline", 200 * time.Millisecond, 200 * time.Millisecond}, {"server deadline", 0, 700 * time.Millisecond}} {
				callCtx, cancel := t.Context(), context.CancelFunc(func() {})
				if tc.timeout > 0 {
					callCtx, cancel = context.WithTimeout(t.Context(), tc.timeout)
				}
				start := time.Now()
				_, err := c.teams.GetTeam(callCtx, connect.NewRequest(&teamsv1.GetTeamRequest{City: "Chicago"}))
				cancel()
				wantCode(t, err, connect.CodeDeadlineExceeded)
				seen(t, tc.limit)
				if d := time.Since(start); d > tc.limit+3*time.Second {
					t.Errorf("%s: GetTeam took %v", tc.name, d)
				}
			}
			// A stream has no server deadline, but the client's reaches the store.
			callCtx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()
			stream, err := c.teams.ListTeams(callCtx, connect.NewRequest(&teamsv1.ListTeamsRequest{}))
			if err == nil {
				for stream.Receive() {
				}
				err = stream.Err()
			}
			wantCode(t, err, connect.CodeDeadlineExceeded)
			seen(t, 200*time.Millisecond)
		})
	}
}

// A client stream whose client keeps sending past the deadline it gave
// (grpc-timeout) ends with DEADLINE_EXCEEDED, as grpc-go's server ends it,
// not with an answer computed after the deadline: RecordRoute at its end,
// RouteChat at its next note, under both names. (Clients that enforce
// their deadline reset the stream themselves.)
func TestStreamsKeepTheClientsDeadline(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	point := func(lat int32) []byte {
		b, _ := proto.Marshal(&routeguidev1.RecordRouteRequest{Latitude: lat, Longitude: 1})
		return envelope(0, b)
	}
	note := func() []byte {
		b, _ := proto.Marshal(&routeguidev1.RouteChatRequest{Location: &routeguidev1.Point{Latitude: 7}, Message: "late"})
		return envelope(0, b)
	}
	for _, tc := range []struct {
		procedure string
		message   func() []byte
	}{
		{"/routeguide.v1.RouteGuideService/RecordRoute", func() []byte { return point(1) }},
		{"/routeguide.RouteGuide/RecordRoute", func() []byte { return point(1) }},
		{"/routeguide.v1.RouteGuideService/RouteChat", note},
		{"/routeguide.RouteGuide/RouteChat", note},
	} {
		body, send := io.Pipe()
		req, err := http.NewRequest(http.MethodPost, srv.URL+tc.procedure, body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/grpc")
		req.Header.Set("Grpc-Timeout", "200m")
		go func() {
			_, _ = send.Write(tc.message())
			time.Sleep(400 * time.Millisecond) // past the deadline
			_, _ = send.Write(tc.message())
			_ = send.Close()
		}()
		res, err := srv.HTTPClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		status := res.Trailer.Get("Grpc-Status")
		if status == "" {
			status = res.Header.Get("Grpc-Status")
		}
		if status != "4" {
			t.Errorf("%s past its 200 ms deadline: grpc-status %q (%q), want 4 (DEADLINE_EXCEEDED)", tc.procedure, status, res.Trailer.Get("Grpc-Message"))
		}
	}
}

// A stream whose client stops taking part is let go at the client's
// deadline, rather than held until the client goes: a client stream whose
// client sends nothing more is answered DEADLINE_EXCEEDED, and a server
// stream whose client opens no flow-control window is reset (not held
// until -http2-send-window-timeout). Under both names.
func TestStreamsEndAtTheDeadlineWhileTheClientWaits(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	const timeout = 300 * time.Millisecond
	open := func(c *testserver.H2Conn, procedure string, msg proto.Message, endStream bool) time.Time {
		c.WriteHeaders(1, false, ":method", "POST", ":scheme", "http", ":authority", "deadline.test", ":path", procedure,
			"content-type", "application/grpc", "te", "trailers", "grpc-timeout", "300m")
		b, err := proto.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Fr.WriteData(1, endStream, envelope(0, b)); err != nil {
			t.Fatal(err)
		}
		return time.Now()
	}
	// end reads stream 1 until it ends: its grpc-status, or the code of its reset.
	end := func(c *testserver.H2Conn) (status string, reset http2.ErrCode) {
		for {
			f, err := c.ReadFrame(5 * time.Second)
			if err != nil {
				t.Fatalf("waiting for stream 1 to end: %v", err)
			}
			switch f := f.(type) {
			case *http2.MetaHeadersFrame:
				if f.StreamEnded() {
					for _, hf := range f.RegularFields() {
						if hf.Name == "grpc-status" {
							status = hf.Value
						}
					}
					return status, 0
				}
			case *http2.RSTStreamFrame:
				return "", f.ErrCode
			}
		}
	}
	note := &routeguidev1.RouteChatRequest{Location: &routeguidev1.Point{Latitude: 7}, Message: "then silence"}
	for _, tc := range []struct {
		procedure string
		msg       proto.Message
	}{
		{"/routeguide.v1.RouteGuideService/RecordRoute", &routeguidev1.RecordRouteRequest{Latitude: 1, Longitude: 1}},
		{"/routeguide.RouteGuide/RecordRoute", &routeguidev1.RecordRouteRequest{Latitude: 1, Longitude: 1}},
		{"/routeguide.v1.RouteGuideService/RouteChat", note},
		{"/routeguide.RouteGuide/RouteChat", note},
	} {
		c := testserver.DialH2(t, srv.Addr)
		start := open(c, tc.procedure, tc.msg, false)
		status, reset := end(c)
		if took := time.Since(start); status != "4" || took > timeout+2*time.Second {
			t.Errorf("%s, the client silent after one message: grpc-status %q (reset %v) after %v, want 4 (DEADLINE_EXCEEDED) at about %v", tc.procedure, status, reset, took, timeout)
		}
	}
	all := &routeguidev1.ListFeaturesRequest{Lo: &routeguidev1.Point{Latitude: -900000000, Longitude: -1800000000}, Hi: &routeguidev1.Point{Latitude: 900000000, Longitude: 1800000000}}
	for _, procedure := range []string{"/routeguide.v1.RouteGuideService/ListFeatures", "/routeguide.RouteGuide/ListFeatures"} {
		c := testserver.DialH2(t, srv.Addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
		start := open(c, procedure, all, true)
		status, reset := end(c)
		if took := time.Since(start); reset != http2.ErrCodeCancel || took > timeout+2*time.Second {
			t.Errorf("%s, the client reading nothing: grpc-status %q, reset %v after %v, want RST_STREAM CANCEL at about %v", procedure, status, reset, took, timeout)
		}
	}
}

// The same over HTTP/1.1, and over net/http's HTTP/2 server: a client
// stream (or a bidi one) whose client sends part of its stream and then
// goes quiet ends at the client's deadline, as internal/h2's does, rather
// than holding its handler and its connection (one of -max-connections)
// for as long as the client keeps it. Over HTTP/1.1, where connect-go
// answers a bidi call 505 at once, the connection is not held either,
// while net/http waits for the rest of the body to discard it.
func TestClientStreamsEndAtTheDeadlineOverEveryTransport(t *testing.T) {
	t.Parallel()
	point, err := proto.Marshal(&routeguidev1.RecordRouteRequest{Latitude: 1, Longitude: 1})
	if err != nil {
		t.Fatal(err)
	}
	note, err := proto.Marshal(&routeguidev1.RouteChatRequest{Location: &routeguidev1.Point{Latitude: 7}, Message: "then silence"})
	if err != nil {
		t.Fatal(err)
	}
	const timeout = 300 * time.Millisecond
	for _, std := range []bool{false, true} {
		srv := testserver.StartWith(t, server.Config{}, testserver.Options{HTTP: server.HTTPConfig{StdHTTP2: std}})
		for _, tc := range []struct {
			procedure, contentType, timeout, want string
			msg                                   []byte
		}{
			{"/routeguide.v1.RouteGuideService/RecordRoute", "application/connect+proto", "Connect-Timeout-Ms: 300", `"code":"deadline_exceeded"`, point},
			{"/routeguide.RouteGuide/RecordRoute", "application/grpc-web+proto", "Grpc-Timeout: 300m", "Grpc-Status: 4", point},
			{"/routeguide.v1.RouteGuideService/RouteChat", "application/connect+proto", "Connect-Timeout-Ms: 300", "505 HTTP Version Not Supported", note},
			{"/routeguide.RouteGuide/RouteChat", "application/grpc-web+proto", "Grpc-Timeout: 300m", "505 HTTP Version Not Supported", note},
		} {
			name := fmt.Sprintf("net/http %v, HTTP/1.1, %s as %s", std, tc.procedure, tc.contentType)
			conn, err := net.Dial("tcp", srv.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			start := time.Now()
			m := envelope(0, tc.msg)
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n%s\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n",
				tc.procedure, tc.contentType, tc.timeout, len(m), m)
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			answer, err := io.ReadAll(conn) // until the server closes the connection
			took := time.Since(start)
			if err != nil || !strings.Contains(string(answer), tc.want) || took > timeout+2*time.Second {
				t.Errorf("%s, the client silent after one message: got %q (%v) after %v, want %s and the connection closed at about %v", name, answer, err, took, tc.want, timeout)
			}
		}
		for _, procedure := range []string{"/routeguide.v1.RouteGuideService/RecordRoute", "/routeguide.RouteGuide/RouteChat"} {
			c := testserver.DialH2(t, srv.Addr)
			c.WriteHeaders(1, false, ":method", "POST", ":scheme", "http", ":authority", "deadline.test", ":path", procedure,
				"content-type", "application/grpc", "te", "trailers", "grpc-timeout", "300m")
			msg := point
			if strings.HasSuffix(procedure, "RouteChat") {
				msg = note
			}
			if err := c.Fr.WriteData(1, false, envelope(0, msg)); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			status := ""
		read:
			for {
				f, err := c.ReadFrame(5 * time.Second)
				if err != nil {
					t.Errorf("net/http %v, HTTP/2, %s: waiting for the answer after %v: %v", std, procedure, time.Since(start), err)
					break
				}
				switch f := f.(type) {
				case *http2.MetaHeadersFrame:
					for _, hf := range f.RegularFields() {
						if hf.Name == "grpc-status" {
							status = hf.Value
						}
					}
					if f.StreamEnded() {
						break read
					}
				case *http2.RSTStreamFrame:
					break read
				}
			}
			if took := time.Since(start); status != "4" || took > timeout+2*time.Second {
				t.Errorf("net/http %v, HTTP/2, %s, the client silent after one message: grpc-status %q after %v, want 4 (DEADLINE_EXCEEDED) at about %v", std, procedure, status, took, timeout)
			}
		}
	}
}

// A unary call's request body must arrive over HTTP/1.1 within the call's
// deadline: the server's (-unary-timeout) or the client's if shorter. net/http
// bounds only the headers' read, and the deadline otherwise starts once the
// message is in, so a client that sends its body slowly, or never, would
// hold its connection (one of -max-connections) and a handler for ever. It
// gets DEADLINE_EXCEEDED, and its connection is closed; the call's log line
// says so too (not that its client closed the connection, which net/http's
// failed read makes it look like). Connect (JSON and proto) and gRPC-Web,
// both through internal/grpcunary and connect-go.
func TestUnaryBodyOverHTTP1ArrivesWithinTheDeadline(t *testing.T) {
	t.Parallel()
	for _, connectOnly := range []bool{false, true} {
		logs := &lockedBuffer{}
		srv := testserver.Start(t, server.Config{UnaryTimeout: 400 * time.Millisecond, ConnectOnly: connectOnly,
			Logger: slog.New(slog.NewJSONHandler(logs, nil))})
		for _, tc := range []struct {
			name, contentType, timeout, want string
		}{
			{"connect json", "application/json", "", `"code":"deadline_exceeded"`},
			{"connect proto", "application/proto", "", `"code":"deadline_exceeded"`},
			{"connect, client deadline", "application/json", "Connect-Timeout-Ms: 100\r\n", `"code":"deadline_exceeded"`},
			{"grpc-web", "application/grpc-web+proto", "", "Grpc-Status: 4"},
			{"grpc-web, client deadline", "application/grpc-web+proto", "Grpc-Timeout: 100m\r\n", "Grpc-Status: 4"},
		} {
			conn, err := net.Dial("tcp", srv.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// Headers, a body of 100 bytes promised, one sent.
			start := time.Now()
			fmt.Fprintf(conn, "POST /greeter.v1.GreeterService/SayHello HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n%sContent-Length: 100\r\n\r\n{", tc.contentType, tc.timeout)
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			answer, err := io.ReadAll(conn) // until the server closes the connection
			took := time.Since(start)
			if err != nil || !strings.Contains(string(answer), tc.want) {
				t.Errorf("connect-go only %v, %s: got %q (%v) after %v, want %s and the connection closed", connectOnly, tc.name, answer, err, took, tc.want)
			}
			if took > 2*time.Second {
				t.Errorf("connect-go only %v, %s: answered after %v, want within the deadline of 400 ms (and a margin)", connectOnly, tc.name, took)
			}
		}
		for deadline := time.Now().Add(5 * time.Second); strings.Count(logs.String(), `"msg":"rpc"`) < 5; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("connect-go only %v: fewer than 5 call lines:\n%s", connectOnly, logs.String())
			}
		}
		// A line says how a call ended only when its answer was not sent.
		if n, ended := strings.Count(logs.String(), `"code":"deadline_exceeded"`), strings.Count(logs.String(), `"end":`); n != 5 || ended != 0 {
			t.Errorf("connect-go only %v: %d call lines say deadline_exceeded, %d an end other than sent; want 5 and 0:\n%s", connectOnly, n, ended, logs.String())
		}
	}
}

// The deadline on the read of a unary call's body over HTTP/1.1 ends with
// the body (net/http clears it as it starts watching for the client going
// away): a call that takes longer than it once its request is in, and a
// keep-alive connection's next request, are served as before.
func TestUnaryBodyDeadlineOverHTTP1EndsWithTheBody(t *testing.T) {
	t.Parallel()
	store := stuckStore{Store: teams.NewMemStore(teams.TutorialTeams), deadlines: make(chan time.Duration, 64)}
	srv := testserver.Start(t, server.Config{Teams: store, UnaryTimeout: 600 * time.Millisecond})
	conn, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	call := func(path, body string, wait time.Duration) *http.Response {
		t.Helper()
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, len(body))
		time.Sleep(wait) // the body comes late, but within the deadline
		fmt.Fprint(conn, body)
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		res.Body = io.NopCloser(bytes.NewReader(b))
		return res
	}
	// GetTeam's store waits for the unary deadline, 600 ms after the
	// request's headers, as the body's read deadline is; the read is over
	// by then. The call ends DEADLINE_EXCEEDED, not cancelled.
	res := call("/teams.v1.TeamsService/GetTeam", `{"city":"Chicago"}`, 300*time.Millisecond)
	if b, _ := io.ReadAll(res.Body); res.StatusCode != http.StatusGatewayTimeout || !strings.Contains(string(b), `"code":"deadline_exceeded"`) {
		t.Fatalf("GetTeam: HTTP %d %s, want 504 deadline_exceeded", res.StatusCode, b)
	}
	if left := <-store.deadlines; left > 450*time.Millisecond {
		t.Errorf("GetTeam's store saw %v left of its deadline, its body sent 300 ms after the headers; want at most 300 ms (and a margin): the deadline counts from the headers", left)
	}
	time.Sleep(700 * time.Millisecond)
	res = call("/greeter.v1.GreeterService/SayHello", `{"name":"x"}`, 0)
	if b, _ := io.ReadAll(res.Body); res.StatusCode != http.StatusOK || string(b) != `{"message":"Hello, x!"}` {
		t.Fatalf("SayHello on the same connection: HTTP %d %s, want 200", res.StatusCode, b)
	}
}

// The same over HTTP/2, from internal/h2 and from net/http's server: a
// unary call whose client sends its headers and then no message, or only
// part of one, is answered DEADLINE_EXCEEDED at the call's deadline (the
// server's, or the client's if shorter), rather than holding its stream
// and handler for as long as the client keeps the connection. gRPC and
// Connect, through internal/grpcunary and through connect-go alone.
func TestUnaryBodyOverHTTP2ArrivesWithinTheDeadline(t *testing.T) {
	t.Parallel()
	for _, std := range []bool{false, true} {
		for _, connectOnly := range []bool{false, true} {
			srv := testserver.StartWith(t, server.Config{UnaryTimeout: 400 * time.Millisecond, ConnectOnly: connectOnly},
				testserver.Options{HTTP: server.HTTPConfig{StdHTTP2: std}})
			for _, tc := range []struct {
				name        string
				headers     []string
				part, grpc  bool
				wantTimeout time.Duration
			}{
				{"grpc, nothing sent", []string{"content-type", "application/grpc", "te", "trailers"}, false, true, 400 * time.Millisecond},
				{"grpc, part of a message", []string{"content-type", "application/grpc", "te", "trailers"}, true, true, 400 * time.Millisecond},
				{"grpc, client deadline", []string{"content-type", "application/grpc", "te", "trailers", "grpc-timeout", "100m"}, false, true, 100 * time.Millisecond},
				{"connect, nothing sent", []string{"content-type", "application/json"}, false, false, 400 * time.Millisecond},
				{"connect, client deadline", []string{"content-type", "application/proto", "connect-timeout-ms", "100"}, true, false, 100 * time.Millisecond},
			} {
				name := fmt.Sprintf("net/http %v, connect-go only %v, %s", std, connectOnly, tc.name)
				c := testserver.DialH2(t, srv.Addr)
				c.WriteHeaders(1, false, append([]string{":method", "POST", ":scheme", "http", ":authority", "deadline.test",
					":path", "/greeter.v1.GreeterService/SayHello"}, tc.headers...)...)
				if tc.part {
					if err := c.Fr.WriteData(1, false, []byte{0, 0, 0, 0, 9, 10}); err != nil {
						t.Fatal(err)
					}
				}
				start := time.Now()
				status, httpStatus := "", ""
			read:
				for {
					f, err := c.ReadFrame(5 * time.Second)
					if err != nil {
						t.Errorf("%s: waiting for the answer after %v: %v", name, time.Since(start), err)
						break
					}
					switch f := f.(type) {
					case *http2.MetaHeadersFrame:
						if v := f.PseudoValue("status"); v != "" {
							httpStatus = v
						}
						for _, hf := range f.RegularFields() {
							if hf.Name == "grpc-status" {
								status = hf.Value
							}
						}
						if f.StreamEnded() {
							break read
						}
					case *http2.DataFrame:
						if f.StreamEnded() {
							break read
						}
					case *http2.RSTStreamFrame:
						t.Errorf("%s: stream reset (%v), want an answer", name, f.ErrCode)
						break read
					}
				}
				took := time.Since(start)
				if tc.grpc && status != "4" || !tc.grpc && httpStatus != "504" {
					t.Errorf("%s: grpc-status %q, HTTP %s after %v; want DEADLINE_EXCEEDED", name, status, httpStatus, took)
				}
				if took > tc.wantTimeout+time.Second {
					t.Errorf("%s: answered after %v, want at the deadline of %v (and a margin)", name, took, tc.wantTimeout)
				}
			}
		}
	}
}

// A client's Grpc-Timeout of more hours than a time.Duration holds is no
// deadline (connect-go's and grpc-go's reading, outcome.ParseGRPCTimeout's
// 0): the call keeps the server's, and its body, which comes a moment
// after the headers, is read, not cut off at once. Over HTTP/2 from both
// servers, and over HTTP/1.1 as gRPC-Web.
func TestUnaryBodyDeadlineIgnoresAnUnboundedGRPCTimeout(t *testing.T) {
	t.Parallel()
	msg := []byte{0, 0, 0, 0, 3, 0x0a, 1, 'x'} // SayHello{name: "x"}
	for _, std := range []bool{false, true} {
		srv := testserver.StartWith(t, server.Config{}, testserver.Options{HTTP: server.HTTPConfig{StdHTTP2: std}})
		for _, timeout := range []string{"99999999H", "2562048H"} {
			name := fmt.Sprintf("net/http %v, Grpc-Timeout %s", std, timeout)
			body, send := io.Pipe()
			go func() {
				time.Sleep(50 * time.Millisecond) // the message comes after the headers
				_, _ = send.Write(msg)
				_ = send.Close()
			}()
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/greeter.v1.GreeterService/SayHello", body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header = http.Header{"Content-Type": {"application/grpc"}, "Te": {"trailers"}, "Grpc-Timeout": {timeout}}
			res, err := srv.HTTPClient.Do(req)
			if err != nil {
				t.Fatalf("%s, HTTP/2: %v", name, err)
			}
			if b, err := io.ReadAll(res.Body); err != nil || res.Trailer.Get("Grpc-Status") != "0" {
				t.Errorf("%s, HTTP/2: HTTP %d, body %q (%v), grpc-status %q %q; want grpc-status 0", name, res.StatusCode, b, err,
					res.Header.Get("Grpc-Status")+res.Trailer.Get("Grpc-Status"), res.Header.Get("Grpc-Message")+res.Trailer.Get("Grpc-Message"))
			}
			res.Body.Close()

			conn, err := net.Dial("tcp", srv.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "POST /greeter.v1.GreeterService/SayHello HTTP/1.1\r\nHost: x\r\nContent-Type: application/grpc-web+proto\r\n"+
				"Grpc-Timeout: %s\r\nContent-Length: %d\r\n\r\n", timeout, len(msg))
			time.Sleep(50 * time.Millisecond)
			_, _ = conn.Write(msg)
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			res, err = http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("%s, HTTP/1.1: %v", name, err)
			}
			b, err := io.ReadAll(res.Body)
			if err != nil || res.Header.Get("Grpc-Status") != "" || !bytes.Contains(b, []byte("grpc-status: 0\r\n")) {
				t.Errorf("%s, HTTP/1.1: HTTP %d, grpc-status %q, body %q (%v); want grpc-status 0 in the body's trailer", name, res.StatusCode, res.Header.Get("Grpc-Status"), b, err)
			}
		}
	}
}

// The unary deadline counts from the request's headers over HTTP/2 too,
// with either server, as the body's must arrive by it: a call whose
// message came late has that much less for its handler, rather than
// another -unary-timeout in all.
func TestUnaryDeadlineOverHTTP2CountsFromTheHeaders(t *testing.T) {
	t.Parallel()
	for _, std := range []bool{false, true} {
		store := stuckStore{Store: teams.NewMemStore(teams.TutorialTeams), deadlines: make(chan time.Duration, 64)}
		srv := testserver.StartWith(t, server.Config{Teams: store, UnaryTimeout: 600 * time.Millisecond},
			testserver.Options{HTTP: server.HTTPConfig{StdHTTP2: std}})
		for _, contentType := range []string{"application/grpc", "application/json"} {
			c := testserver.DialH2(t, srv.Addr)
			c.WriteHeaders(1, false, ":method", "POST", ":scheme", "http", ":authority", "deadline.test",
				":path", "/teams.v1.TeamsService/GetTeam", "content-type", contentType, "te", "trailers")
			time.Sleep(300 * time.Millisecond)
			body := []byte(`{"city":"Chicago"}`)
			if contentType == "application/grpc" {
				b, err := proto.Marshal(&teamsv1.GetTeamRequest{City: "Chicago"})
				if err != nil {
					t.Fatal(err)
				}
				body = envelope(0, b)
			}
			if err := c.Fr.WriteData(1, true, body); err != nil {
				t.Fatal(err)
			}
			select {
			case left := <-store.deadlines:
				if left > 450*time.Millisecond {
					t.Errorf("net/http %v, %s: the store saw %v left of its deadline, the body sent 300 ms after the headers; want at most 300 ms (and a margin)", std, contentType, left)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("net/http %v, %s: the call never reached the store", std, contentType)
			}
		}
	}
}

// A server stream over HTTP/1.1 whose client stops reading is let go
// once its client's deadline has passed (and a second for the handler to
// answer it), as internal/h2 resets its stream at the deadline: its
// handler, blocked writing, and its connection (one of -max-connections)
// are no longer held for as long as the client keeps the connection. Its
// line says deadline_exceeded. Connect and gRPC-Web, under both names.
func TestServerStreamOverHTTP1EndsPastTheDeadlineWhileTheClientReadsNothing(t *testing.T) {
	t.Parallel()
	const features = 4000
	var b strings.Builder
	b.WriteString("[")
	for i := range features {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"location":{"latitude":%d,"longitude":1},"name":%q}`, i, strings.Repeat("n", 1024))
	}
	b.WriteString("]")
	db, err := routeguide.ParseDB([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := proto.Marshal(&routeguidev1.ListFeaturesRequest{Lo: &routeguidev1.Point{}, Hi: &routeguidev1.Point{Latitude: features, Longitude: 1}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		procedure, contentType, timeout string
	}{
		{"/routeguide.v1.RouteGuideService/ListFeatures", "application/connect+proto", "Connect-Timeout-Ms: 300"},
		{"/routeguide.RouteGuide/ListFeatures", "application/grpc-web+proto", "Grpc-Timeout: 300m"},
	} {
		logs := &lockedBuffer{}
		srv := testserver.Start(t, server.Config{RouteDB: db, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
		// A small receive buffer, fixed: the kernel's autotuning could
		// otherwise take in the whole stream.
		dialer := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
			var err error
			if cerr := c.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10) }); cerr != nil {
				return cerr
			}
			return err
		}}
		conn, err := dialer.Dial("tcp", srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		m := envelope(0, msg)
		start := time.Now()
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n%s\r\nContent-Length: %d\r\n\r\n%s", tc.procedure, tc.contentType, tc.timeout, len(m), m)
		// The client reads nothing; the call's line comes when it ends.
		for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), `"msg":"rpc"`); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s as %s, its client reading nothing: the call still runs %v after its deadline of 300 ms", tc.procedure, tc.contentType, time.Since(start))
			}
		}
		if took := time.Since(start); !strings.Contains(logs.String(), `"code":"deadline_exceeded"`) || took > 3*time.Second {
			t.Errorf("%s as %s, its client reading nothing: ended after %v:\n%s\nwant deadline_exceeded a second after its deadline of 300 ms", tc.procedure, tc.contentType, took, logs.String())
		}
		// A stream read in time leaves no write deadline behind it: the
		// connection's next call, past the first's deadline, is answered.
		few, err := proto.Marshal(&routeguidev1.ListFeaturesRequest{Lo: &routeguidev1.Point{}, Hi: &routeguidev1.Point{Latitude: 2, Longitude: 1}})
		if err != nil {
			t.Fatal(err)
		}
		m = envelope(0, few)
		conn, err = net.Dial("tcp", srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		br := bufio.NewReader(conn)
		for i := range 2 {
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n%s\r\nContent-Length: %d\r\n\r\n%s", tc.procedure, tc.contentType, tc.timeout, len(m), m)
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%s as %s, call %d on one connection: %v", tc.procedure, tc.contentType, i+1, err)
			}
			body, err := io.ReadAll(res.Body)
			if err != nil || res.StatusCode != http.StatusOK || bytes.Count(body, []byte(strings.Repeat("n", 1024))) != 3 {
				t.Fatalf("%s as %s, call %d on one connection: HTTP %d, %d bytes (%v), want 200 and 3 features", tc.procedure, tc.contentType, i+1, res.StatusCode, len(body), err)
			}
			time.Sleep(1500 * time.Millisecond) // past the deadline and its second
		}
	}
}

// The same over net/http's HTTP/2 server (-http2-server net/http): a
// server stream whose client gives it no window is reset a second past
// its client's deadline, as internal/h2 resets it at the deadline
// (TestStreamsEndAtTheDeadlineWhileTheClientWaits), rather than holding
// its handler, blocked writing, for as long as the client keeps the
// connection. Its line says deadline_exceeded.
func TestServerStreamOverNetHTTP2EndsPastTheDeadlineWhileTheClientReadsNothing(t *testing.T) {
	t.Parallel()
	all, err := proto.Marshal(&routeguidev1.ListFeaturesRequest{Lo: &routeguidev1.Point{Latitude: -900000000, Longitude: -1800000000}, Hi: &routeguidev1.Point{Latitude: 900000000, Longitude: 1800000000}})
	if err != nil {
		t.Fatal(err)
	}
	for _, procedure := range []string{"/routeguide.v1.RouteGuideService/ListFeatures", "/routeguide.RouteGuide/ListFeatures"} {
		logs := &lockedBuffer{}
		srv := testserver.StartWith(t, server.Config{Logger: slog.New(slog.NewJSONHandler(logs, nil))}, testserver.Options{HTTP: server.HTTPConfig{StdHTTP2: true}})
		c := testserver.DialH2(t, srv.Addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
		c.WriteHeaders(1, false, ":method", "POST", ":scheme", "http", ":authority", "deadline.test", ":path", procedure,
			"content-type", "application/grpc", "te", "trailers", "grpc-timeout", "300m")
		if err := c.Fr.WriteData(1, true, envelope(0, all)); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		var reset *http2.RSTStreamFrame
		for reset == nil {
			f, err := c.ReadFrame(5 * time.Second)
			if err != nil {
				t.Fatalf("%s, the client giving no window: still open after %v (%v), want a reset a second past its deadline of 300 ms", procedure, time.Since(start), err)
			}
			if h, ok := f.(*http2.MetaHeadersFrame); ok && h.StreamEnded() {
				t.Fatalf("%s, the client giving no window: trailers %v, want a reset", procedure, h.Fields)
			}
			reset, _ = f.(*http2.RSTStreamFrame)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("%s, the client giving no window: reset after %v, want a second past its deadline of 300 ms", procedure, took)
		}
		for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), `"msg":"rpc"`); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no call line after the reset", procedure)
			}
		}
		if !strings.Contains(logs.String(), `"code":"deadline_exceeded"`) {
			t.Errorf("%s, the client giving no window:\n%s\nwant deadline_exceeded", procedure, logs.String())
		}
	}
}

// A client stream over HTTP/1.1 whose handler ends before the client's
// stream does (here at its third point, over -route-max-points) is
// answered at once, its answer complete: net/http discarded what was
// left of the request first (connect-go closes the body before it
// flushes its last bytes), which held the answer (the Connect end-stream
// message, gRPC-Web's last chunk) for as long as the client sent nothing
// more. The call's line says what the client got.
func TestClientStreamOverHTTP1AnswersAnEarlyEndAtOnce(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	srv := testserver.Start(t, server.Config{RouteGuide: routeguide.Options{MaxRoutePoints: 2}, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	point, err := proto.Marshal(&routeguidev1.RecordRouteRequest{Latitude: 1, Longitude: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		procedure, contentType, want string
	}{
		{"/routeguide.v1.RouteGuideService/RecordRoute", "application/connect+proto", `"code":"resource_exhausted"`},
		{"/routeguide.RouteGuide/RecordRoute", "application/grpc-web+proto", "Grpc-Status: 8"},
	} {
		conn, err := net.Dial("tcp", srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// Three points, and silence.
		body := bytes.Repeat(envelope(0, point), 3)
		start := time.Now()
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", tc.procedure, tc.contentType, len(body), body)
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s as %s, a point over the limit and then silence: %v after %v", tc.procedure, tc.contentType, err, time.Since(start))
		}
		var answer bytes.Buffer
		_ = res.Header.Write(&answer)
		_, err = io.Copy(&answer, res.Body) // to the last chunk
		if took := time.Since(start); err != nil || !strings.Contains(answer.String(), tc.want) || took > 2*time.Second {
			t.Errorf("%s as %s, a point over the limit and then silence: got %q (%v) after %v, want %s and the answer's end at once", tc.procedure, tc.contentType, answer.String(), err, took, tc.want)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); strings.Count(logs.String(), `"msg":"rpc"`) < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than 2 call lines:\n%s", logs.String())
		}
	}
	if n, ended := strings.Count(logs.String(), `"code":"resource_exhausted"`), strings.Count(logs.String(), `"end":`); n != 2 || ended != 0 {
		t.Errorf("%d call lines say resource_exhausted, %d an end other than sent; want 2 and 0:\n%s", n, ended, logs.String())
	}
}
