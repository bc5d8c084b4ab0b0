package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	routeguidev1 "github.com/switchyard/switchyard/gen/routeguide/v1"
	"github.com/switchyard/switchyard/gen/routeguide/v1/routeguidev1connect"
	"github.com/switchyard/switchyard/internal/pgtest"
	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/testserver"
	"github.com/switchyard/switchyard/services/routeguide"
	"github.com/switchyard/switchyard/services/teams"
	"github.com/switchyard/switchyard/services/teams/sqlstore"
)

func messages(notes []routeguide.Note) []string {
	var out []string
	for _, n := range notes {
		out = append(out, n.Message)
	}
	return out
}

// Notes added through one replica's store are returned through another's,
// oldest first, the new one last; both bounds evict the oldest.
func TestPostgresRouteNotesShared(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	a, b := openPostgres(t, dsn), openPostgres(t, dsn)
	defer func() { _ = a.Close(); _ = b.Close() }()
	na, err := a.RouteNotes(3, 2)
	if err != nil {
		t.Fatal(err)
	}
	nb, err := b.RouteNotes(3, 2)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	here := routeguide.Point{Latitude: 1, Longitude: 2}
	add := func(s routeguide.NoteStore, at routeguide.Point, msg string) []string {
		t.Helper()
		kept, err := s.Add(ctx, routeguide.Note{Location: at, Message: msg})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range kept {
			if n.Location != at {
				t.Fatalf("note %q at %v returned for %v", n.Message, n.Location, at)
			}
		}
		return messages(kept)
	}
	add(na, here, "one")
	if got := add(nb, here, "two"); !slices.Equal(got, []string{"one", "two"}) {
		t.Errorf("replica b got %v, want [one two]", got)
	}
	add(na, here, "three")
	if got := add(nb, here, "four"); !slices.Equal(got, []string{"two", "three", "four"}) {
		t.Errorf("after 4 notes with 3 per location: %v", got)
	}
	// A third location evicts the least recently written one (here is
	// newer than there).
	there := routeguide.Point{Latitude: 5, Longitude: 6}
	add(na, there, "t1")
	add(na, here, "five")
	add(nb, routeguide.Point{Latitude: 7}, "x")
	if got := add(na, there, "t2"); !slices.Equal(got, []string{"t2"}) {
		t.Errorf("an evicted location still holds %v", got)
	}
	if locs, notes, err := na.Len(ctx); err != nil || locs != 2 || notes > 6 {
		t.Errorf("Len = %d locations, %d notes, %v; want 2 locations (bound)", locs, notes, err)
	}
}

// Replicas adding at one location at once never keep more than the bound,
// and each sees its own note last.
func TestPostgresRouteNotesConcurrent(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	const per, locations = 5, 3
	var stores []routeguide.NoteStore
	for range 4 {
		s := openPostgres(t, dsn)
		defer func() { _ = s.Close() }()
		n, err := s.RouteNotes(per, locations)
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, n)
	}
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() {
			for j := range 25 {
				msg := fmt.Sprintf("%d-%d", i, j)
				at := routeguide.Point{Latitude: int32(j % 5)}
				kept, err := s.Add(t.Context(), routeguide.Note{Location: at, Message: msg})
				if err != nil {
					t.Error(err)
					return
				}
				if len(kept) > per || kept[len(kept)-1].Message != msg {
					t.Errorf("Add(%s) returned %v: over the bound, or not last", msg, messages(kept))
				}
			}
		})
	}
	wg.Wait()
	locs, notes, err := stores[0].(*sqlstore.RouteNotes).Len(t.Context())
	if err != nil || locs > locations || notes > per*locations {
		t.Errorf("Len = %d locations, %d notes, %v; bounds %d, %d", locs, notes, err, locations, per*locations)
	}
}

func TestSQLiteHasNoSharedNotes(t *testing.T) {
	t.Parallel()
	s := openSQLite(t, t.TempDir())
	defer func() { _ = s.Close() }()
	if _, err := s.RouteNotes(1, 1); !errors.Is(err, sqlstore.ErrNoSharedNotes) {
		t.Errorf("SQLite RouteNotes: %v, want ErrNoSharedNotes", err)
	}
}

