package main

import (
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	legacyteams "github.com/switchyard/switchyard/gen/legacy/teams"
	routeguidev1 "github.com/switchyard/switchyard/gen/routeguide/v1"
	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/services/routeguide"
	"github.com/switchyard/switchyard/services/teams"
)

// workloads by name; each takes the messages per streaming call and the
// run's seed. Adding a workload is one entry here (and one line in
// benchrun's table).
var workloads = map[string]func(per, seed int) workload{
	"getteam":       func(int, int) workload { return getTeam(false) },
	"legacygetteam": func(int, int) workload { return getTeam(true) },
	"listfeatures":  func(int, int) workload { return listFeatures() },
	"recordroute":   recordRoute,
	"routechat":     routeChat,
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

// getTeam asks for each tutorial city in turn (v1 or the tutorial's
// /Teams/GetTeam) and expects its team, byte for byte.
func getTeam(legacy bool) workload {
	var calls []call
	for _, t := range teams.TutorialTeams {
		var req, resp []byte
		if legacy {
			req = mustMarshal(&legacyteams.TeamRequest{City: t.City})
			resp = mustMarshal(&legacyteams.TeamResponse{City: t.City, Nickname: t.Nickname})
		} else {
			req = mustMarshal(&teamsv1.GetTeamRequest{City: t.City})
			resp = mustMarshal(&teamsv1.GetTeamResponse{City: t.City, Nickname: t.Nickname})
		}
		calls = append(calls, call{body: frame(nil, req), msgs: 1, check: equal(frame(nil, resp))})
	}
	path := "/teams.v1.TeamsService/GetTeam"
	if legacy {
		path = "/Teams/GetTeam"
	}
	i := 0
	return workload{path: path, next: func() call {
		i++
		return calls[i%len(calls)]
	}}
}

// listFeatures streams the whole map and expects every feature in database
// order.
func listFeatures() workload {
	all := routeguide.Rect{
		Lo: routeguide.Point{Latitude: -routeguide.MaxLatitude, Longitude: -routeguide.MaxLongitude},
		Hi: routeguide.Point{Latitude: routeguide.MaxLatitude, Longitude: routeguide.MaxLongitude},
	}
	req := mustMarshal(&routeguidev1.ListFeaturesRequest{
		Lo: &routeguidev1.Point{Latitude: all.Lo.Latitude, Longitude: all.Lo.Longitude},
		Hi: &routeguidev1.Point{Latitude: all.Hi.Latitude, Longitude: all.Hi.Longitude},
	})
	var want []byte
	n := 0
	for f := range routeguide.DefaultDB().Within(all) {
		want = frame(want, mustMarshal(&routeguidev1.ListFeaturesResponse{
			Name: f.Name, Location: &routeguidev1.Point{Latitude: f.Location.Latitude, Longitude: f.Location.Longitude},
		}))
		n++
	}
	c := call{body: frame(nil, req), msgs: n, check: equal(want)}
	return workload{path: "/routeguide.v1.RouteGuideService/ListFeatures", next: func() call { return c }}
}

// recordRoute sends per points — the database's features in turn — and
// expects the summary the domain package computes (elapsed time aside).
func recordRoute(per, _ int) workload {
	db := routeguide.DefaultDB()
	var body []byte
	rec := routeguide.NewRecorder(db, timeZero)
	for i := range per {
		p := db.Features()[i%db.Len()].Location
		rec.Add(p)
		body = frame(body, mustMarshal(&routeguidev1.RecordRouteRequest{Latitude: p.Latitude, Longitude: p.Longitude}))
	}
	want := rec.Finish(timeZero)
	c := call{body: body, msgs: per, check: func(resp []byte) error {
		msgs, err := messages(resp)
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
	return workload{path: "/routeguide.v1.RouteGuideService/RecordRoute", next: func() call { return c }}
}

// routeChat sends per notes, each at a location no call of this run or of
// another seed has used, so each reply is exactly the note itself.
// RouteChatRequest and RouteChatResponse are wire-identical.
func routeChat(per, seed int) workload {
	lng := int32(-routeguide.MaxLongitude + 1 + seed)
	lat := int32(-routeguide.MaxLatitude)
	return workload{path: "/routeguide.v1.RouteGuideService/RouteChat", next: func() call {
		var body []byte
		for range per {
			lat++
			if lat == 0 {
				lat++
			}
			body = frame(body, note(lat, lng))
		}
		return call{body: body, msgs: per, check: equal(body)}
	}}
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
