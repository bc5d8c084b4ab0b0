package routeguide

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"math"
	"time"

	"connectrpc.com/connect"

	routeguidev1 "github.com/switchyard/switchyard/gen/routeguide/v1"
	"github.com/switchyard/switchyard/gen/routeguide/v1/routeguidev1connect"
	"github.com/switchyard/switchyard/internal/errkind"
	"github.com/switchyard/switchyard/internal/logsample"
)

// Defaults of the handler's limits.
const (
	DefaultMaxRoutePoints   = 100_000
	DefaultNotesPerLocation = 100
	DefaultNoteLocations    = 10_000
	DefaultNoteMaxBytes     = 4096
	DefaultNotesMaxBytes    = 64 << 20
)

// Options configure a Handler; zero values take the defaults.
type Options struct {
	// MaxRoutePoints bounds the points of one RecordRoute call.
	MaxRoutePoints int
	// NotesPerLocation and NoteLocations bound the RouteChat notes kept
	// in memory (a SharedNotes store has its own bounds).
	NotesPerLocation int
	NoteLocations    int
	// NoteMaxBytes bounds the message of one RouteChat note, whichever
	// store keeps it; a longer one is refused with RESOURCE_EXHAUSTED.
	NoteMaxBytes int
	// NotesMaxBytes bounds the bytes of the notes kept in memory (their
	// messages plus NoteOverheadBytes each; not a SharedNotes store's).
	NotesMaxBytes int
	// SharedNotes keeps RouteChat notes for every replica; nil keeps them
	// in this process's memory.
	SharedNotes NoteStore
	// Now is the clock of RecordRoute's elapsed time (time.Now if nil).
	Now func() time.Time
}

// Handler serves routeguide.v1.RouteGuideService.
type Handler struct {
	db        *DB
	notes     *Notes
	shared    NoteStore // nil: notes
	maxPoints int
	// noteMaxBytes bounds a note's message; noteLimit names its flags.
	noteMaxBytes int
	noteLimit    string
	now          func() time.Time
	logger       *slog.Logger
	// The lines of a note store that fails, one a second each: while its
	// database is down or cut off every note fails alike.
	unavailableLines, maybeKeptLines logsample.Line
}

var _ routeguidev1connect.RouteGuideServiceHandler = (*Handler)(nil)

// NewHandler serves db with the given options.
func NewHandler(db *DB, opts Options) *Handler {
	notesMaxBytes := orDefault(opts.NotesMaxBytes, DefaultNotesMaxBytes)
	h := &Handler{
		db:           db,
		notes:        NewNotes(orDefault(opts.NotesPerLocation, DefaultNotesPerLocation), orDefault(opts.NoteLocations, DefaultNoteLocations), notesMaxBytes),
		shared:       opts.SharedNotes,
		maxPoints:    orDefault(opts.MaxRoutePoints, DefaultMaxRoutePoints),
		noteMaxBytes: orDefault(opts.NoteMaxBytes, DefaultNoteMaxBytes),
		noteLimit:    "-chat-note-max-bytes",
		now:          opts.Now,
		logger:       slog.Default(),
	}
	// One note must fit the in-memory budget.
	if fit := notesMaxBytes - NoteOverheadBytes; h.shared == nil && h.noteMaxBytes > fit {
		h.noteMaxBytes = max(fit, 0)
		h.noteLimit = fmt.Sprintf("-chat-notes-max-bytes less %d", NoteOverheadBytes)
	}
	if h.now == nil {
		h.now = time.Now
	}
	return h
}

// WithLogger sets the logger of the handler's lines (slog.Default until
// then).
func (h *Handler) WithLogger(logger *slog.Logger) *Handler {
	if logger != nil {
		h.logger = logger
	}
	return h
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// DB is the handler's feature database.
func (h *Handler) DB() *DB { return h.db }

// Notes is the handler's in-memory RouteChat note store (unused when
// Options.SharedNotes is set).
func (h *Handler) Notes() *Notes { return h.notes }

// Feature validates p and returns the feature there.
func (h *Handler) Feature(p Point) (Feature, error) {
	if err := p.Validate(); err != nil {
		return Feature{}, connect.NewError(connect.CodeInvalidArgument, err)
	}
	return h.db.FeatureAt(p), nil
}

// Within validates the corners of r and returns the features inside it.
func (h *Handler) Within(r Rect) (iter.Seq[Feature], error) {
	if err := r.Lo.Validate(); err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("lo: %w", err))
	}
	if err := r.Hi.Validate(); err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("hi: %w", err))
	}
	return h.db.Within(r), nil
}

