package routeguide_test

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
	"google.golang.org/protobuf/encoding/protowire"

	legacyroute "github.com/switchyard/switchyard/gen/legacy/routeguide"
	"github.com/switchyard/switchyard/gen/legacy/routeguide/routeguideconnect"
	routeguidev1 "github.com/switchyard/switchyard/gen/routeguide/v1"
	"github.com/switchyard/switchyard/gen/routeguide/v1/routeguidev1connect"
	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/testserver"
	"github.com/switchyard/switchyard/services/routeguide"
)

// RouteGuideService and the grpc-go example's routeguide.RouteGuide through
// the whole server, in every protocol: all four kinds of call. The
// database, the distance and the note store are tested on their own in
// routeguide_test.go.

func client(srv *testserver.Server, p testserver.Protocol) routeguidev1connect.RouteGuideServiceClient {
	return routeguidev1connect.NewRouteGuideServiceClient(srv.HTTPClient, srv.URL, p.Opts...)
}

func TestGetFeature(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	testserver.ForEachProtocol(t, func(t *testing.T, p testserver.Protocol) {
		c := client(srv, p)
		feature, err := c.GetFeature(testserver.CallContext(t), connect.NewRequest(&routeguidev1.GetFeatureRequest{Latitude: 409146138, Longitude: -746188906}))
		if err != nil || feature.Msg.GetName() != "Berkshire Valley Management Area Trail, Jefferson, NJ, USA" {
			t.Errorf("GetFeature(known) = %v, %v", feature, err)
		}
		feature, err = c.GetFeature(testserver.CallContext(t), connect.NewRequest(&routeguidev1.GetFeatureRequest{Latitude: 1, Longitude: 2}))
		if err != nil || feature.Msg.GetName() != "" || feature.Msg.GetLocation().GetLatitude() != 1 || feature.Msg.GetLocation().GetLongitude() != 2 {
			t.Errorf("GetFeature(unknown) = %v, %v; want nameless feature at (1, 2)", feature, err)
		}
		_, err = c.GetFeature(testserver.CallContext(t), connect.NewRequest(&routeguidev1.GetFeatureRequest{Latitude: 900000001}))
		testserver.WantCode(t, err, connect.CodeInvalidArgument)
	})
}

// wholeMap covers every feature of the embedded database.
var wholeMap = &routeguidev1.ListFeaturesRequest{
	Lo: &routeguidev1.Point{Latitude: 400000000, Longitude: -750000000},
	Hi: &routeguidev1.Point{Latitude: 420000000, Longitude: -730000000},
}

func TestListFeatures(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	testserver.ForEachProtocol(t, func(t *testing.T, p testserver.Protocol) {
		c := client(srv, p)
		for name, req := range map[string]*routeguidev1.ListFeaturesRequest{
			"lo/hi":         wholeMap,
			"swapped lo/hi": {Lo: wholeMap.GetHi(), Hi: wholeMap.GetLo()},
		} {
			stream, err := c.ListFeatures(testserver.CallContext(t), connect.NewRequest(req))
			if err != nil {
				t.Fatal(err)
			}
			var total, named int
			var got []string
			for stream.Receive() {
				total++
				if stream.Msg().GetName() != "" {
					named++
				}
				f := stream.Msg()
				got = append(got, fmt.Sprint(f.GetLocation().GetLatitude(), f.GetLocation().GetLongitude(), f.GetName()))
			}
			if err := stream.Err(); err != nil || total != 100 || named != 64 {
				t.Errorf("%s: ListFeatures(whole map) = %d features (%d named), err %v; want 100 (64 named)", name, total, named, err)
			}
			// Every feature with its own location and name.
			var want []string
			for _, f := range routeguide.DefaultDB().Features() {
				want = append(want, fmt.Sprint(f.Location.Latitude, f.Location.Longitude, f.Name))
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("%s: ListFeatures(whole map) sent features other than the database's", name)
			}
		}

		// A rectangle whose corners are exactly two features includes both.
		a := &routeguidev1.Point{Latitude: 407838351, Longitude: -746143763}
		b := &routeguidev1.Point{Latitude: 408122808, Longitude: -743999179}
		stream, err := c.ListFeatures(testserver.CallContext(t), connect.NewRequest(&routeguidev1.ListFeaturesRequest{Lo: a, Hi: b}))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for stream.Receive() {
			names = append(names, stream.Msg().GetName())
		}
		if err := stream.Err(); err != nil || !slices.Contains(names, "Patriots Path, Mendham, NJ 07945, USA") || !slices.Contains(names, "101 New Jersey 10, Whippany, NJ 07981, USA") {
			t.Errorf("ListFeatures(corner features) = %q, %v; want both corners included", names, err)
		}
	})
}

