module github.com/switchyard/switchyard/examples/sdk

go 1.26.8

toolchain go1.27.3

require (
	connectrpc.com/connect v1.21.1
	github.com/switchyard/switchyard v0.0.0
)

require google.golang.org/protobuf v1.36.12 // indirect

// Inside the repository the SDK comes from the working tree; an outside user
// drops this line and requires a released version instead.
replace github.com/switchyard/switchyard => ../..
