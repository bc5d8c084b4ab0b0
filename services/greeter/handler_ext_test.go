package greeter_test

import (
	"testing"

	"connectrpc.com/connect"

	greeterv1 "github.com/switchyard/switchyard/gen/greeter/v1"
	"github.com/switchyard/switchyard/gen/greeter/v1/greeterv1connect"
	"github.com/switchyard/switchyard/gen/legacy/helloworld"
	"github.com/switchyard/switchyard/gen/legacy/helloworld/helloworldconnect"
	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/testserver"
)

// GreeterService and the quick start's helloworld.Greeter through the
// whole server, in every protocol.

func TestSayHello(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	testserver.ForEachProtocol(t, func(t *testing.T, p testserver.Protocol) {
		c := greeterv1connect.NewGreeterServiceClient(srv.HTTPClient, srv.URL, p.Opts...)
		hello, err := c.SayHello(testserver.CallContext(t), connect.NewRequest(&greeterv1.SayHelloRequest{Name: "you"}))
		if err != nil || hello.Msg.GetMessage() != "Hello, you!" {
			t.Errorf("SayHello = %v, %v", hello, err)
		}
		again, err := c.SayHelloAgain(testserver.CallContext(t), connect.NewRequest(&greeterv1.SayHelloAgainRequest{Name: "you"}))
		if err != nil || again.Msg.GetMessage() != "Hello again, you!" {
			t.Errorf("SayHelloAgain = %v, %v", again, err)
		}
	})
}

func TestLegacySayHello(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	testserver.ForEachProtocol(t, func(t *testing.T, p testserver.Protocol) {
		c := helloworldconnect.NewGreeterClient(srv.HTTPClient, srv.URL, p.Opts...)
		hello, err := c.SayHello(testserver.CallContext(t), connect.NewRequest(&helloworld.HelloRequest{Name: "you"}))
		if err != nil || hello.Msg.GetMessage() != "Hello, you!" {
			t.Errorf("SayHello = %v, %v", hello, err)
		}
		again, err := c.SayHelloAgain(testserver.CallContext(t), connect.NewRequest(&helloworld.HelloRequest{Name: "you"}))
		if err != nil || again.Msg.GetMessage() != "Hello again, you!" {
			t.Errorf("SayHelloAgain = %v, %v", again, err)
		}
	})
}