func TestRecordRoute(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	testserver.ForEachProtocol(t, func(t *testing.T, p testserver.Protocol) {
		c := client(srv, p)
		// Five segments of 0.2° along the equator: each is 22238.98 m and is
		// truncated to 22238 before summing, 111190 in all.
		stream := c.RecordRoute(testserver.CallContext(t))
		for i := range int32(6) {
			if err := stream.Send(&routeguidev1.RecordRouteRequest{Longitude: i * 2000000}); err != nil {
				t.Fatal(err)
			}
		}
		// Two known features.
		for _, p := range []*routeguidev1.RecordRouteRequest{{Latitude: 407838351, Longitude: -746143763}, {Latitude: 408122808, Longitude: -743999179}} {
			if err := stream.Send(p); err != nil {
				t.Fatal(err)
			}
		}
		res, err := stream.CloseAndReceive()
		if err != nil {
			t.Fatal(err)
		}
		s := res.Msg
		// Segment 6 → 7 runs from (0, 1°) to Patriots Path and 7 → 8 between
		// the two features: 8801854.41 m and 18327.35 m (computed independently
		// with the haversine formula), truncated.
		wantDistance := int32(111190 + 8801854 + 18327)
		if s.GetPointCount() != 8 || s.GetFeatureCount() != 2 || s.GetDistance() != wantDistance || s.GetElapsedTime() != 0 {
			t.Errorf("RecordRoute = %v; want 8 points, 2 features, %d m, 0 s", s, wantDistance)
		}

		bad := c.RecordRoute(testserver.CallContext(t))
		_ = bad.Send(&routeguidev1.RecordRouteRequest{Latitude: -900000001})
		_, err = bad.CloseAndReceive()
		testserver.WantCode(t, err, connect.CodeInvalidArgument)

		// A field a point leaves out is zero, whatever the point before
		// it said: (1°, 0) then (0, 0) is one degree of latitude.
		back := c.RecordRoute(testserver.CallContext(t))
		_ = back.Send(&routeguidev1.RecordRouteRequest{Latitude: 10000000})
		_ = back.Send(&routeguidev1.RecordRouteRequest{})
		res, err = back.CloseAndReceive()
		if err != nil || res.Msg.GetPointCount() != 2 || res.Msg.GetDistance() != 111194 {
			t.Errorf("RecordRoute((1°, 0), (0, 0)) = %v, %v; want 2 points, 111194 m", res, err)
		}
	})
}

