// Package e2e tests Switchyard from the outside: it builds the switchyard
// binary, starts it as a real process on a free port and calls it with
// grpcurl, buf curl, curl, a grpc-go client, the demo clients in
// cmd/*-client, the examples/sdk module and the README's own commands.
//
// The tests carry the build tag e2e, so `go test ./...` stays fast; run them
// with `make e2e` (part of `make test`).
package e2e
