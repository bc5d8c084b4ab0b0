// Package greeter greets people by name, as the gRPC quick start's
// helloworld.Greeter does, and serves it as greeter.v1.GreeterService.
package greeter

// Hello is the SayHello greeting.
func Hello(name string) string { return "Hello, " + name + "!" }

// HelloAgain is the SayHelloAgain greeting.
func HelloAgain(name string) string { return "Hello again, " + name + "!" }