// A route longer than an int32 of metres: the v1 name refuses it with
// OUT_OF_RANGE rather than answer a wrapped, negative distance; the
// tutorial's name wraps, as the example's server does. Each segment runs
// from (0, 0) to (0, 180°), half the Earth's circumference: 20015086 m.
func TestRecordRouteLongerThanADistanceHolds(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	const segment = 20015086
	lng := func(i int) int32 { return int32(i%2) * 1800000000 }
	for _, tc := range []struct {
		points int
		want   int32 // 0: OUT_OF_RANGE from the v1 name
	}{{108, 107 * segment}, {109, 0}} {
		testserver.ForEachProtocol(t, func(t *testing.T, p testserver.Protocol) {
			stream := client(srv, p).RecordRoute(testserver.CallContext(t))
			for i := range tc.points {
				if err := stream.Send(&routeguidev1.RecordRouteRequest{Longitude: lng(i)}); err != nil {
					t.Fatal(err)
				}
			}
			res, err := stream.CloseAndReceive()
			if tc.want == 0 {
				testserver.WantCode(t, err, connect.CodeOutOfRange)
				if err != nil && !strings.Contains(err.Error(), "the route is 2161629288 m long") {
					t.Errorf("%d points: %v, want the message to give the route's length", tc.points, err)
				}
			} else if err != nil || res.Msg.GetDistance() != tc.want {
				t.Errorf("%d points: %v, %v; want %d m", tc.points, res, err, tc.want)
			}

			legacy := routeguideconnect.NewRouteGuideClient(srv.HTTPClient, srv.URL, p.Opts...).RecordRoute(testserver.CallContext(t))
			for i := range tc.points {
				if err := legacy.Send(&legacyroute.Point{Longitude: lng(i)}); err != nil {
					t.Fatal(err)
				}
			}
			summary, err := legacy.CloseAndReceive()
			want := int32(int64(tc.points-1) * segment) // wrapped, as the example's int32 sum
			if err != nil || summary.Msg.GetDistance() != want {
				t.Errorf("legacy, %d points: %v, %v; want %d m", tc.points, summary, err, want)
			}
		})
	}
}

// A message the server cannot read ends the route with its error, not
// with a summary of the points before it. The oversized point carries an
// unknown field, which JSON does not encode: the binary codecs only.
func TestRecordRouteStreamErrorMidway(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{ReadMaxBytes: 1024})
	for _, p := range testserver.Protocols() {
		if strings.HasSuffix(p.Name, "json") {
			continue
		}
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			recordOversizedPoint(t, client(srv, p))
		})
	}
}

func recordOversizedPoint(t *testing.T, c routeguidev1connect.RouteGuideServiceClient) {
	stream := c.RecordRoute(testserver.CallContext(t))
	_ = stream.Send(&routeguidev1.RecordRouteRequest{Latitude: 10000000})
	big := &routeguidev1.RecordRouteRequest{}
	big.ProtoReflect().SetUnknown(protowire.AppendBytes(protowire.AppendTag(nil, 15, protowire.BytesType), make([]byte, 2048)))
	_ = stream.Send(big)
	res, err := stream.CloseAndReceive()
	if err == nil {
		t.Fatalf("RecordRoute with an oversized point = %v, want an error", res.Msg)
	}
	testserver.WantCode(t, err, connect.CodeResourceExhausted)
}

func TestRouteChat(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	testserver.ForEachProtocol(t, func(t *testing.T, p testserver.Protocol) {
		// Each protocol chats at its own location so the parallel subtests
		// do not see each other's notes.
		loc := &routeguidev1.Point{Latitude: int32(len(t.Name())) * 1000, Longitude: int32(time.Now().UnixNano() % 1e6)}
		stream := client(srv, p).RouteChat(testserver.CallContext(t))
		defer stream.CloseResponse()
		var got []string
		for i, msg := range []string{"first", "second", "third"} {
			if err := stream.Send(&routeguidev1.RouteChatRequest{Location: loc, Message: msg}); err != nil {
				t.Fatal(err)
			}
			// The answer to the i-th note is every note so far, in order.
			for range i + 1 {
				n, err := stream.Receive()
				if err != nil {
					t.Fatal(err)
				}
				if n.GetLocation().GetLatitude() != loc.GetLatitude() || n.GetLocation().GetLongitude() != loc.GetLongitude() {
					t.Errorf("reply %q at %v, want %v", n.GetMessage(), n.GetLocation(), loc)
				}
				got = append(got, n.GetMessage())
			}
		}
		if err := stream.CloseRequest(); err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Receive(); !errors.Is(err, io.EOF) {
			t.Errorf("after CloseRequest: Receive() = %v, want io.EOF", err)
		}
		want := []string{"first", "first", "second", "first", "second", "third"}
		if !slices.Equal(got, want) {
			t.Errorf("RouteChat replies = %q, want %q", got, want)
		}
	})
}

