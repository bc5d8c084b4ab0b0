//go:build scale

package scale

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	routeguidev1 "github.com/switchyard/switchyard/gen/routeguide/v1"
	"github.com/switchyard/switchyard/gen/routeguide/v1/routeguidev1connect"
	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/gen/teams/v1/teamsv1connect"
	"github.com/switchyard/switchyard/internal/nginxtest"
	"github.com/switchyard/switchyard/internal/pgtest"
	"github.com/switchyard/switchyard/services/teams/sqlstore"
)

// path is one way a client reaches the replicas through nginx.
type path struct {
	name   string
	client teamsv1connect.TeamsServiceClient
	chat   routeguidev1connect.RouteGuideServiceClient // nil: no bidi on this path
}

// clientAddr is the address the test's HTTP/1.1 clients connect from, so
// that the replicas' logs can show it came through nginx's forwarding
// (nginx itself connects to the replicas from 127.0.0.1).
const clientAddr = "127.0.0.9"

func paths(t *testing.T, px *nginxtest.Proxy) []path {
	h2c := &http.Transport{Protocols: new(http.Protocols)}
	h2c.Protocols.SetUnencryptedHTTP2(true)
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientAddr)}}
	http1 := &http.Transport{DialContext: dialer.DialContext, Protocols: new(http.Protocols)}
	http1.Protocols.SetHTTP1(true)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(px.CertPEM)
	tlsTr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}, Protocols: new(http.Protocols), ForceAttemptHTTP2: true}
	tlsTr.Protocols.SetHTTP1(true)
	tlsTr.Protocols.SetHTTP2(true)
	t.Cleanup(func() { h2c.CloseIdleConnections(); http1.CloseIdleConnections(); tlsTr.CloseIdleConnections() })
	hc := func(tr *http.Transport) *http.Client { return &http.Client{Transport: tr} }
	h2cURL, http1URL, tlsURL := "http://"+px.H2C, "http://"+px.HTTP1, "https://"+px.TLS
	teams := teamsv1connect.NewTeamsServiceClient
	chat := routeguidev1connect.NewRouteGuideServiceClient
	return []path{
		{"gRPC over h2c", teams(hc(h2c), h2cURL, connect.WithGRPC()), chat(hc(h2c), h2cURL, connect.WithGRPC())},
		{"Connect over h2c", teams(hc(h2c), h2cURL), chat(hc(h2c), h2cURL)},
		{"Connect over HTTP/1.1", teams(hc(http1), http1URL), nil},
		{"Connect JSON over HTTP/1.1", teams(hc(http1), http1URL, connect.WithProtoJSON()), nil},
		{"gRPC-Web over HTTP/1.1", teams(hc(http1), http1URL, connect.WithGRPCWeb()), nil},
		{"gRPC over TLS", teams(hc(tlsTr), tlsURL, connect.WithGRPC()), chat(hc(tlsTr), tlsURL, connect.WithGRPC())},
		{"Connect over TLS", teams(hc(tlsTr), tlsURL), chat(hc(tlsTr), tlsURL)},
		// gRPC-Web goes to the replicas over HTTP/1.1, which has no bidi
		// streams (nor do browsers, its users): no RouteChat here.
		{"gRPC-Web over TLS", teams(hc(tlsTr), tlsURL, connect.WithGRPCWeb()), nil},
	}
}

