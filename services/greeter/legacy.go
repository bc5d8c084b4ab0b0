package greeter

import (
	"context"

	"connectrpc.com/connect"

	"github.com/switchyard/switchyard/gen/legacy/helloworld"
	"github.com/switchyard/switchyard/gen/legacy/helloworld/helloworldconnect"
)

// LegacyHandler serves the quick start's helloworld.Greeter with the same
// greetings as greeter.v1.
type LegacyHandler struct{}

var _ helloworldconnect.GreeterHandler = LegacyHandler{}

// NewLegacyHandler returns the helloworld.Greeter handler.
func NewLegacyHandler() LegacyHandler { return LegacyHandler{} }

// SayHello implements helloworldconnect.GreeterHandler.
func (LegacyHandler) SayHello(_ context.Context, req *connect.Request[helloworld.HelloRequest]) (*connect.Response[helloworld.HelloReply], error) {
	return connect.NewResponse(&helloworld.HelloReply{Message: Hello(req.Msg.GetName())}), nil
}

// SayHelloAgain implements helloworldconnect.GreeterHandler.
func (LegacyHandler) SayHelloAgain(_ context.Context, req *connect.Request[helloworld.HelloRequest]) (*connect.Response[helloworld.HelloReply], error) {
	return connect.NewResponse(&helloworld.HelloReply{Message: HelloAgain(req.Msg.GetName())}), nil
}
