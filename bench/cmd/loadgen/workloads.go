package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	legacyteams "github.com/switchyard/switchyard/gen/legacy/teams"
	routeguidev1 "github.com/switchyard/switchyard/gen/routeguide/v1"
	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/services/routeguide"
	"github.com/switchyard/switchyard/services/teams"
)

// call is one RPC to make: the request body (gRPC-framed messages, sent
// with END_STREAM) and a check of the whole response.
type call struct {
	body  []byte
	msgs  int // messages counted for the call
	check func(*response) error
}

// workload makes the calls of one benchmark on one connection, in a loop.
// Each connection has its own, so next and the checks need no locking.
type workload struct {
	path    string
	proto   rpcProtocol // how its calls travel (run sets it; zero is gRPC)
	headers []string    // further request headers, name then value
	next    func() call
	// writesSeen counts answers that carried a nickname the PutTeam writer
	// set: the proof that its writes reach the readers.
	writesSeen int
}

// params are what a workload is built from.
type params struct {
	per     int     // messages per call for client- and bidi-streaming workloads
	seed    int     // distinguishes runs (and, with conn, connections) so RouteChat locations never repeat
	conn    int     // the connection's index in the run
	unknown float64 // share of GetTeam calls for a city without a team
}

// workloads by name. Adding a workload is one entry here (and a row in
// benchrun's table). The legacy* variants call the tutorials' procedure
// names, which grpc-go's route_guide example serves too.
var workloads = map[string]func(p params) *workload{
	"getteam":            func(p params) *workload { return getTeam(false, p) },
	"legacygetteam":      func(p params) *workload { return getTeam(true, p) },
	"getfeature":         func(params) *workload { return getFeature(rgV1) },
	"legacygetfeature":   func(params) *workload { return getFeature(rgLegacy) },
	"listfeatures":       func(params) *workload { return listFeatures(rgV1) },
	"legacylistfeatures": func(params) *workload { return listFeatures(rgLegacy) },
	"recordroute":        func(p params) *workload { return recordRoute(rgV1, p) },
	"legacyrecordroute":  func(p params) *workload { return recordRoute(rgLegacy, p) },
	"routechat":          func(p params) *workload { return routeChat(rgV1, p) },
	"legacyroutechat":    func(p params) *workload { return routeChat(rgLegacy, p) },
}

