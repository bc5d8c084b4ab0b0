module github.com/switchyard/switchyard/conformance

go 1.26.8

replace github.com/switchyard/switchyard => ..

require (
	connectrpc.com/connect v1.21.1
	github.com/switchyard/switchyard v0.0.0-00010101000000-000000000000
	google.golang.org/protobuf v1.36.12
)

require (
	connectrpc.com/cors v0.1.0 // indirect
	connectrpc.com/grpchealth v1.4.0 // indirect
	github.com/rs/cors v1.11.1 // indirect
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/text v0.42.0 // indirect
)
