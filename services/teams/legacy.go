package teams

import (
	"context"
	"errors"
	"log/slog"

	"connectrpc.com/connect"

	legacyteams "github.com/switchyard/switchyard/gen/legacy/teams"
	"github.com/switchyard/switchyard/gen/legacy/teams/teamsconnect"
)

// NotAMember is the tutorial's nickname for a city without a team.
const NotAMember = "not a member"

// LegacyHandler serves the tutorial's /Teams/GetTeam with the v1 lookup.
// Where the tutorial differs from v1 it keeps the tutorial's answer: an
// unknown city is OK with the nickname "not a member", and the city comes
// back as the caller wrote it. Validation (an empty city is
// INVALID_ARGUMENT) is v1's.
type LegacyHandler struct {
	v1 *Handler
}

var _ teamsconnect.TeamsHandler = LegacyHandler{}

// NewLegacyHandler serves store under the tutorial's name. It only reads, so
// it needs no admin token.
func NewLegacyHandler(store Store) LegacyHandler {
	return LegacyHandler{v1: NewHandler(store, "")}
}

// WithLogger logs store failures to logger (Handler.WithLogger).
func (h LegacyHandler) WithLogger(logger *slog.Logger) LegacyHandler {
	h.v1.WithLogger(logger)
	return h
}

// GetTeam implements teamsconnect.TeamsHandler.
func (h LegacyHandler) GetTeam(ctx context.Context, req *connect.Request[legacyteams.TeamRequest]) (*connect.Response[legacyteams.TeamResponse], error) {
	city := req.Msg.GetCity()
	if err := ValidateCity(city); err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, err)
	}
	// The store's own error, not v1's NOT_FOUND: an unknown city is one
	// call in ten of the tutorial's mix, and formatting an error for it
	// only to turn it into "not a member" cost an allocation or three.
	t, err := h.v1.store.Get(ctx, city)
	switch {
	case errors.Is(err, ErrNotFound):
		t.Nickname = NotAMember
	case err != nil:
		return nil, h.v1.storeError(ctx, err, city)
	}
	return connect.NewResponse(&legacyteams.TeamResponse{City: city, Nickname: t.Nickname}), nil
}
