// Package waits lets the code serving a request tell the server that it
// is about to wait on the server's side for something other than the CPU:
// a commit's fsync, a query across the network.
//
// internal/h2 runs a bounded number of handlers that it has no reason to
// think are waiting, per CPU; a handler that waits for its client is not
// counted, and one that waits on the server's side is counted until the
// pool's rescue notices that nothing moves. Begin lets such a handler
// leave the count before the wait, so that the calls behind it do not
// wait for the rescue. Servers that do not count handlers (net/http's
// HTTP/2 server, HTTP/1.1) put nothing in the context, and Begin does
// nothing.
package waits

import "context"

// Waiter is what a server puts in a request's context, under ContextKey.
type Waiter interface {
	// Waiting is called before its caller waits; it may be called more
	// than once for a request, and from any goroutine.
	Waiting()
}

// WaiterFunc is a function as a Waiter.
type WaiterFunc func()

// Waiting calls f.
func (f WaiterFunc) Waiting() { f() }

type contextKey struct{}

// ContextKey is the key under which a server puts a request's Waiter.
var ContextKey any = contextKey{}

// Begin tells the server of ctx's request, if it listens, that the caller
// is about to wait for something other than the CPU.
func Begin(ctx context.Context) {
	if w, ok := ctx.Value(ContextKey).(Waiter); ok {
		w.Waiting()
	}
}
