package telemetry

import (
	"context"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard/switchyard/internal/outcome"
)

// Interceptor marks a call's record as handled (it reached its RPC
// handler: the calls that never do were rejected before it), takes the
// peer address as the handler sees it (after any middleware that
// rewrites it, such as a trusted proxy's X-Forwarded-For), and gives the
// handler the call's span, so the spans it starts (the store's queries)
// are its children. Install it outermost.
func (t *Telemetry) Interceptor() connect.Interceptor { return interceptor{t} }

type interceptor struct{ t *Telemetry }

func (i interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if !req.Spec().IsClient {
			ctx = i.t.Handled(ctx, req.Peer().Addr)
		}
		return next(ctx, req)
	}
}

func (i interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return next(i.t.Handled(ctx, conn.Peer().Addr), conn)
	}
}

// Handled is the interceptor's work for one call, for a path that serves
// calls without connect-go's interceptors (internal/grpcunary): it marks
// the call's record handled, takes peer (the address the handler sees) and
// returns ctx carrying the call's span, if it records.
func (t *Telemetry) Handled(ctx context.Context, peer string) context.Context {
	r := outcome.FromContext(ctx)
	if r == nil {
		return ctx
	}
	r.Handled = true
	r.Peer = peer
	if span, ok := r.Span.(trace.Span); ok && span.IsRecording() {
		ctx = trace.ContextWithSpan(ctx, span)
	}
	return ctx
}
