module github.com/switchyard/switchyard/conformance

go 1.26.8

replace github.com/switchyard/switchyard => ..

require (
	connectrpc.com/connect v1.21.1
	google.golang.org/protobuf v1.36.12
)