// Two RouteChat streams open at once see each other's notes.
func TestRouteChatSharedBetweenStreams(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	c := client(srv, testserver.Protocols()[2]) // gRPC
	loc := &routeguidev1.Point{Latitude: 123, Longitude: 456}
	alice, bob := c.RouteChat(testserver.CallContext(t)), c.RouteChat(testserver.CallContext(t))
	defer alice.CloseResponse()
	defer bob.CloseResponse()

	send := func(s *connect.BidiStreamForClient[routeguidev1.RouteChatRequest, routeguidev1.RouteChatResponse], msg string, replies int) []string {
		t.Helper()
		if err := s.Send(&routeguidev1.RouteChatRequest{Location: loc, Message: msg}); err != nil {
			t.Fatal(err)
		}
		var got []string
		for range replies {
			n, err := s.Receive()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, n.GetMessage())
		}
		return got
	}
	if got := send(alice, "alice 1", 1); !slices.Equal(got, []string{"alice 1"}) {
		t.Errorf("alice's first replies = %q", got)
	}
	if got := send(bob, "bob 1", 2); !slices.Equal(got, []string{"alice 1", "bob 1"}) {
		t.Errorf("bob sees %q, want alice's note then his own", got)
	}
	if got := send(alice, "alice 2", 3); !slices.Equal(got, []string{"alice 1", "bob 1", "alice 2"}) {
		t.Errorf("alice sees %q, want all three notes", got)
	}

	// Many writers at once: every note is kept (within the bounds) and no
	// reply is torn.
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			s := c.RouteChat(testserver.CallContext(t))
			defer s.CloseResponse()
			for i := range 10 {
				msg := fmt.Sprintf("w%d-%d", w, i)
				if err := s.Send(&routeguidev1.RouteChatRequest{Location: &routeguidev1.Point{Latitude: int32(w)}, Message: msg}); err != nil {
					t.Error(err)
					return
				}
				for j := range i + 1 {
					n, err := s.Receive()
					if err != nil || n.GetMessage() != fmt.Sprintf("w%d-%d", w, j) {
						t.Errorf("writer %d reply %d = %v, %v", w, j, n, err)
						return
					}
				}
			}
			_ = s.CloseRequest()
		})
	}
	wg.Wait()
}

