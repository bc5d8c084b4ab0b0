package teams

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
)

// brokenStore fails every operation as a database would.
type brokenStore struct{ Store }

var errDisk = errors.New("disk I/O error: /var/lib/switchyard/teams.db")

func (brokenStore) Get(context.Context, string) (Team, error) { return Team{}, errDisk }

// captureHandler keeps the lines, and the context of each, it is given.
type captureHandler struct {
	mu    sync.Mutex
	lines []string
	ctxs  []context.Context
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *captureHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *captureHandler) WithGroup(string) slog.Handler            { return h }
func (h *captureHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	h.lines = append(h.lines, b.String())
	h.ctxs = append(h.ctxs, ctx)
	return nil
}

type ctxKey struct{}

// A store failure, whose details the client is told are in the server
// log, is logged through the configured logger (not slog.Default), with
// the call's context; the client gets none of it.
func TestStoreFailureLoggedThroughConfiguredLogger(t *testing.T) {
	capture := &captureHandler{}
	var defaultLines captureHandler
	prev := slog.Default()
	slog.SetDefault(slog.New(&defaultLines))
	defer slog.SetDefault(prev)

	h := NewHandler(brokenStore{}, "").WithLogger(slog.New(capture))
	ctx := context.WithValue(context.Background(), ctxKey{}, "the call's")
	_, err := h.GetTeam(ctx, connect.NewRequest(&teamsv1.GetTeamRequest{City: "Chicago"}))
	if connect.CodeOf(err) != connect.CodeInternal || strings.Contains(err.Error(), "disk") {
		t.Fatalf("GetTeam on a failing store: %v, want internal without the cause", err)
	}
	legacy := NewLegacyHandler(brokenStore{}).WithLogger(slog.New(capture))
	if _, err := legacy.v1.Lookup(ctx, "Chicago"); connect.CodeOf(err) != connect.CodeInternal {
		t.Fatalf("legacy lookup: %v", err)
	}
	if len(capture.lines) != 2 || !strings.Contains(capture.lines[0], "team store failed") || !strings.Contains(capture.lines[0], "disk I/O error") {
		t.Fatalf("configured logger got %q, want the store failures", capture.lines)
	}
	for _, c := range capture.ctxs {
		if c.Value(ctxKey{}) != "the call's" {
			t.Error("the line was not logged with the call's context")
		}
	}
	if len(defaultLines.lines) != 0 {
		t.Errorf("slog.Default got %q", defaultLines.lines)
	}
}

// unavailableStore fails every read as a database that is down does.
type unavailableStore struct{ Store }

func (unavailableStore) Get(context.Context, string) (Team, error) {
	return Team{}, fmt.Errorf("%w: dial tcp 10.0.0.5:5432: connect: connection refused", ErrUnavailable)
}

// cutOffStore fails every write as a store cut off from its database
// does once its bound passes: the write may have been made.
type cutOffStore struct{ Store }

func (cutOffStore) Put(context.Context, Team) (Team, bool, error) {
	return Team{}, false, fmt.Errorf("%w: %w: the database answered no write within 10s", ErrUnavailable, ErrMaybeMade)
}

// While the store is down every call fails alike: each gets its
// UNAVAILABLE, but the store's line is written once a second, with the
// count of those left out, not once per call. An unexpected failure,
// whose client is told its cause is in the log, is written every time.
func TestStoreFailureLinesSampled(t *testing.T) {
	capture := &captureHandler{}
	h := NewHandler(unavailableStore{}, "").WithLogger(slog.New(capture))
	now := time.Unix(1e9, 0)
	h.unavailableLines.Clock = func() time.Time { return now }
	call := func() {
		t.Helper()
		_, err := h.GetTeam(context.Background(), connect.NewRequest(&teamsv1.GetTeamRequest{City: "Chicago"}))
		if connect.CodeOf(err) != connect.CodeUnavailable {
			t.Fatalf("GetTeam: %v, want unavailable", err)
		}
	}
	for range 100 {
		call()
	}
	now = now.Add(999 * time.Millisecond)
	call()
	if len(capture.lines) != 1 || !strings.HasPrefix(capture.lines[0], "team store unavailable") || strings.Contains(capture.lines[0], "suppressed") {
		t.Fatalf("lines after 101 failures within a second: %q, want one", capture.lines)
	}
	now = now.Add(time.Millisecond)
	call()
	if len(capture.lines) != 2 || !strings.HasPrefix(capture.lines[1], "team store unavailable") || !strings.HasSuffix(capture.lines[1], " suppressed=100") {
		t.Fatalf("lines a second later: %q, want a second one with suppressed=100", capture.lines)
	}

	// A store cut off from its database: every write may have been
	// made, and its client is told to read the team or retry.
	capture = &captureHandler{}
	h = NewHandler(cutOffStore{}, "token").WithLogger(slog.New(capture))
	h.maybeMadeLines.Clock = func() time.Time { return now }
	for range 101 {
		req := connect.NewRequest(&teamsv1.PutTeamRequest{City: "Chicago", Nickname: "Bears"})
		req.Header().Set("Authorization", "Bearer token")
		if _, err := h.PutTeam(context.Background(), req); connect.CodeOf(err) != connect.CodeUnavailable || !strings.Contains(err.Error(), "may have been made") {
			t.Fatalf("PutTeam on a cut-off store: %v, want unavailable, maybe made", err)
		}
	}
	if len(capture.lines) != 1 || !strings.HasPrefix(capture.lines[0], "team store cannot tell whether a write was made") {
		t.Fatalf("lines after 101 writes that may have been made within a second: %q, want one", capture.lines)
	}

	broken := &captureHandler{}
	h = NewHandler(brokenStore{}, "").WithLogger(slog.New(broken))
	for range 3 {
		if _, err := h.GetTeam(context.Background(), connect.NewRequest(&teamsv1.GetTeamRequest{City: "Chicago"})); connect.CodeOf(err) != connect.CodeInternal {
			t.Fatalf("GetTeam on a broken store: %v, want internal", err)
		}
	}
	if len(broken.lines) != 3 {
		t.Errorf("3 unexpected store failures wrote %d lines, want 3: each client is told its cause is in the log", len(broken.lines))
	}
}

