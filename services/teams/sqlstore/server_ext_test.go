package sqlstore_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/gen/teams/v1/teamsv1connect"
	"github.com/switchyard/switchyard/internal/pgtest"
	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/testserver"
	"github.com/switchyard/switchyard/services/teams"
)

const token = "test-admin-token"

// concurrentThroughServer sends many PutTeam and GetTeam calls at once, over
// every protocol, through a real HTTP/2 server backed by store. Every write
// the server acknowledged must be readable afterwards with its last value,
// and no call may fail with anything but the NOT_FOUND of reading a team
// that another goroutine has not written yet.
func concurrentThroughServer(t *testing.T, store teams.Store) {
	// The expected NOT_FOUNDs would flood the log at its default level.
	srv := testserver.Start(t, server.Config{Teams: store, AdminToken: token, Logger: quietLogger(t)})
	const workers, writes = 16, 12
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	var (
		mu    sync.Mutex
		acked = map[string]string{} // city → last acknowledged nickname
		wg    sync.WaitGroup
	)
	errs := make(chan error, workers*writes*3)
	protocols := testserver.Protocols()
	for w := range workers {
		p := protocols[w%len(protocols)]
		client := teamsv1connect.NewTeamsServiceClient(srv.HTTPClient, srv.URL, p.Opts...)
		wg.Go(func() {
			for i := range writes {
				city := fmt.Sprintf("Load %02d-%02d", w, i)
				for _, nick := range []string{"One", "Two"} {
					req := connect.NewRequest(&teamsv1.PutTeamRequest{City: city, Nickname: nick})
					req.Header().Set("Authorization", "Bearer "+token)
					if _, err := client.PutTeam(ctx, req); err != nil {
						errs <- fmt.Errorf("%s PutTeam(%s): %w", p.Name, city, err)
						continue
					}
					mu.Lock()
					acked[city] = nick
					mu.Unlock()
				}
				// Read a neighbour's city, which may not be written yet.
				other := fmt.Sprintf("Load %02d-%02d", (w+1)%workers, i)
				_, err := client.GetTeam(ctx, connect.NewRequest(&teamsv1.GetTeamRequest{City: other}))
				if err != nil && connect.CodeOf(err) != connect.CodeNotFound {
					errs <- fmt.Errorf("%s GetTeam(%s): %w", p.Name, other, err)
				}
				if _, err := client.GetTeam(ctx, connect.NewRequest(&teamsv1.GetTeamRequest{City: "chicago"})); err != nil {
					errs <- fmt.Errorf("%s GetTeam(chicago): %w", p.Name, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(acked) != workers*writes {
		t.Errorf("%d writes acknowledged, want %d", len(acked), workers*writes)
	}
	client := teamsv1connect.NewTeamsServiceClient(srv.HTTPClient, srv.URL, connect.WithGRPC())
	for city, nick := range acked {
		got, err := client.GetTeam(ctx, connect.NewRequest(&teamsv1.GetTeamRequest{City: city}))
		if err != nil || got.Msg.GetNickname() != nick {
			t.Errorf("GetTeam(%s) = %v, %v; the acknowledged write was %q", city, got, err, nick)
		}
	}
	stream, err := client.ListTeams(ctx, connect.NewRequest(&teamsv1.ListTeamsRequest{CityPrefix: "load "}))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for stream.Receive() {
		n++
	}
	if stream.Err() != nil || n != workers*writes {
		t.Errorf("ListTeams(prefix load) = %d teams, %v; want %d", n, stream.Err(), workers*writes)
	}
}

func quietLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelError}))
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func TestSQLiteConcurrentThroughServer(t *testing.T) {
	t.Parallel()
	s := openSQLite(t, t.TempDir())
	t.Cleanup(func() { _ = s.Close() })
	concurrentThroughServer(t, s)
}

func TestPostgresConcurrentThroughServer(t *testing.T) {
	t.Parallel()
	s := openPostgres(t, pgtest.Database(t))
	t.Cleanup(func() { _ = s.Close() })
	concurrentThroughServer(t, s)
}

// A call whose deadline passes while the database is locked by another
// writer ends with DEADLINE_EXCEEDED, not a hang or an internal error.
func TestSQLiteDeadlinePropagates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openSQLite(t, dir)
	t.Cleanup(func() { _ = s.Close() })
	other := openSQLite(t, dir)
	t.Cleanup(func() { _ = other.Close() })
	// Hold the write lock from "another process".
	locker, err := other.LockForTest(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer locker()

	srv := testserver.Start(t, server.Config{Teams: s, AdminToken: token})
	client := teamsv1connect.NewTeamsServiceClient(srv.HTTPClient, srv.URL, connect.WithGRPC())
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	req := connect.NewRequest(&teamsv1.PutTeamRequest{City: "Miami", Nickname: "Sharks"})
	req.Header().Set("Authorization", "Bearer "+token)
	start := time.Now()
	_, err = client.PutTeam(ctx, req)
	if connect.CodeOf(err) != connect.CodeDeadlineExceeded {
		t.Errorf("PutTeam while the database is locked = %v, want DEADLINE_EXCEEDED", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("PutTeam took %v to give up; the deadline was 300ms", d)
	}
}

// A database failure reaches the client as INTERNAL with a message that
// names neither SQL nor files; the details go to the server log.
func TestDatabaseErrorsDoNotLeak(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openSQLite(t, dir)
	if err := s.Close(); err != nil { // every query now fails in database/sql
		t.Fatal(err)
	}
	srv := testserver.Start(t, server.Config{Teams: s, AdminToken: token, Logger: quietLogger(t)})
	for _, p := range testserver.Protocols() {
		client := teamsv1connect.NewTeamsServiceClient(srv.HTTPClient, srv.URL, p.Opts...)
		_, err := client.GetTeam(t.Context(), connect.NewRequest(&teamsv1.GetTeamRequest{City: "Chicago"}))
		if connect.CodeOf(err) != connect.CodeInternal {
			t.Fatalf("%s: GetTeam on a failed database = %v, want INTERNAL", p.Name, err)
		}
		msg := strings.ToLower(err.Error())
		for _, leak := range []string{"sql", dir, "teams.db", "closed"} {
			if strings.Contains(msg, strings.ToLower(leak)) {
				t.Errorf("%s: error %q reveals %q", p.Name, err, leak)
			}
		}
	}
}
