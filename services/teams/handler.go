package teams

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"unicode"
	"unicode/utf8"

	"connectrpc.com/connect"

	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/gen/teams/v1/teamsv1connect"
	"github.com/switchyard/switchyard/internal/errkind"
	"github.com/switchyard/switchyard/internal/logsample"
)

// MaxPageSize bounds ListTeams' page_size.
const MaxPageSize = 1000

// Handler serves teams.v1.TeamsService from a Store.
type Handler struct {
	store      Store
	adminToken []byte
	logger     *slog.Logger
	// The WARN lines of a store that is unavailable, and of writes that
	// may have been made, one a second each: while the database is down
	// (or cut off, where every write may have been made) every call
	// fails alike, and its client is told to retry. So is the ERROR line
	// of writes its storage has no room for. A store's unexpected
	// failure (ERROR) is written every time: its client is told the
	// cause is in the log.
	unavailableLines, maybeMadeLines, fullLines logsample.Line
}

var _ teamsv1connect.TeamsServiceHandler = (*Handler)(nil)

// NewHandler serves store. Writes need "Authorization: Bearer <adminToken>";
// with an empty adminToken they are refused.
func NewHandler(store Store, adminToken string) *Handler {
	return &Handler{store: store, adminToken: []byte(adminToken), logger: slog.Default()}
}

// WithLogger logs store failures (whose details the client is told to
// look for in the server log) to logger, with the call's context, instead
// of slog.Default. It returns h.
func (h *Handler) WithLogger(logger *slog.Logger) *Handler {
	if logger != nil {
		h.logger = logger
	}
	return h
}

// Lookup finds the team of city with the v1 rules: the city is validated and
// an unknown city is a NOT_FOUND error.
func (h *Handler) Lookup(ctx context.Context, city string) (Team, error) {
	if err := ValidateCity(city); err != nil {
		return Team{}, connect.NewError(connect.CodeInvalidArgument, err)
	}
	t, err := h.store.Get(ctx, city)
	if err != nil {
		return Team{}, h.storeError(ctx, err, city)
	}
	return t, nil
}

// GetTeam implements teamsv1connect.TeamsServiceHandler.
func (h *Handler) GetTeam(ctx context.Context, req *connect.Request[teamsv1.GetTeamRequest]) (*connect.Response[teamsv1.GetTeamResponse], error) {
	t, err := h.Lookup(ctx, req.Msg.GetCity())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&teamsv1.GetTeamResponse{City: t.City, Nickname: t.Nickname}), nil
}

// ListTeams implements teamsv1connect.TeamsServiceHandler.
func (h *Handler) ListTeams(ctx context.Context, req *connect.Request[teamsv1.ListTeamsRequest], stream *connect.ServerStream[teamsv1.ListTeamsResponse]) error {
	size := req.Msg.GetPageSize()
	if size < 0 || size > MaxPageSize {
		return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("page_size %d is outside 0..%d (0 lists every team)", size, MaxPageSize))
	}
	after, err := decodePageToken(req.Msg.GetPageToken())
	if err != nil {
		return connect.NewError(connect.CodeInvalidArgument, err)
	}
	prefix := req.Msg.GetCityPrefix()
	if !plainText(prefix) {
		// No city has one; PostgreSQL would refuse a NUL as an error of
		// its own.
		return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("city_prefix %q contains a control character, which no city has", prefix))
	}
	if size == 0 {
		// Every team, read from the store a page at a time: what a call
		// holds stays within one page however many teams there are.
		for {
			teams, more, err := h.store.List(ctx, ListOptions{Limit: listChunk, After: after, Prefix: prefix})
			if err != nil {
				return h.storeError(ctx, err, "")
			}
			if err := sendTeams(stream, teams, false); err != nil || !more {
				return err
			}
			after = CityKey(teams[len(teams)-1].City)
		}
	}
	teams, more, err := h.store.List(ctx, ListOptions{Limit: int(size), After: after, Prefix: prefix})
	if err != nil {
		return h.storeError(ctx, err, "")
	}
	return sendTeams(stream, teams, more)
}