// RouteChat through two servers sharing a PostgreSQL note store, in every
// protocol: a note sent to one is in the answer of the other.
func TestPostgresRouteChatAcrossServers(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	var servers []*testserver.Server
	for range 2 {
		s := openPostgres(t, dsn)
		t.Cleanup(func() { _ = s.Close() })
		notes, err := s.RouteNotes(routeguide.DefaultNotesPerLocation, routeguide.DefaultNoteLocations)
		if err != nil {
			t.Fatal(err)
		}
		servers = append(servers, testserver.Start(t, server.Config{Teams: s, RouteGuide: routeguide.Options{SharedNotes: notes}}))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for i, p := range testserver.Protocols() {
		at := &routeguidev1.Point{Latitude: int32(100 + i), Longitude: 7}
		var got []string
		for j, srv := range servers {
			client := routeguidev1connect.NewRouteGuideServiceClient(srv.HTTPClient, srv.URL, p.Opts...)
			stream := client.RouteChat(ctx)
			// The client's response body does not end with ctx here: a
			// server that sends too few notes would hang the test.
			stop := context.AfterFunc(ctx, func() { _ = stream.CloseResponse() })
			defer stop()
			msg := fmt.Sprintf("%s via server %d", p.Name, j)
			if err := stream.Send(&routeguidev1.RouteChatRequest{Location: at, Message: msg}); err != nil {
				t.Fatalf("%s: send: %v", p.Name, err)
			}
			got = nil
			for range j + 1 {
				res, err := stream.Receive()
				if err != nil {
					t.Fatalf("%s: receive from server %d: %v", p.Name, j, err)
				}
				got = append(got, res.GetMessage())
			}
			_ = stream.CloseRequest()
			if _, err := stream.Receive(); !errors.Is(err, io.EOF) {
				t.Errorf("%s: server %d sent more than the %d notes kept: %v", p.Name, j, j+1, err)
			}
			_ = stream.CloseResponse()
		}
		if want := []string{p.Name + " via server 0", p.Name + " via server 1"}; !slices.Equal(got, want) {
			t.Errorf("%s: server 1 answered %v, want %v", p.Name, got, want)
		}
	}
}

// A note over the per-note limit never reaches PostgreSQL: RouteChat
// refuses it with RESOURCE_EXHAUSTED before the shared store's Add, so the
// table holds at most perLocation × locations notes of the limit each.
func TestPostgresRouteChatNoteTooLong(t *testing.T) {
	t.Parallel()
	s := openPostgres(t, pgtest.Database(t))
	t.Cleanup(func() { _ = s.Close() })
	notes, err := s.RouteNotes(routeguide.DefaultNotesPerLocation, routeguide.DefaultNoteLocations)
	if err != nil {
		t.Fatal(err)
	}
	srv := testserver.Start(t, server.Config{Teams: s, RouteGuide: routeguide.Options{SharedNotes: notes, NoteMaxBytes: 100}})
	for i, p := range testserver.Protocols() {
		stream := routeguidev1connect.NewRouteGuideServiceClient(srv.HTTPClient, srv.URL, p.Opts...).RouteChat(testserver.CallContext(t))
		at := &routeguidev1.Point{Latitude: int32(200 + i)}
		_ = stream.Send(&routeguidev1.RouteChatRequest{Location: at, Message: strings.Repeat("x", 101)})
		_, err := stream.Receive()
		testserver.WantCode(t, err, connect.CodeResourceExhausted)
		_ = stream.CloseResponse()
	}
	if locs, kept, err := notes.Len(t.Context()); err != nil || locs != 0 || kept != 0 {
		t.Errorf("PostgreSQL keeps %d locations, %d notes (%v); want none", locs, kept, err)
	}
}

// A replica cut off from PostgreSQL (a partition), and a RouteChat
// stream with no deadline, as most are: the note's Add is UNAVAILABLE
// once the store's bound passes, rather than holding the stream for as
// long as TCP retransmits (about 15 minutes); once the partition heals
// notes are kept again.
func TestPostgresRouteNotesPartitioned(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	px := pgtest.NewProxy(t, dsn, "")
	s := openPostgres(t, px.DSN(), sqlstore.WithTimeout(time.Second))
	t.Cleanup(func() { _ = s.Close() })
	notes, err := s.RouteNotes(10, 10)
	if err != nil {
		t.Fatal(err)
	}
	here := routeguide.Point{Latitude: 3, Longitude: 4}
	if _, err := notes.Add(t.Context(), routeguide.Note{Location: here, Message: "before"}); err != nil {
		t.Fatal(err)
	}
	px.Freeze(true)
	t.Cleanup(func() { px.Freeze(false) })
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := notes.Add(t.Context(), routeguide.Note{Location: here, Message: "cut off"})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, teams.ErrUnavailable) {
			t.Errorf("a note's Add on a cut-off store: %v after %v, want ErrUnavailable", err, time.Since(start).Round(time.Millisecond))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a note's Add on a cut-off store, with no deadline, still waiting after 30 s")
	}
	px.Freeze(false)
	kept, err := notes.Add(t.Context(), routeguide.Note{Location: here, Message: "after"})
	if got := messages(kept); err != nil || len(got) == 0 || got[len(got)-1] != "after" {
		t.Errorf("a note's Add once the partition healed = %v, %v", got, err)
	}
}