// The grpc-go example's procedure names, served by the same handler.
func TestLegacyRouteGuide(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	for i, p := range testserver.Protocols() {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			rg := routeguideconnect.NewRouteGuideClient(srv.HTTPClient, srv.URL, p.Opts...)

			f, err := rg.GetFeature(testserver.CallContext(t), connect.NewRequest(&legacyroute.Point{Latitude: 409146138, Longitude: -746188906}))
			if err != nil || f.Msg.GetName() != "Berkshire Valley Management Area Trail, Jefferson, NJ, USA" {
				t.Errorf("GetFeature = %v, %v", f, err)
			}
			f, err = rg.GetFeature(testserver.CallContext(t), connect.NewRequest(&legacyroute.Point{Latitude: 1, Longitude: 2}))
			if err != nil || f.Msg.GetName() != "" || f.Msg.GetLocation().GetLongitude() != 2 {
				t.Errorf("GetFeature(unknown) = %v, %v; want a nameless feature at the point", f, err)
			}
			_, err = rg.GetFeature(testserver.CallContext(t), connect.NewRequest(&legacyroute.Point{Latitude: 900000001}))
			testserver.WantCode(t, err, connect.CodeInvalidArgument)

			list, err := rg.ListFeatures(testserver.CallContext(t), connect.NewRequest(&legacyroute.Rectangle{
				Lo: &legacyroute.Point{Latitude: 400000000, Longitude: -750000000},
				Hi: &legacyroute.Point{Latitude: 420000000, Longitude: -730000000},
			}))
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for list.Receive() {
				n++
			}
			if err := list.Err(); err != nil || n != 100 {
				t.Errorf("ListFeatures streamed %d features (%v), want 100 (the example's rectangle holds every feature)", n, err)
			}

			rec := rg.RecordRoute(testserver.CallContext(t))
			for _, lat := range []int32{0, 10000000} {
				if err := rec.Send(&legacyroute.Point{Latitude: lat}); err != nil {
					t.Fatal(err)
				}
			}
			summary, err := rec.CloseAndReceive()
			if err != nil || summary.Msg.GetPointCount() != 2 || summary.Msg.GetDistance() != 111194 {
				t.Errorf("RecordRoute = %v, %v; want 2 points, 111194 m", summary, err)
			}

			// A location of its own per protocol: notes are shared server-wide.
			loc := &legacyroute.Point{Latitude: 12345, Longitude: int32(i)}
			chat := rg.RouteChat(testserver.CallContext(t))
			for k, msg := range []string{"first", "second"} {
				if err := chat.Send(&legacyroute.RouteNote{Location: loc, Message: msg}); err != nil {
					t.Fatal(err)
				}
				for range k + 1 {
					if _, err := chat.Receive(); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := chat.CloseRequest(); err != nil {
				t.Fatal(err)
			}
			if _, err := chat.Receive(); !errors.Is(err, io.EOF) {
				t.Errorf("after CloseRequest: %v, want io.EOF", err)
			}
			_ = chat.CloseResponse()
		})
	}
}

// One implementation serves both names: a note left through the tutorial's
// RouteChat is among the notes routeguide.v1 returns at that location.
func TestLegacyAndV1ShareRouteChat(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	loc := &legacyroute.Point{Latitude: 424242, Longitude: 434343}

	legacy := routeguideconnect.NewRouteGuideClient(srv.HTTPClient, srv.URL).RouteChat(testserver.CallContext(t))
	if err := legacy.Send(&legacyroute.RouteNote{Location: loc, Message: "via the tutorial name"}); err != nil {
		t.Fatal(err)
	}
	if _, err := legacy.Receive(); err != nil {
		t.Fatal(err)
	}
	_ = legacy.CloseRequest()
	_ = legacy.CloseResponse()

	v1 := client(srv, testserver.Protocols()[0]).RouteChat(testserver.CallContext(t))
	if err := v1.Send(&routeguidev1.RouteChatRequest{Location: &routeguidev1.Point{Latitude: loc.GetLatitude(), Longitude: loc.GetLongitude()}, Message: "via v1"}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 2 {
		n, err := v1.Receive()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, n.GetMessage())
	}
	_ = v1.CloseRequest()
	_ = v1.CloseResponse()
	if !slices.Equal(got, []string{"via the tutorial name", "via v1"}) {
		t.Errorf("v1 RouteChat returned %q, want the legacy note then its own", got)
	}
}

// chat is one RouteChat stream under either name.
type chat struct {
	send  func(msg string) error
	recv  func() (string, error)
	close func()
}

func chatV1(t *testing.T, srv *testserver.Server, p testserver.Protocol, loc *routeguidev1.Point) chat {
	s := client(srv, p).RouteChat(testserver.CallContext(t))
	return chat{
		send: func(msg string) error { return s.Send(&routeguidev1.RouteChatRequest{Location: loc, Message: msg}) },
		recv: func() (string, error) {
			n, err := s.Receive()
			return n.GetMessage(), err
		},
		close: func() { _ = s.CloseRequest(); _ = s.CloseResponse() },
	}
}