// TestScaleOutPostgres: two replicas sharing PostgreSQL behind nginx.
func TestScaleOutPostgres(t *testing.T) {
	dsn := pgtest.Database(t)
	env := []string{"SWITCHYARD_POSTGRES_DSN=" + dsn}
	args := []string{"-trusted-proxies", "127.0.0.1/32", "-shutdown-grace", "2s"}
	a := start(t, "replica-a", binary, env, args...)
	b := start(t, "replica-b", binary, env, args...)
	px := nginxtest.Start(t, []string{a.addr, b.addr})
	ps := paths(t, px)

	t.Run("every protocol through the proxy", func(t *testing.T) {
		for _, p := range ps {
			for i := range 4 { // more than one call, so both replicas serve
				ctx := ctxFor(t, 10*time.Second)
				if got, err := nickname(ctx, p.client, "Chicago"); err != nil || got != "Jackals" {
					t.Fatalf("%s: GetTeam #%d = %q, %v", p.name, i, got, err)
				}
				stream, err := p.client.ListTeams(ctx, connect.NewRequest(&teamsv1.ListTeamsRequest{CityPrefix: "new"}))
				if err != nil {
					t.Fatalf("%s: ListTeams: %v", p.name, err)
				}
				n := 0
				for stream.Receive() {
					n++
				}
				if stream.Err() != nil || n != 1 {
					t.Errorf("%s: ListTeams(new) = %d teams, %v", p.name, n, stream.Err())
				}
			}
		}
		// And a real grpc-go client.
		conn, err := grpc.NewClient(px.H2C, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = conn.Close() }()
		res := new(teamsv1.GetTeamResponse)
		if err := conn.Invoke(ctxFor(t, 10*time.Second), "/teams.v1.TeamsService/GetTeam", &teamsv1.GetTeamRequest{City: "Detroit"}, res); err != nil || res.GetNickname() != "Wheels" {
			t.Errorf("grpc-go through nginx: %v, %v", res, err)
		}
		for _, r := range []*replica{a, b} {
			if len(r.records("rpc")) == 0 {
				t.Errorf("%s served no call: nginx did not balance", r.name)
			}
		}
	})

	t.Run("client address forwarded and logged", func(t *testing.T) {
		// A client that names itself in X-Forwarded-For is not believed:
		// nginx appends the address it saw, the rightmost untrusted one.
		hc := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientAddr)}}).DialContext}}
		defer hc.CloseIdleConnections()
		for range 4 {
			req, _ := http.NewRequest(http.MethodPost, "http://"+px.HTTP1+"/teams.v1.TeamsService/GetTeam", strings.NewReader(`{"city":"Boston"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("User-Agent", "forwarding-test")
			req.Header.Set("X-Forwarded-For", "203.0.113.66")
			res, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
		}
		// Log lines are written in batches: wait for all four.
		var peers []any
		for deadline := time.Now().Add(2 * time.Second); len(peers) < 4 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			peers = loggedPeers("forwarding-test", a, b)
		}
		if len(peers) != 4 {
			t.Errorf("%d logged calls, want 4", len(peers))
		}
		for _, p := range peers {
			if p != clientAddr {
				t.Errorf("logged peer %v for a call from %s through nginx", p, clientAddr)
			}
		}
		// Directly, from an address not in -trusted-proxies... all of the
		// test's addresses are loopback; 127.0.0.9 is not trusted.
		untrusted := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientAddr)}}).DialContext}}
		defer untrusted.CloseIdleConnections()
		req, _ := http.NewRequest(http.MethodPost, a.url+"/teams.v1.TeamsService/GetTeam", strings.NewReader(`{"city":"Boston"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "direct-spoof")
		req.Header.Set("X-Forwarded-For", "203.0.113.66")
		res, err := untrusted.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		var direct []any
		for deadline := time.Now().Add(2 * time.Second); len(direct) == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			direct = loggedPeers("direct-spoof", a)
		}
		if len(direct) != 1 || !strings.HasPrefix(fmt.Sprint(direct[0]), clientAddr+":") {
			t.Errorf("a direct call from untrusted %s with X-Forwarded-For logged peers %v, want its own address", clientAddr, direct)
		}
	})

	t.Run("a write through one replica is read through the other within 1s", func(t *testing.T) {
		crossProcess(t, a, b, "Scale City")
		crossProcess(t, b, a, "Other Way")
	})

	t.Run("a RouteChat note crosses replicas", func(t *testing.T) {
		at := &routeguidev1.Point{Latitude: 424242, Longitude: -717171}
		var got []string
		for i, r := range []*replica{a, b} {
			c := routeguidev1connect.NewRouteGuideServiceClient(r.client2(), r.url, connect.WithGRPC())
			got = chat(t, c, at, fmt.Sprintf("note %d via %s", i, r.name), i+1)
		}
		if want := []string{"note 0 via replica-a", "note 1 via replica-b"}; strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("replica-b answered %v, want %v", got, want)
		}
		// And through nginx, in each protocol with bidi streaming.
		for i, p := range ps {
			if p.chat == nil {
				continue
			}
			at := &routeguidev1.Point{Latitude: int32(500 + i)}
			chat(t, p.chat, at, p.name+" first", 1)
			chat(t, p.chat, at, p.name+" second", 2)
		}
	})

	t.Run("listener terminated: subscribers told, writes during the outage seen", func(t *testing.T) {
		listenerOutage(t, dsn, a, b)
	})

	t.Run("a replica SIGKILLed mid-traffic", func(t *testing.T) {
		killMidTraffic(t, px, ps, a, b)
	})
}