// cutShortStore's writes end with their caller's context, as a store's
// do when the deadline passes while it writes.
type cutShortStore struct {
	Store
	err error
}

func (s cutShortStore) Put(context.Context, Team) (Team, bool, error) {
	return Team{}, false, fmt.Errorf("%w: write teams: i/o timeout", s.err)
}

func (s cutShortStore) Delete(context.Context, string) (Team, error) {
	return Team{}, fmt.Errorf("%w: write teams: i/o timeout", s.err)
}

// A write its caller's deadline or cancel cut short may have been made
// (its statement or COMMIT may have reached the database): the client is
// told so, not that the server was reading.
func TestWriteCutShortMayHaveBeenMade(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code connect.Code
	}{
		{context.DeadlineExceeded, connect.CodeDeadlineExceeded},
		{context.Canceled, connect.CodeCanceled},
	} {
		h := NewHandler(cutShortStore{err: tc.err}, "tok")
		put := connect.NewRequest(&teamsv1.PutTeamRequest{City: "Miami", Nickname: "Sharks"})
		put.Header().Set("Authorization", "Bearer tok")
		_, putErr := h.PutTeam(context.Background(), put)
		del := connect.NewRequest(&teamsv1.DeleteTeamRequest{City: "Miami"})
		del.Header().Set("Authorization", "Bearer tok")
		_, delErr := h.DeleteTeam(context.Background(), del)
		for name, err := range map[string]error{"PutTeam": putErr, "DeleteTeam": delErr} {
			if connect.CodeOf(err) != tc.code || !strings.Contains(err.Error(), "may have been made") || strings.Contains(err.Error(), "reading") {
				t.Errorf("%s cut short by %v: %v; want %v saying the write may have been made", name, tc.err, err, tc.code)
			}
		}
	}
}

// fullStore fails every write as a store whose disk is full does.
type fullStore struct{ Store }

func (fullStore) Put(context.Context, Team) (Team, bool, error) {
	return Team{}, false, fmt.Errorf("%w: database or disk is full (13): free space on the file system of /var/lib/switchyard", ErrStorageFull)
}

// A write the store's disk has no room for is RESOURCE_EXHAUSTED, as
// gRPC's codes name a file system out of space, with a message that says
// what the operator must do; not INTERNAL, whose client is told nothing.
// The store's line (with the directory) is written once a second at
// ERROR, as every write fails alike until space is freed.
func TestStorageFullIsResourceExhausted(t *testing.T) {
	capture := &captureHandler{}
	h := NewHandler(fullStore{}, "token").WithLogger(slog.New(capture))
	now := time.Unix(1e9, 0)
	h.fullLines.Clock = func() time.Time { return now }
	for range 3 {
		req := connect.NewRequest(&teamsv1.PutTeamRequest{City: "Chicago", Nickname: "Bears"})
		req.Header().Set("Authorization", "Bearer token")
		_, err := h.PutTeam(context.Background(), req)
		if connect.CodeOf(err) != connect.CodeResourceExhausted || !strings.Contains(err.Error(), "storage is full") || !strings.Contains(err.Error(), "not made") {
			t.Fatalf("PutTeam on a full store: %v, want resource_exhausted saying the storage is full and the write not made", err)
		}
		if strings.Contains(err.Error(), "/var/lib") {
			t.Errorf("PutTeam on a full store: %v tells the client the server's directory", err)
		}
	}
	if len(capture.lines) != 1 || !strings.HasPrefix(capture.lines[0], "team store's storage is full") || !strings.Contains(capture.lines[0], "/var/lib/switchyard") {
		t.Fatalf("lines after 3 writes on a full store within a second: %q, want one naming the directory", capture.lines)
	}
}