// Record summarises the route whose points next yields until it returns
// false; streamErr then tells whether the stream ended cleanly. Points are
// validated and their number is bounded.
func (h *Handler) Record(next func() (Point, bool), streamErr func() error) (Summary, error) {
	rec := NewRecorder(h.db, h.now())
	for n := 0; ; n++ {
		p, ok := next()
		if !ok {
			break
		}
		if n >= h.maxPoints {
			return Summary{}, connect.NewError(connect.CodeResourceExhausted,
				fmt.Errorf("a route may have at most %d points: split it into several calls", h.maxPoints))
		}
		if err := p.Validate(); err != nil {
			return Summary{}, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("point %d: %w", n+1, err))
		}
		rec.Add(p)
	}
	if err := streamErr(); err != nil {
		return Summary{}, err
	}
	return rec.Finish(h.now()), nil
}

// Chat keeps a note and returns every note kept at its location. A note
// whose message is over the limit is refused before any store sees it, the
// shared one included.
func (h *Handler) Chat(ctx context.Context, n Note) ([]Note, error) {
	if err := n.Location.Validate(); err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, err)
	}
	if len(n.Message) > h.noteMaxBytes {
		return nil, connect.NewError(connect.CodeResourceExhausted,
			fmt.Errorf("note message is %d bytes, the limit is %d (%s): shorten it", len(n.Message), h.noteMaxBytes, h.noteLimit))
	}
	if h.shared == nil {
		return h.notes.Add(n), nil
	}
	kept, err := h.shared.Add(ctx, n)
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, callEnded(ctx, "while its note was being kept")
	case errors.Is(err, ErrNoteMaybeKept):
		h.maybeKeptLines.Log(ctx, h.logger, slog.LevelWarn, "route notes cannot tell whether a note was kept", err)
		return nil, errkind.NotRetried(connect.NewError(connect.CodeUnavailable, errors.New(
			"the shared RouteChat notes' database did not answer, or its answer was lost, while the note was being kept: it may have been kept; "+
				"a new RouteChat returns it with the location's notes if it was")))
	case errors.Is(err, ErrNotesUnavailable):
		// The cause names the database (its host, user): the log's, not
		// the client's.
		h.unavailableLines.Log(ctx, h.logger, slog.LevelWarn, "route notes unavailable", err)
		return nil, connect.NewError(connect.CodeUnavailable, errors.New(
			"the shared RouteChat notes are unavailable for now (their database unreachable, busy or not answering); retry shortly"))
	}
	return kept, err
}

// callEnded is the error of a call whose context ended during what:
// deadline_exceeded once the client's deadline passed, canceled when the
// call was canceled.
func callEnded(ctx context.Context, during string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return connect.NewError(connect.CodeDeadlineExceeded, errors.New("the call's deadline passed "+during))
	}
	return connect.NewError(connect.CodeCanceled, errors.New("the call was canceled "+during))
}

// GetFeature implements routeguidev1connect.RouteGuideServiceHandler.
func (h *Handler) GetFeature(_ context.Context, req *connect.Request[routeguidev1.GetFeatureRequest]) (*connect.Response[routeguidev1.GetFeatureResponse], error) {
	f, err := h.Feature(Point{Latitude: req.Msg.GetLatitude(), Longitude: req.Msg.GetLongitude()})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&routeguidev1.GetFeatureResponse{Name: f.Name, Location: toProto(f.Location)}), nil
}

// ListFeatures implements routeguidev1connect.RouteGuideServiceHandler.
func (h *Handler) ListFeatures(ctx context.Context, req *connect.Request[routeguidev1.ListFeaturesRequest], stream *connect.ServerStream[routeguidev1.ListFeaturesResponse]) error {
	var out routeguidev1.ListFeaturesResponse
	var at routeguidev1.Point
	return listFeatures(ctx, h, Rect{Lo: fromProto(req.Msg.GetLo()), Hi: fromProto(req.Msg.GetHi())}, stream,
		func(f Feature) *routeguidev1.ListFeaturesResponse {
			at = routeguidev1.Point{Latitude: f.Location.Latitude, Longitude: f.Location.Longitude}
			out = routeguidev1.ListFeaturesResponse{Name: f.Name, Location: &at}
			return &out
		})
}

