package main

import (
	"io"
	"strings"
	"testing"

	"connectrpc.com/connect"

	routeguidev1 "github.com/switchyard/switchyard/gen/routeguide/v1"
	"github.com/switchyard/switchyard/gen/routeguide/v1/routeguidev1connect"
	"github.com/switchyard/switchyard/internal/testserver"
	"github.com/switchyard/switchyard/services/routeguide"
)

// The RouteChat note size flags default to the handler's limits and are
// read as given (their ranges are checked by TestFlagRanges).
func TestChatNoteFlags(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil || o.noteMaxBytes != routeguide.DefaultNoteMaxBytes || o.notesMaxBytes != routeguide.DefaultNotesMaxBytes {
		t.Fatalf("defaults: -chat-note-max-bytes %d, -chat-notes-max-bytes %d, %v; want %d, %d",
			o.noteMaxBytes, o.notesMaxBytes, err, routeguide.DefaultNoteMaxBytes, routeguide.DefaultNotesMaxBytes)
	}
	if routeguide.DefaultNoteMaxBytes != 4096 || routeguide.DefaultNotesMaxBytes != 64<<20 {
		t.Errorf("defaults %d, %d; README.md, docs/operations.md and SECURITY.md say 4096 and 64 MiB",
			routeguide.DefaultNoteMaxBytes, routeguide.DefaultNotesMaxBytes)
	}
	o, err = parseFlags([]string{"-chat-note-max-bytes", "100", "-chat-notes-max-bytes", "1000"}, io.Discard)
	if err != nil || o.noteMaxBytes != 100 || o.notesMaxBytes != 1000 {
		t.Errorf("-chat-note-max-bytes 100 -chat-notes-max-bytes 1000: %d, %d, %v", o.noteMaxBytes, o.notesMaxBytes, err)
	}
}

// The binary passes both flags to RouteChat: a note over
// -chat-note-max-bytes is refused naming the flag, and notes over
// -chat-notes-max-bytes evict the locations written least recently.
func TestChatNoteFlagsReachRouteChat(t *testing.T) {
	t.Parallel()
	p := startProcess(t, "-chat-note-max-bytes", "100", "-chat-notes-max-bytes", "1000")
	client := testserver.NewH2CClient()
	defer client.CloseIdleConnections()
	rg := routeguidev1connect.NewRouteGuideServiceClient(client, p.url, connect.WithGRPC())
	s := rg.RouteChat(t.Context())
	defer s.CloseResponse()
	// Each note counts 100 + 64 bytes: 6 fit in 1000, so the tenth
	// location's note has evicted the first four, and a note at the first
	// is the only one there.
	for lat := range int32(11) {
		msg := strings.Repeat("n", 100)
		if lat == 10 {
			lat, msg = 0, "back at the first location"
		}
		if err := s.Send(&routeguidev1.RouteChatRequest{Location: &routeguidev1.Point{Latitude: lat}, Message: msg}); err != nil {
			t.Fatal(err)
		}
		if n, err := s.Receive(); err != nil || n.GetMessage() != msg {
			t.Fatalf("note at %d: first reply %q, %v; want the note itself (the only one there)", lat, n.GetMessage(), err)
		}
	}
	_ = s.Send(&routeguidev1.RouteChatRequest{Location: &routeguidev1.Point{}, Message: strings.Repeat("n", 101)})
	_, err := s.Receive()
	testserver.WantCode(t, err, connect.CodeResourceExhausted)
	if !strings.Contains(err.Error(), "the limit is 100 (-chat-note-max-bytes)") {
		t.Errorf("error %q does not name the limit and its flag", err)
	}
}