func workloadNames() []string {
	var names []string
	for n := range workloads {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func mustMarshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// UnknownCities are asked for in the not-a-member share of a GetTeam mix.
var UnknownCities = []string{"Atlantis", "Gotham", "Springfield", "Metropolis", "Rivendell"}

// Nicknames are the nicknames a team may have during a benchmark: its
// own, then those the PutTeam writer cycles through. A reader accepts
// exactly these, so a write that reaches it passes its check and anything
// else fails it.
func Nicknames(t teams.Team) []string {
	return []string{t.Nickname, t.Nickname + " II", t.Nickname + " III"}
}

// getTeam asks for each tutorial city in turn (v1 or the tutorial's
// /Teams/GetTeam), and for a city without a team in the share p.unknown
// of the calls, spread evenly. A known city's answer must be its team
// with one of its Nicknames, byte for byte. An unknown city is NOT_FOUND
// on v1, with the message the product's own lookup gives and no message
// body; the tutorial name answers OK with "not a member".
func getTeam(legacy bool, p params) *workload {
	w := &workload{path: "/teams.v1.TeamsService/GetTeam"}
	if legacy {
		w.path = "/Teams/GetTeam"
	}
	var known []call
	for _, t := range teams.TutorialTeams {
		var req []byte
		var accepted [][]byte
		for _, nick := range Nicknames(t) {
			var resp []byte
			if legacy {
				req = mustMarshal(&legacyteams.TeamRequest{City: t.City})
				resp = mustMarshal(&legacyteams.TeamResponse{City: t.City, Nickname: nick})
			} else {
				req = mustMarshal(&teamsv1.GetTeamRequest{City: t.City})
				resp = mustMarshal(&teamsv1.GetTeamResponse{City: t.City, Nickname: nick})
			}
			accepted = append(accepted, frame(nil, resp))
		}
		known = append(known, call{body: frame(nil, req), msgs: 1, check: func(r *response) error {
			if err := statusOK(r); err != nil {
				return err
			}
			for i, want := range accepted {
				if bytes.Equal(r.body, want) {
					if i > 0 {
						w.writesSeen++
					}
					return nil
				}
			}
			return fmt.Errorf("%s: response body %q is none of the %d accepted answers (first: %q)", t.City, trunc(r.body), len(accepted), trunc(accepted[0]))
		}})
	}
	var unknown []call
	for _, city := range UnknownCities {
		if legacy {
			req := mustMarshal(&legacyteams.TeamRequest{City: city})
			want := frame(nil, mustMarshal(&legacyteams.TeamResponse{City: city, Nickname: teams.NotAMember}))
			unknown = append(unknown, call{body: frame(nil, req), msgs: 1, check: equal(want)})
			continue
		}
		req := mustMarshal(&teamsv1.GetTeamRequest{City: city})
		unknown = append(unknown, call{body: frame(nil, req), msgs: 1, check: wantError(connect.CodeNotFound, notFoundMessage(city))})
	}
	var i, k, u int
	return setNext(w, func() call {
		// Bresenham: call i is unknown when it carries the share past
		// another whole call, so every prefix holds the share, rounded.
		i++
		if int(float64(i)*p.unknown) > int(float64(i-1)*p.unknown) {
			u++
			return unknown[u%len(unknown)]
		}
		k++
		return known[k%len(known)]
	})
}

// notFoundMessage is the message the product's v1 lookup gives for a city
// without a team, taken from the domain package so the check follows it.
func notFoundMessage(city string) string {
	_, err := teams.NewHandler(teams.NewMemStore(nil), "").Lookup(context.Background(), city)
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeNotFound {
		panic(fmt.Sprintf("loadgen: the v1 lookup of %q gave %v, not NOT_FOUND", city, err))
	}
	return ce.Message()
}

func setNext(w *workload, next func() call) *workload {
	w.next = next
	return w
}

// procedures of routeguide.v1 and of grpc-go's route_guide example (the
// tutorial names); their messages are wire-identical.
type rgNames struct{ getFeature, listFeatures, recordRoute, routeChat string }

var (
	rgV1 = rgNames{
		"/routeguide.v1.RouteGuideService/GetFeature", "/routeguide.v1.RouteGuideService/ListFeatures",
		"/routeguide.v1.RouteGuideService/RecordRoute", "/routeguide.v1.RouteGuideService/RouteChat",
	}
	rgLegacy = rgNames{
		"/routeguide.RouteGuide/GetFeature", "/routeguide.RouteGuide/ListFeatures",
		"/routeguide.RouteGuide/RecordRoute", "/routeguide.RouteGuide/RouteChat",
	}
)

// getFeature asks for each feature of the database in turn (64 named, 36
// unnamed) and expects the feature, byte for byte.
func getFeature(n rgNames) *workload {
	db := routeguide.DefaultDB()
	var calls []call
	for _, f := range db.Features() {
		req := mustMarshal(&routeguidev1.GetFeatureRequest{Latitude: f.Location.Latitude, Longitude: f.Location.Longitude})
		at := db.FeatureAt(f.Location)
		resp := mustMarshal(&routeguidev1.GetFeatureResponse{Name: at.Name, Location: &routeguidev1.Point{Latitude: at.Location.Latitude, Longitude: at.Location.Longitude}})
		calls = append(calls, call{body: frame(nil, req), msgs: 1, check: equal(frame(nil, resp))})
	}
	i := 0
	return setNext(&workload{path: n.getFeature}, func() call {
		i++
		return calls[i%len(calls)]
	})
}

// listFeatures streams the whole map and expects every feature in database
// order.
func listFeatures(n rgNames) *workload {
	all := routeguide.Rect{
		Lo: routeguide.Point{Latitude: -routeguide.MaxLatitude, Longitude: -routeguide.MaxLongitude},
		Hi: routeguide.Point{Latitude: routeguide.MaxLatitude, Longitude: routeguide.MaxLongitude},
	}
	req := mustMarshal(&routeguidev1.ListFeaturesRequest{
		Lo: &routeguidev1.Point{Latitude: all.Lo.Latitude, Longitude: all.Lo.Longitude},
		Hi: &routeguidev1.Point{Latitude: all.Hi.Latitude, Longitude: all.Hi.Longitude},
	})
	var want []byte
	count := 0
	for f := range routeguide.DefaultDB().Within(all) {
		want = frame(want, mustMarshal(&routeguidev1.ListFeaturesResponse{
			Name: f.Name, Location: &routeguidev1.Point{Latitude: f.Location.Latitude, Longitude: f.Location.Longitude},
		}))
		count++
	}
	c := call{body: frame(nil, req), msgs: count, check: equal(want)}
	return setNext(&workload{path: n.listFeatures}, func() call { return c })
}

// recordRoute sends p.per points — the database's features in turn — and
// expects the summary the domain package computes (elapsed time aside).
func recordRoute(n rgNames, p params) *workload {
	db := routeguide.DefaultDB()
	var body []byte
	rec := routeguide.NewRecorder(db, timeZero)
	for i := range p.per {
		pt := db.Features()[i%db.Len()].Location
		rec.Add(pt)
		body = frame(body, mustMarshal(&routeguidev1.RecordRouteRequest{Latitude: pt.Latitude, Longitude: pt.Longitude}))
	}
	want := rec.Finish(timeZero)
	c := call{body: body, msgs: p.per, check: func(r *response) error {
		if err := statusOK(r); err != nil {
			return err
		}
		msgs, err := messages(r.body)
		if err != nil {
			return err
		}
		if len(msgs) != 1 {
			return fmt.Errorf("%d response messages, want 1", len(msgs))
		}
		var got routeguidev1.RecordRouteResponse
		if err := proto.Unmarshal(msgs[0], &got); err != nil {
			return err
		}
		if got.GetPointCount() != want.PointCount || got.GetFeatureCount() != want.FeatureCount || got.GetDistance() != want.Distance {
			return fmt.Errorf("summary %v, want %+v", &got, want)
		}
		return nil
	}}
	return setNext(&workload{path: n.recordRoute}, func() call { return c })
}

// routeChat sends p.per notes, each at a location no call of this run, of
// another connection or of another seed has used, so each reply is
// exactly the note itself. RouteChatRequest and RouteChatResponse (and
// the tutorial's RouteNote) are wire-identical.
func routeChat(n rgNames, p params) *workload {
	// Each (seed, connection) owns a longitude; the calls walk its
	// latitudes, 1.8e9 of them.
	lng := int32(-routeguide.MaxLongitude + 1 + p.seed*maxConns + p.conn)
	lat := int32(-routeguide.MaxLatitude)
	return setNext(&workload{path: n.routeChat}, func() call {
		var body []byte
		for range p.per {
			lat++
			if lat == 0 {
				lat++
			}
			body = frame(body, note(lat, lng))
		}
		return call{body: body, msgs: p.per, check: equal(body)}
	})
}

// note encodes RouteChatRequest{location: {lat, lng}, message: "bench"}
// with nonzero coordinates, as proto.Marshal would.
func note(lat, lng int32) []byte {
	var loc []byte
	loc = protowire.AppendTag(loc, 1, protowire.VarintType)
	loc = protowire.AppendVarint(loc, uint64(int64(lat)))
	loc = protowire.AppendTag(loc, 2, protowire.VarintType)
	loc = protowire.AppendVarint(loc, uint64(int64(lng)))
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, loc)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendString(b, "bench")
	return b
}

var timeZero = time.Unix(0, 0)

// statusOK checks that a call succeeded.
func statusOK(r *response) error {
	switch r.grpcStatus {
	case "0":
		return nil
	case "":
		return errors.New("no grpc-status in the trailers")
	}
	return fmt.Errorf("grpc-status %s: %s", r.grpcStatus, r.grpcMessage)
}

// equal checks that a call succeeded with exactly the expected body.
func equal(want []byte) func(*response) error {
	return func(r *response) error {
		if err := statusOK(r); err != nil {
			return err
		}
		if !bytes.Equal(r.body, want) {
			return fmt.Errorf("response body differs: got %d bytes %q, want %d bytes %q", len(r.body), trunc(r.body), len(want), trunc(want))
		}
		return nil
	}
}

// wantError checks that a call failed with exactly this code and message
// and sent no message.
func wantError(code connect.Code, msg string) func(*response) error {
	want := fmt.Sprint(int(code))
	return func(r *response) error {
		if r.grpcStatus != want || r.grpcMessage != msg {
			return fmt.Errorf("grpc-status %s %q, want %s (%v) %q", r.grpcStatus, r.grpcMessage, want, code, msg)
		}
		if len(r.body) > 0 {
			return fmt.Errorf("error %v came with a %d-byte body", code, len(r.body))
		}
		return nil
	}
}

// frame appends msg as one uncompressed gRPC message.
func frame(dst, msg []byte) []byte {
	dst = append(dst, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(dst[len(dst)-4:], uint32(len(msg)))
	return append(dst, msg...)
}

func trunc(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

var errShort = errors.New("short gRPC message")

// messages splits a gRPC-framed body into its messages.
func messages(body []byte) ([][]byte, error) {
	var out [][]byte
	for len(body) > 0 {
		if len(body) < 5 {
			return nil, errShort
		}
		if body[0] != 0 {
			return nil, fmt.Errorf("message flags %#x: compressed or unknown", body[0])
		}
		n := int(binary.BigEndian.Uint32(body[1:5]))
		if len(body) < 5+n {
			return nil, errShort
		}
		out = append(out, body[5:5+n])
		body = body[5+n:]
	}
	return out, nil
}
