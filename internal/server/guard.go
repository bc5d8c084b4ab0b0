package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"connectrpc.com/connect"

	"github.com/switchyard/switchyard/internal/h2"
	"github.com/switchyard/switchyard/internal/outcome"
	"github.com/switchyard/switchyard/internal/telemetry"
)

// DefaultUnaryTimeout is the deadline of a unary call whose client set none
// (or a longer one).
const DefaultUnaryTimeout = 30 * time.Second

// internalMessage is what a client learns about a failure it cannot act on;
// the cause is in the server log.
const internalMessage = "internal error; the details are in the server log"

// DeadlineInterceptor gives every unary call a deadline: the client's
// (grpc-timeout, connect-timeout-ms, which connect-go has already put on the
// context) when it is shorter than max, else max. Streams are not capped:
// they are as long as their callers want, and end when the caller goes.
// Handlers served by internal/h2 get their context h2.Linked, so that the
// contexts they derive (database/sql, one per query) cost no goroutine.
type DeadlineInterceptor struct {
	max time.Duration
}

var _ connect.Interceptor = (*DeadlineInterceptor)(nil)

// NewDeadlineInterceptor caps unary calls at max.
func NewDeadlineInterceptor(max time.Duration) *DeadlineInterceptor {
	return &DeadlineInterceptor{max: max}
}

// WrapUnary implements connect.Interceptor.
func (d *DeadlineInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		ctx, cancel := d.limit(ctx)
		if cancel != nil {
			defer cancel()
		}
		res, err := next(h2.Linked(ctx), req)
		return res, d.explain(ctx, err)
	}
}

// limit gives ctx the unary deadline; the cancel it returns may be nil.
func (d *DeadlineInterceptor) limit(ctx context.Context) (context.Context, context.CancelFunc) {
	if deadline, ok := ctx.Deadline(); !ok || time.Until(deadline) > d.max {
		// Served by internal/h2, the request's own context takes the
		// deadline; otherwise a derived one does.
		if !h2.LimitDuration(ctx, d.max) {
			return context.WithTimeout(ctx, d.max)
		}
	}
	return ctx, nil
}

// explain says which of the context's ends a handler met when it returned
// the context's own error; a call the server ended (Stack.EndCalls, or its
// connection's age grace) is UNAVAILABLE, not canceled: its client may
// retry it on another connection.
func (d *DeadlineInterceptor) explain(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	// Before ctx.Err: the contexts derived from an internal/h2 stream's
	// learn of its end a moment after a Read it let go returns.
	code := connect.CodeOf(err)
	if (code == connect.CodeCanceled || code == connect.CodeUnknown) && endedByServer(ctx) {
		return connect.NewError(connect.CodeUnavailable, outcome.ErrCallEnded)
	}
	if code == connect.CodeUnknown && ctx.Err() != nil {
		return contextError(ctx)
	}
	// A call cancelled once its deadline passed met its deadline: the
	// read deadline of a body (limitBody) over HTTP/1.1 has net/http
	// cancel the request's context, as if its client had gone, and that
	// may come a moment before the context's own deadline passes.
	if deadline, ok := ctx.Deadline(); ok && code == connect.CodeCanceled && !time.Now().Before(deadline) {
		return deadlinePassed()
	}
	return err
}

func deadlinePassed() error {
	return connect.NewError(connect.CodeDeadlineExceeded, errors.New("the call's deadline passed before it finished"))
}

// endedByServer reports whether the server ended the call of ctx: served
// by internal/h2 (h2.Ended), or by net/http, whose requests' contexts
// Stack.EndCalls cancels with outcome.ErrCallEnded.
func endedByServer(ctx context.Context) bool {
	return h2.Ended(ctx) || errors.Is(context.Cause(ctx), outcome.ErrCallEnded)
}

// WrapStreamingClient implements connect.Interceptor.
func (d *DeadlineInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler implements connect.Interceptor. A stream served by
// internal/h2 gets its client's deadline on the stream itself, so that a
// handler waiting in the transport past it (for a message the client does
// not send, or for window to send one the client does not read) is let go.
func (d *DeadlineInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		if deadline, ok := ctx.Deadline(); ok {
			h2.LimitStreamDuration(ctx, time.Until(deadline))
		}
		return d.explain(ctx, next(h2.Linked(ctx), conn))
	}
}