// resets counts the "everything may have changed" deliveries to r's
// logging subscriber with the given Live state.
func (r *replica) resets(live bool) int {
	n := 0
	for _, rec := range r.records("team change") {
		if rec["all"] == true && rec["live"] == live {
			n++
		}
	}
	return n
}

// loggedPeers returns the peers the replicas logged for calls whose user
// agent is ua.
func loggedPeers(ua string, rs ...*replica) []any {
	var out []any
	for _, r := range rs {
		for _, rec := range r.records("rpc") {
			if rec["user_agent"] == ua {
				out = append(out, rec["peer"])
			}
		}
	}
	return out
}

func (r *replica) client2() *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: tr}
}

// chat sends one note and returns the replies it expects.
func chat(t *testing.T, c routeguidev1connect.RouteGuideServiceClient, at *routeguidev1.Point, msg string, replies int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	stream := c.RouteChat(ctx)
	stop := context.AfterFunc(ctx, func() { _ = stream.CloseResponse() })
	defer stop()
	if err := stream.Send(&routeguidev1.RouteChatRequest{Location: at, Message: msg}); err != nil {
		t.Fatalf("RouteChat send: %v", err)
	}
	var got []string
	for range replies {
		res, err := stream.Receive()
		if err != nil {
			t.Fatalf("RouteChat %q: %d replies, then %v", msg, len(got), err)
		}
		got = append(got, res.GetMessage())
	}
	if got[len(got)-1] != msg {
		t.Errorf("RouteChat %q: the last reply is %q", msg, got[len(got)-1])
	}
	_ = stream.CloseRequest()
	if _, err := stream.Receive(); !errors.Is(err, io.EOF) {
		t.Errorf("RouteChat %q: more than %d replies: %v", msg, replies, err)
	}
	return got
}

