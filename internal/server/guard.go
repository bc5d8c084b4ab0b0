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
		if deadline, ok := ctx.Deadline(); !ok || time.Until(deadline) > d.max {
			// Served by internal/h2, the request's own context takes the
			// deadline; otherwise a derived one does.
			if !h2.LimitDuration(ctx, d.max) {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, d.max)
				defer cancel()
			}
		}
		res, err := next(h2.Linked(ctx), req)
		if err != nil && ctx.Err() != nil && connect.CodeOf(err) == connect.CodeUnknown {
			// A handler that returned the context's own error: say which.
			return nil, contextError(ctx)
		}
		return res, err
	}
}

// WrapStreamingClient implements connect.Interceptor.
func (d *DeadlineInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler implements connect.Interceptor.
func (d *DeadlineInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return next(h2.Linked(ctx), conn)
	}
}

func contextError(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return connect.NewError(connect.CodeDeadlineExceeded, errors.New("the call's deadline passed before it finished"))
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
			return nil, s.sanitize(ctx, req.Spec(), err)
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
			return s.sanitize(ctx, conn.Spec(), err)
		}
		return nil
	}
}

func (s *SafeErrorInterceptor) sanitize(ctx context.Context, spec connect.Spec, err error) error {
	if _, ok := errors.AsType[*connect.Error](err); ok {
		return err
	}
	if ctx.Err() != nil {
		return contextError(ctx)
	}
	s.logger.LogAttrs(ctx, slog.LevelError, "handler returned an unclassified error",
		slog.String("procedure", spec.Procedure), slog.String("error", err.Error()))
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