// listChunk is how many teams a ListTeams call of every team reads from
// the store at a time.
const listChunk = MaxPageSize

// sendTeams streams a page of teams; more puts the next page's token on
// the last.
func sendTeams(stream *connect.ServerStream[teamsv1.ListTeamsResponse], teams []Team, more bool) error {
	for i, t := range teams {
		msg := &teamsv1.ListTeamsResponse{City: t.City, Nickname: t.Nickname}
		if more && i == len(teams)-1 {
			msg.NextPageToken = encodePageToken(CityKey(t.City))
		}
		if err := stream.Send(msg); err != nil {
			return err
		}
	}
	return nil
}

// PutTeam implements teamsv1connect.TeamsServiceHandler.
func (h *Handler) PutTeam(ctx context.Context, req *connect.Request[teamsv1.PutTeamRequest]) (*connect.Response[teamsv1.PutTeamResponse], error) {
	if err := h.authorize(req.Header().Values("Authorization")); err != nil {
		return nil, err
	}
	t := Team{City: req.Msg.GetCity(), Nickname: req.Msg.GetNickname()}
	if err := t.Validate(); err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, err)
	}
	stored, created, err := h.store.Put(ctx, t)
	if err != nil {
		return nil, h.writeError(ctx, err, t.City)
	}
	return connect.NewResponse(&teamsv1.PutTeamResponse{City: stored.City, Nickname: stored.Nickname, Created: created}), nil
}

// DeleteTeam implements teamsv1connect.TeamsServiceHandler.
func (h *Handler) DeleteTeam(ctx context.Context, req *connect.Request[teamsv1.DeleteTeamRequest]) (*connect.Response[teamsv1.DeleteTeamResponse], error) {
	if err := h.authorize(req.Header().Values("Authorization")); err != nil {
		return nil, err
	}
	if err := ValidateCity(req.Msg.GetCity()); err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, err)
	}
	t, err := h.store.Delete(ctx, req.Msg.GetCity())
	if err != nil {
		return nil, h.writeError(ctx, err, req.Msg.GetCity())
	}
	return connect.NewResponse(&teamsv1.DeleteTeamResponse{City: t.City, Nickname: t.Nickname}), nil
}

// authorize checks the bearer token of a write, given as the request's
// Authorization field values, in constant time.
func (h *Handler) authorize(values []string) error {
	if len(h.adminToken) == 0 {
		return connect.NewError(connect.CodePermissionDenied, errors.New(
			"writes are disabled on this server: start switchyard with -admin-token-file FILE (or SWITCHYARD_ADMIN_TOKEN) to enable them"))
	}
	// Authorization is a singleton field (RFC 9110 section 11.6.2). With
	// two, which one counts would be this server's guess, and a proxy in
	// front may have acted on the other: none does.
	if len(values) > 1 {
		return connect.NewError(connect.CodeUnauthenticated, fmt.Errorf(
			"the request has %d Authorization fields; writes need exactly one, \"Authorization: Bearer <admin token>\"", len(values)))
	}
	header := ""
	if len(values) == 1 {
		header = values[0]
	}
	// The scheme's name is case-insensitive, and spaces separate it from
	// the token (RFC 9110 section 11.1). White space around the value is
	// not part of it (section 5.5): HTTP/1.1 servers strip it, HTTP/2's
	// do not, and the answer must not depend on the version.
	scheme, token, _ := strings.Cut(strings.Trim(header, " \t"), " ")
	token = strings.TrimLeft(token, " ")
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return connect.NewError(connect.CodeUnauthenticated, errors.New(
			`writes need the header "Authorization: Bearer <admin token>"`))
	}
	if subtle.ConstantTimeCompare([]byte(token), h.adminToken) != 1 {
		return connect.NewError(connect.CodeUnauthenticated, errors.New("the bearer token is not the admin token"))
	}
	return nil
}