func chatLegacy(t *testing.T, srv *testserver.Server, p testserver.Protocol, loc *routeguidev1.Point) chat {
	s := routeguideconnect.NewRouteGuideClient(srv.HTTPClient, srv.URL, p.Opts...).RouteChat(testserver.CallContext(t))
	at := &legacyroute.Point{Latitude: loc.GetLatitude(), Longitude: loc.GetLongitude()}
	return chat{
		send: func(msg string) error { return s.Send(&legacyroute.RouteNote{Location: at, Message: msg}) },
		recv: func() (string, error) {
			n, err := s.Receive()
			return n.GetMessage(), err
		},
		close: func() { _ = s.CloseRequest(); _ = s.CloseResponse() },
	}
}

// A note whose message is over -chat-note-max-bytes (4096 by default) is
// refused with RESOURCE_EXHAUSTED, in every protocol and under both names,
// and is not kept; a note of exactly the limit is.
func TestRouteChatNoteTooLong(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	atLimit := strings.Repeat("a", routeguide.DefaultNoteMaxBytes)
	over := strings.Repeat("b", routeguide.DefaultNoteMaxBytes+1)
	for i, p := range testserver.Protocols() {
		for j, name := range []string{"v1", "legacy"} {
			open := chatV1
			if name == "legacy" {
				open = chatLegacy
			}
			t.Run(p.Name+"/"+name, func(t *testing.T) {
				t.Parallel()
				loc := &routeguidev1.Point{Latitude: 777000 + int32(10*i+j), Longitude: 777}
				s := open(t, srv, p, loc)
				defer s.close()
				if err := s.send(atLimit); err != nil {
					t.Fatal(err)
				}
				if got, err := s.recv(); err != nil || got != atLimit {
					t.Fatalf("note of %d bytes: reply of %d bytes, %v; want it back", len(atLimit), len(got), err)
				}
				_ = s.send(over) // the error comes with the answer
				_, err := s.recv()
				testserver.WantCode(t, err, connect.CodeResourceExhausted)
				for _, want := range []string{"4097 bytes", "the limit is 4096", "-chat-note-max-bytes"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}

				// The refused note was not kept.
				again := open(t, srv, p, loc)
				defer again.close()
				if err := again.send("short"); err != nil {
					t.Fatal(err)
				}
				var got []int
				for range 2 {
					msg, err := again.recv()
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, len(msg))
				}
				if want := []int{len(atLimit), len("short")}; !slices.Equal(got, want) {
					t.Errorf("notes kept at the location: lengths %v, want %v", got, want)
				}
			})
		}
	}
}

// recordingNotes is a shared note store that records what reaches it.
type recordingNotes struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recordingNotes) Add(_ context.Context, n routeguide.Note) ([]routeguide.Note, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, n.Message)
	return []routeguide.Note{n}, nil
}

// The limit holds before a shared store (PostgreSQL) too: an oversized
// note never reaches it, and the in-memory byte budget does not lower the
// limit of a shared store.
func TestRouteChatNoteTooLongSharedStore(t *testing.T) {
	t.Parallel()
	shared := &recordingNotes{}
	srv := testserver.Start(t, server.Config{RouteGuide: routeguide.Options{SharedNotes: shared, NoteMaxBytes: 2000, NotesMaxBytes: 1000}})
	for i, p := range testserver.Protocols() {
		for j, open := range []func(*testing.T, *testserver.Server, testserver.Protocol, *routeguidev1.Point) chat{chatV1, chatLegacy} {
			s := open(t, srv, p, &routeguidev1.Point{Latitude: int32(10*i + j)})
			if err := s.send(strings.Repeat("a", 2000)); err != nil {
				t.Fatal(err)
			}
			if _, err := s.recv(); err != nil {
				t.Fatalf("%s: note of 2000 bytes: %v", p.Name, err)
			}
			_ = s.send(strings.Repeat("b", 2001))
			_, err := s.recv()
			testserver.WantCode(t, err, connect.CodeResourceExhausted)
			s.close()
		}
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if len(shared.msgs) != 8 || slices.ContainsFunc(shared.msgs, func(m string) bool { return len(m) != 2000 }) {
		t.Errorf("the shared store got %d notes, want only the 8 of 2000 bytes", len(shared.msgs))
	}
}