// RouteChat on a replica cut off from PostgreSQL, the stream with no
// deadline: the note is answered UNAVAILABLE, which clients retry, once
// the store's bound passes (it was UNKNOWN, "internal error"), with
// nothing of the database's address in the message.
func TestPostgresRouteChatPartitioned(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	px := pgtest.NewProxy(t, dsn, "")
	s := openPostgres(t, px.DSN(), sqlstore.WithTimeout(time.Second))
	t.Cleanup(func() { _ = s.Close() })
	notes, err := s.RouteNotes(routeguide.DefaultNotesPerLocation, routeguide.DefaultNoteLocations)
	if err != nil {
		t.Fatal(err)
	}
	srv := testserver.Start(t, server.Config{Teams: s, RouteGuide: routeguide.Options{SharedNotes: notes}})
	px.Freeze(true)
	t.Cleanup(func() { px.Freeze(false) })
	for i, p := range testserver.Protocols() {
		ctx, cancel := context.WithCancel(t.Context()) // no deadline
		stream := routeguidev1connect.NewRouteGuideServiceClient(srv.HTTPClient, srv.URL, p.Opts...).RouteChat(ctx)
		_ = stream.Send(&routeguidev1.RouteChatRequest{Location: &routeguidev1.Point{Latitude: int32(300 + i)}, Message: "cut off"})
		got := make(chan error, 1)
		go func() { _, err := stream.Receive(); got <- err }()
		select {
		case err := <-got:
			testserver.WantCode(t, err, connect.CodeUnavailable)
			if strings.Contains(err.Error(), "PGSQL") || strings.Contains(err.Error(), "postgres") {
				t.Errorf("%s: the client was told about the database: %v", p.Name, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%s: RouteChat on a cut-off replica, with no deadline, still waiting after 30 s", p.Name)
		}
		cancel()
		_ = stream.CloseResponse()
	}
}

// A replica cut off from PostgreSQL in the middle of a note's Add (its
// location's row written and locked, the next statement lost): the
// session waits for that statement, and would hold the row until
// PostgreSQL noticed the dead connection, hours with the default TCP
// keepalive, every other replica's note at that location failing
// meanwhile. The store's sessions have a short
// idle_in_transaction_session_timeout: the row is free within seconds.
func TestPostgresRouteNotesPartitionedHoldsNoLocation(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	px := pgtest.NewProxy(t, dsn, "")
	s := openPostgres(t, px.DSN())
	t.Cleanup(func() { _ = s.Close() })
	other := openPostgres(t, dsn) // another replica, not cut off
	t.Cleanup(func() { _ = other.Close() })
	cutOff, err := s.RouteNotes(10, 10)
	if err != nil {
		t.Fatal(err)
	}
	notes, err := other.RouteNotes(10, 10)
	if err != nil {
		t.Fatal(err)
	}
	here := routeguide.Point{Latitude: 5, Longitude: 6}
	// The statement after the location's upsert, sent first as its text.
	cut := px.Partition("", []byte("INSERT INTO route_notes (id"))
	t.Cleanup(func() { px.Freeze(false) })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := cutOff.Add(ctx, routeguide.Note{Location: here, Message: "cut off"}); err == nil {
		t.Fatal("the cut-off replica's Add succeeded")
	}
	select {
	case <-cut:
	default:
		t.Fatal("the Add sent no note")
	}
	start := time.Now()
	kept, err := notes.Add(ctx, routeguide.Note{Location: here, Message: "other"})
	if got := messages(kept); err != nil || !slices.Equal(got, []string{"other"}) {
		t.Fatalf("another replica's note at the location the cut-off one's transaction held: %v, %v after %v; the row stays locked for as long as the partition",
			got, err, time.Since(start).Round(time.Millisecond))
	}
	t.Logf("the other replica's note was kept %v after the partition began", time.Since(start).Round(time.Millisecond))
}