// storeError maps a Store error to an RPC error without leaking internals.
// writeError is storeError for a write: one its caller's deadline or
// cancel cut short may have been made all the same (its statement, or
// its group's COMMIT, may have reached the database, which goes on with
// it), and its client is told so, as for a write whose database did not
// answer in time.
func (h *Handler) writeError(ctx context.Context, err error, city string) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return errkind.NotRetried(connect.NewError(connect.CodeDeadlineExceeded, errors.New(
			"the deadline passed while the team directory was writing; the write may have been made: read the team to see (a PutTeam made again makes the same team)")))
	case errors.Is(err, context.Canceled):
		return errkind.NotRetried(connect.NewError(connect.CodeCanceled, errors.New(
			"the call was canceled while the team directory was writing; the write may have been made")))
	}
	return h.storeError(ctx, err, city)
}

func (h *Handler) storeError(ctx context.Context, err error, city string) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return connect.NewError(connect.CodeNotFound, fmt.Errorf("no team plays in %q", strings.TrimSpace(city)))
	case errors.Is(err, ErrInvalid):
		return connect.NewError(connect.CodeInvalidArgument, err)
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, errors.New("the deadline passed while reading the team directory"))
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, errors.New("the call was canceled"))
	case errors.Is(err, ErrStoreLost):
		// Logged at ERROR by the store, once: a line per call would
		// bury it.
		msg := "the team directory is unavailable on this server until it restarts: its database file was deleted or replaced under it (the server log says which); another replica may answer"
		if errors.Is(err, ErrMaybeMade) {
			msg += "; this write may have been made: read the team once the server is back"
			return errkind.NotRetried(connect.NewError(connect.CodeUnavailable, errors.New(msg)))
		}
		return connect.NewError(connect.CodeUnavailable, errors.New(msg))
	case errors.Is(err, ErrMaybeMade):
		// Not for a retry policy to retry: a DeleteTeam made again
		// answers NOT_FOUND for the team it deleted.
		h.maybeMadeLines.Log(ctx, h.logger, slog.LevelWarn, "team store cannot tell whether a write was made", err)
		return errkind.NotRetried(connect.NewError(connect.CodeUnavailable, errors.New(
			"the write may have been made: the team directory's database did not answer, or its answer was lost, while the write was being made; "+
				"read the team to see (a PutTeam made again makes the same team)")))
	case errors.Is(err, ErrStorageFull):
		// Every write fails alike until the operator frees space;
		// reads go on. gRPC's codes name a file system out of space
		// RESOURCE_EXHAUSTED. The line names the directory; the
		// client is not told the server's paths.
		h.fullLines.Log(ctx, h.logger, slog.LevelError, "team store's storage is full", err)
		return connect.NewError(connect.CodeResourceExhausted, errors.New(
			"the team directory's storage is full on the server; the write was not made: writes fail until its operator frees space (reads still work)"))
	case errors.Is(err, ErrUnavailable):
		// Busy, unreachable or shutting down: worth a retry, which
		// UNAVAILABLE tells clients and proxies.
		h.unavailableLines.Log(ctx, h.logger, slog.LevelWarn, "team store unavailable", err)
		return connect.NewError(connect.CodeUnavailable, errors.New("the team directory is unavailable for now (busy, or its database unreachable or refusing writes); retry shortly"))
	}
	h.logger.LogAttrs(ctx, slog.LevelError, "team store failed", slog.String("err", err.Error()))
	return connect.NewError(connect.CodeInternal, errors.New("the team directory failed; the error is in the server log"))
}

// Page tokens are the base64url of the last city key of the page.
func encodePageToken(key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(key))
}

func decodePageToken(token string) (string, error) {
	if token == "" {
		return "", nil
	}
	key, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(key) == 0 || !plainText(string(key)) {
		return "", fmt.Errorf("page_token %q was not returned by ListTeams: pass next_page_token unchanged", token)
	}
	return string(key), nil
}

// plainText reports whether s is valid UTF-8 without control characters,
// as every city (validateName), and so every city key and prefix that can
// match one, is.
func plainText(s string) bool {
	return utf8.ValidString(s) && strings.IndexFunc(s, unicode.IsControl) < 0
}
