package greeter

import (
	"context"

	"connectrpc.com/connect"

	greeterv1 "github.com/switchyard/switchyard/gen/greeter/v1"
	"github.com/switchyard/switchyard/gen/greeter/v1/greeterv1connect"
)

// Handler serves greeter.v1.GreeterService.
type Handler struct{}

var _ greeterv1connect.GreeterServiceHandler = Handler{}

// NewHandler returns the greeter handler.
func NewHandler() Handler { return Handler{} }

// SayHello implements greeterv1connect.GreeterServiceHandler.
func (Handler) SayHello(_ context.Context, req *connect.Request[greeterv1.SayHelloRequest]) (*connect.Response[greeterv1.SayHelloResponse], error) {
	return connect.NewResponse(&greeterv1.SayHelloResponse{Message: Hello(req.Msg.GetName())}), nil
}

// SayHelloAgain implements greeterv1connect.GreeterServiceHandler.
func (Handler) SayHelloAgain(_ context.Context, req *connect.Request[greeterv1.SayHelloAgainRequest]) (*connect.Response[greeterv1.SayHelloAgainResponse], error) {
	return connect.NewResponse(&greeterv1.SayHelloAgainResponse{Message: HelloAgain(req.Msg.GetName())}), nil
}
