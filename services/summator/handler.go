package summator

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	summatorv1 "github.com/switchyard/switchyard/gen/summator/v1"
	"github.com/switchyard/switchyard/gen/summator/v1/summatorv1connect"
)

// Handler serves summator.v1.SummatorService.
type Handler struct{}

var _ summatorv1connect.SummatorServiceHandler = Handler{}

// NewHandler returns the summator handler.
func NewHandler() Handler { return Handler{} }

// Sum implements summatorv1connect.SummatorServiceHandler.
func (Handler) Sum(_ context.Context, req *connect.Request[summatorv1.SumRequest]) (*connect.Response[summatorv1.SumResponse], error) {
	sum, err := Add(req.Msg.GetValue1(), req.Msg.GetValue2())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&summatorv1.SumResponse{Value: sum}), nil
}

// Add is Sum with its errors as RPC errors: INVALID_ARGUMENT for a
// non-finite summand, OUT_OF_RANGE for an overflowing sum.
func Add(a, b float32) (float32, error) {
	sum, err := Sum(a, b)
	switch {
	case errors.Is(err, ErrNotFinite):
		return 0, connect.NewError(connect.CodeInvalidArgument, err)
	case errors.Is(err, ErrOverflow):
		return 0, connect.NewError(connect.CodeOutOfRange, err)
	}
	return sum, err
}