func contextError(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return deadlinePassed()
	}
	return connect.NewError(connect.CodeCanceled, errors.New("the call was canceled"))
}

// SafeErrorInterceptor keeps internals out of error messages. Handlers
// return *connect.Error with messages written for the caller; anything else
// (a bare error from a library: SQL, file paths, addresses) would reach the
// client verbatim as UNKNOWN, so it is logged here and replaced by a generic
// message with the same code.
type SafeErrorInterceptor struct {
	logger *slog.Logger
}

var _ connect.Interceptor = (*SafeErrorInterceptor)(nil)

// NewSafeErrorInterceptor logs replaced errors to logger.
func NewSafeErrorInterceptor(logger *slog.Logger) *SafeErrorInterceptor {
	return &SafeErrorInterceptor{logger: logger}
}

// WrapUnary implements connect.Interceptor.
func (s *SafeErrorInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		res, err := next(ctx, req)
		if err != nil && !req.Spec().IsClient {
			return nil, s.sanitize(ctx, req.Spec().Procedure, err)
		}
		return res, err
	}
}

// WrapStreamingClient implements connect.Interceptor.
func (s *SafeErrorInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler implements connect.Interceptor.
func (s *SafeErrorInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		if err := next(ctx, conn); err != nil {
			return s.sanitize(ctx, conn.Spec().Procedure, err)
		}
		return nil
	}
}

func (s *SafeErrorInterceptor) sanitize(ctx context.Context, procedure string, err error) error {
	if _, ok := errors.AsType[*connect.Error](err); ok {
		return err
	}
	if ctx.Err() != nil {
		return contextError(ctx)
	}
	s.logger.LogAttrs(ctx, slog.LevelError, "handler returned an unclassified error",
		slog.String("procedure", procedure), slog.String("error", err.Error()))
	return connect.NewError(connect.CodeUnknown, errors.New(internalMessage))
}

// recoverHandler turns a handler's panic into INTERNAL for that call alone,
// with the panic and its stack in the log and neither in the reply.
func recoverHandler(logger *slog.Logger) func(context.Context, connect.Spec, http.Header, any) error {
	return func(ctx context.Context, spec connect.Spec, _ http.Header, p any) error {
		logger.LogAttrs(ctx, slog.LevelError, "handler panicked",
			slog.String("procedure", spec.Procedure), slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
		return connect.NewError(connect.CodeInternal, errors.New(internalMessage))
	}
}

// unaryGuard does for a call served by internal/grpcunary what the
// handler options' interceptors do on connect-go's path, in their order
// and with their code: telemetry's (outermost), DeadlineInterceptor,
// SafeErrorInterceptor, then connect.WithRecover's recoverHandler.
type unaryGuard struct {
	tel      *telemetry.Telemetry
	deadline *DeadlineInterceptor
	safe     *SafeErrorInterceptor
	recover  func(context.Context, connect.Spec, http.Header, any) error
}

// wrap is the guard as grpcunary.Options.Wrap.
func (g *unaryGuard) wrap(ctx context.Context, procedure, peer string, header http.Header, handler func(context.Context) error) error {
	ctx = g.tel.Handled(ctx, peer)
	ctx, cancel := g.deadline.limit(ctx)
	if cancel != nil {
		defer cancel()
	}
	inner := h2.Linked(ctx)
	err := g.recovered(inner, procedure, header, handler)
	if err != nil {
		err = g.safe.sanitize(inner, procedure, err)
	}
	return g.deadline.explain(ctx, err)
}

// recovered runs handler, turning its panic into recover's error as
// connect.WithRecover does (http.ErrAbortHandler goes on up).
func (g *unaryGuard) recovered(ctx context.Context, procedure string, header http.Header, handler func(context.Context) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler { //nolint:errorlint // net/http compares it with ==
				panic(p)
			}
			err = g.recover(ctx, connect.Spec{Procedure: procedure, StreamType: connect.StreamTypeUnary}, header, p)
		}
	}()
	return handler(ctx)
}