// listenerOutage terminates both replicas' listener backends while the
// database refuses new connections, writes a team from another session
// (as an operator's psql would), and checks that each replica told its
// subscribers everything may have changed (its log), that no read after
// the bound returns the old value, and that the feeds come back.
func listenerOutage(t *testing.T, dsn string, replicas ...*replica) {
	database := ""
	for _, f := range strings.Fields(dsn) {
		if v, ok := strings.CutPrefix(f, "dbname="); ok {
			database = v
		}
	}
	admin, err := sql.Open("pgx", strings.Replace(dsn, "dbname="+database, "dbname=postgres", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = admin.Close() }()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	ctx := ctxFor(t, 30*time.Second)
	writer, err := db.Conn(ctx) // opened before the outage
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = writer.Close() }()
	for _, r := range replicas {
		if got, err := nickname(ctx, r.client, "Seattle"); err != nil || got != "Orcas" {
			t.Fatalf("%s: Seattle = %q, %v", r.name, got, err)
		}
	}
	downBefore := map[*replica]int{}
	for _, r := range replicas {
		downBefore[r] = len(r.records("team feed down; subscribers told everything may have changed, reads go to the store until it is back"))
	}
	if _, err := admin.ExecContext(ctx, `ALTER DATABASE `+database+` ALLOW_CONNECTIONS false`); err != nil {
		t.Fatal(err)
	}
	reopened := false
	reopen := func() {
		if !reopened {
			reopened = true
			if _, err := admin.ExecContext(context.Background(), `ALTER DATABASE `+database+` ALLOW_CONNECTIONS true`); err != nil {
				t.Error(err)
			}
		}
	}
	defer reopen()
	var n int
	if err := admin.QueryRowContext(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND datname = $2`, sqlstore.FeedApplicationName, database).Scan(&n); err != nil || n != len(replicas) {
		t.Fatalf("terminated %d listener backends (%v), want %d", n, err, len(replicas))
	}
	for _, r := range replicas {
		r.waitLog(t, "team feed down; subscribers told everything may have changed, reads go to the store until it is back", downBefore[r]+1, time.Second)
	}
	// And a subscriber in each replica was told so: a cache there would
	// have emptied itself and read through.
	for _, r := range replicas {
		for deadline := time.Now().Add(2 * time.Second); r.resets(false) == 0; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s's feed delivered no \"everything changed, not live\" to its subscriber", r.name)
			}
		}
	}
	if _, err := writer.ExecContext(ctx, `UPDATE teams SET nickname = 'Sounders' WHERE city_key = 'seattle'`); err != nil {
		t.Fatal(err)
	}
	written := time.Now()
	time.Sleep(time.Second)
	// During the outage a replica may fail a read (a new connection is
	// refused), but must not serve the old value.
	for _, r := range replicas {
		if got, err := nickname(ctx, r.client, "Seattle"); err == nil && got != "Sounders" {
			t.Errorf("%s serves Seattle = %q %v after the write during the outage", r.name, got, time.Since(written))
		}
	}
	liveBefore := map[*replica]int{}
	for _, r := range replicas {
		liveBefore[r] = len(r.records("team feed live again; subscribers told everything may have changed"))
	}
	livesBefore := map[*replica]int{}
	for _, r := range replicas {
		livesBefore[r] = r.resets(true)
	}
	reopen()
	for _, r := range replicas {
		r.waitLog(t, "team feed live again; subscribers told everything may have changed", liveBefore[r]+1, 10*time.Second)
		for deadline := time.Now().Add(2 * time.Second); r.resets(true) == livesBefore[r]; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s's feed delivered no \"everything changed, live\" after the outage", r.name)
			}
		}
		seenWithin(t, r.client, "Seattle", "Sounders", time.Second)
	}
}

// killMidTraffic runs reads and writes through nginx, SIGKILLs replica a in
// the middle, and checks that every acknowledged write survives, that every
// read retried by the client succeeds, and that traffic settles on b.
func killMidTraffic(t *testing.T, px *nginxtest.Proxy, ps []path, a, b *replica) {
	ctx := ctxFor(t, 60*time.Second)
	var (
		mu       sync.Mutex
		acked    []string
		reads    atomic.Int64
		retried  atomic.Int64
		failures []error
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w, p := range ps[:5] { // h2c and HTTP/1.1 paths
		wg.Go(func() { // a writer: PutTeam is not retried by nginx once sent
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				city := fmt.Sprintf("Kill %d-%d", w, i)
				if err := put(ctx, p.client, city, "Acked"); err == nil {
					mu.Lock()
					acked = append(acked, city)
					mu.Unlock()
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
		wg.Go(func() { // a reader: GetTeam is idempotent; the client retries
			for {
				select {
				case <-stop:
					return
				default:
				}
				var err error
				for attempt := range 5 {
					if attempt > 0 {
						retried.Add(1)
						time.Sleep(50 * time.Millisecond)
					}
					var got string
					if got, err = nickname(ctx, p.client, "Philadelphia"); err == nil && got == "Foxes" {
						break
					} else if err == nil {
						err = fmt.Errorf("Philadelphia = %q", got)
					}
				}
				reads.Add(1)
				if err != nil {
					mu.Lock()
					failures = append(failures, fmt.Errorf("%s: a read failed after 5 attempts: %w", p.name, err))
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(time.Second)
	a.kill9(t)
	killed := time.Now()
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	for _, err := range failures {
		t.Error(err)
	}
	t.Logf("%d reads (%d retries), %d acknowledged writes, around a SIGKILL", reads.Load(), retried.Load(), len(acked))
	if reads.Load() == 0 || len(acked) == 0 {
		t.Fatal("no traffic")
	}
	for _, city := range acked {
		if got, err := nickname(ctx, b.client, city); err != nil || got != "Acked" {
			t.Errorf("acknowledged write %s lost after the SIGKILL: %q, %v", city, got, err)
		}
	}
	// Settled: every call now succeeds at once, served by b.
	before := len(b.records("rpc"))
	for _, p := range ps {
		if got, err := nickname(ctx, p.client, "Chicago"); err != nil || got != "Jackals" {
			t.Errorf("%s, %v after the SIGKILL: %q, %v", p.name, time.Since(killed).Round(time.Millisecond), got, err)
		}
	}
	// Log lines are written in batches: give them a moment.
	for deadline := time.Now().Add(2 * time.Second); len(b.records("rpc"))-before < len(ps) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if served := len(b.records("rpc")) - before; served < len(ps) {
		t.Errorf("replica-b served %d of %d calls after the SIGKILL", served, len(ps))
	}
}
