package summator

import (
	"context"

	"connectrpc.com/connect"

	legacysummator "github.com/switchyard/switchyard/gen/legacy/summator"
	"github.com/switchyard/switchyard/gen/legacy/summator/summatorconnect"
)

// LegacyHandler serves the Pip.Services tutorial's /Summator/sum with the
// same checks as summator.v1.
type LegacyHandler struct{}

var _ summatorconnect.SummatorHandler = LegacyHandler{}

// NewLegacyHandler returns the /Summator/sum handler.
func NewLegacyHandler() LegacyHandler { return LegacyHandler{} }

// Sum implements summatorconnect.SummatorHandler.
func (LegacyHandler) Sum(_ context.Context, req *connect.Request[legacysummator.Number1]) (*connect.Response[legacysummator.Number2], error) {
	sum, err := Add(req.Msg.GetValue1(), req.Msg.GetValue2())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&legacysummator.Number2{Value: sum}), nil
}