// RecordRoute implements routeguidev1connect.RouteGuideServiceHandler.
func (h *Handler) RecordRoute(ctx context.Context, stream *connect.ClientStream[routeguidev1.RecordRouteRequest]) (*connect.Response[routeguidev1.RecordRouteResponse], error) {
	s, err := recordRoute(ctx, h, stream, func(p *routeguidev1.RecordRouteRequest) Point {
		return Point{Latitude: p.GetLatitude(), Longitude: p.GetLongitude()}
	})
	if err != nil {
		return nil, err
	}
	if s.Metres > math.MaxInt32 {
		// The example's summary wraps to a negative distance here (the
		// legacy name keeps that); a wrong number is worse than none.
		return nil, connect.NewError(connect.CodeOutOfRange, fmt.Errorf(
			"the route is %d m long, more than the %d m a summary's distance holds: split it into several calls", s.Metres, math.MaxInt32))
	}
	return connect.NewResponse(&routeguidev1.RecordRouteResponse{
		PointCount: s.PointCount, FeatureCount: s.FeatureCount, Distance: s.Distance, ElapsedTime: s.ElapsedTime,
	}), nil
}

// RouteChat implements routeguidev1connect.RouteGuideServiceHandler.
func (h *Handler) RouteChat(ctx context.Context, stream *connect.BidiStream[routeguidev1.RouteChatRequest, routeguidev1.RouteChatResponse]) error {
	var out routeguidev1.RouteChatResponse
	var at routeguidev1.Point
	return routeChat(ctx, h, stream,
		func(in *routeguidev1.RouteChatRequest) Note {
			return Note{Location: fromProto(in.GetLocation()), Message: in.GetMessage()}
		},
		func(n Note) *routeguidev1.RouteChatResponse {
			at = routeguidev1.Point{Latitude: n.Location.Latitude, Longitude: n.Location.Longitude}
			out = routeguidev1.RouteChatResponse{Location: &at, Message: n.Message}
			return &out
		})
}

// The streaming loops below serve both the v1 and the tutorial's names;
// only the message types differ, so each name passes its conversions.
// Each name's encoder fills one response message (and its Point) and
// returns it for every message of a call, not a new one per message:
// Send marshals the message before it returns, and no interceptor of this
// server keeps it (ListFeatures sends up to 100 messages a call, RouteChat
// a reply per note).

// listFeatures streams the features inside r, stopping when the call ends.
func listFeatures[Res any](ctx context.Context, h *Handler, r Rect, stream *connect.ServerStream[Res], encode func(Feature) *Res) error {
	features, err := h.Within(r)
	if err != nil {
		return err
	}
	for f := range features {
		if ctx.Err() != nil {
			return callEnded(ctx, "before every feature was sent")
		}
		if err := stream.Send(encode(f)); err != nil {
			return err
		}
	}
	return nil
}

// recordRoute summarises the points the client streams. Every point is
// read into one message (each unmarshal resets it), not into a new one
// per point as ClientStream.Receive would: a route is up to
// -route-max-points messages. A route whose call's deadline passes (or
// that is canceled) ends with that at its next point, or at its end.
func recordRoute[Req any](ctx context.Context, h *Handler, stream *connect.ClientStream[Req], point func(*Req) Point) (Summary, error) {
	var (
		msg, zero Req
		err       error
		conn      = stream.Conn()
		done      = ctx.Done()
	)
	return h.Record(func() (Point, bool) {
		// Zero it first: an empty message is no bytes, and connect does
		// not unmarshal (so does not reset) for those. A generated
		// message's zero value is its reset state; proto.Reset would also
		// store its type's MessageInfo, atomically, which its next use
		// does when it needs it (2.4% of a RecordRoute call's CPU).
		msg = zero
		if err = conn.Receive(&msg); err != nil {
			return Point{}, false
		}
		select {
		case <-done:
			err = callEnded(ctx, "while the route was being read")
			return Point{}, false
		default:
		}
		return point(&msg), true
	}, func() error {
		if ctx.Err() != nil {
			return callEnded(ctx, "while the route was being read")
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	})
}

// routeChat answers every note with all notes kept at its location. Every
// note is read into one message, as recordRoute reads points.
func routeChat[Req, Res any](ctx context.Context, h *Handler, stream *connect.BidiStream[Req, Res], decode func(*Req) Note, encode func(Note) *Res) error {
	var in, zero Req
	conn := stream.Conn()
	done := ctx.Done()
	for {
		in = zero // as in recordRoute: an empty message is not unmarshalled
		err := conn.Receive(&in)
		select {
		case <-done: // as in recordRoute: the deadline passed, or the call was canceled
			return callEnded(ctx, "while notes were being read")
		default:
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		kept, err := h.Chat(ctx, decode(&in))
		if err != nil {
			return err
		}
		for _, n := range kept {
			if err := stream.Send(encode(n)); err != nil {
				return err
			}
		}
	}
}

func toProto(p Point) *routeguidev1.Point {
	return &routeguidev1.Point{Latitude: p.Latitude, Longitude: p.Longitude}
}

func fromProto(p *routeguidev1.Point) Point {
	return Point{Latitude: p.GetLatitude(), Longitude: p.GetLongitude()}
}
