package routeguide

import (
	"context"

	"connectrpc.com/connect"

	legacyroute "github.com/switchyard/switchyard/gen/legacy/routeguide"
	"github.com/switchyard/switchyard/gen/legacy/routeguide/routeguideconnect"
)

// LegacyHandler serves the grpc-go example's routeguide.RouteGuide with a v1
// Handler: same database, same limits and the same RouteChat notes, so a
// note left through one name is seen through the other.
type LegacyHandler struct {
	v1 *Handler
}

var _ routeguideconnect.RouteGuideHandler = LegacyHandler{}

// NewLegacyHandler serves v1's logic and state under the example's name.
func NewLegacyHandler(v1 *Handler) LegacyHandler { return LegacyHandler{v1: v1} }

// GetFeature implements routeguideconnect.RouteGuideHandler.
func (h LegacyHandler) GetFeature(_ context.Context, req *connect.Request[legacyroute.Point]) (*connect.Response[legacyroute.Feature], error) {
	f, err := h.v1.Feature(fromLegacy(req.Msg))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&legacyroute.Feature{Name: f.Name, Location: toLegacy(f.Location)}), nil
}

// ListFeatures implements routeguideconnect.RouteGuideHandler.
func (h LegacyHandler) ListFeatures(ctx context.Context, req *connect.Request[legacyroute.Rectangle], stream *connect.ServerStream[legacyroute.Feature]) error {
	var out legacyroute.Feature
	var at legacyroute.Point
	return listFeatures(ctx, h.v1, Rect{Lo: fromLegacy(req.Msg.GetLo()), Hi: fromLegacy(req.Msg.GetHi())}, stream,
		func(f Feature) *legacyroute.Feature {
			at = legacyroute.Point{Latitude: f.Location.Latitude, Longitude: f.Location.Longitude}
			out = legacyroute.Feature{Name: f.Name, Location: &at}
			return &out
		})
}

// RecordRoute implements routeguideconnect.RouteGuideHandler.
func (h LegacyHandler) RecordRoute(ctx context.Context, stream *connect.ClientStream[legacyroute.Point]) (*connect.Response[legacyroute.RouteSummary], error) {
	s, err := recordRoute(ctx, h.v1, stream, fromLegacy)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&legacyroute.RouteSummary{
		PointCount: s.PointCount, FeatureCount: s.FeatureCount, Distance: s.Distance, ElapsedTime: s.ElapsedTime,
	}), nil
}

// RouteChat implements routeguideconnect.RouteGuideHandler.
func (h LegacyHandler) RouteChat(ctx context.Context, stream *connect.BidiStream[legacyroute.RouteNote, legacyroute.RouteNote]) error {
	var out legacyroute.RouteNote
	var at legacyroute.Point
	return routeChat(ctx, h.v1, stream,
		func(in *legacyroute.RouteNote) Note {
			return Note{Location: fromLegacy(in.GetLocation()), Message: in.GetMessage()}
		},
		func(n Note) *legacyroute.RouteNote {
			at = legacyroute.Point{Latitude: n.Location.Latitude, Longitude: n.Location.Longitude}
			out = legacyroute.RouteNote{Location: &at, Message: n.Message}
			return &out
		})
}

func toLegacy(p Point) *legacyroute.Point {
	return &legacyroute.Point{Latitude: p.Latitude, Longitude: p.Longitude}
}

func fromLegacy(p *legacyroute.Point) Point {
	return Point{Latitude: p.GetLatitude(), Longitude: p.GetLongitude()}
}
