// Package health serves gRPC's health-checking service, grpc.health.v1,
// with both of its methods. Check answers as connectrpc.com/grpchealth's
// does; Watch, which grpchealth leaves unimplemented, streams a service's
// status as it changes, as grpc-go's server does. grpc-go's client-side
// health checking (a service config's healthCheckConfig) calls Watch and,
// told it is unimplemented, takes the server as healthy for good: it would
// never see the NOT_SERVING a draining server reports.
package health

import (
	"context"
	"errors"
	"net/http"
	"sync"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/switchyard/switchyard/internal/waits"
)

// ServiceName is the health service's fully qualified name.
const ServiceName = grpchealth.HealthV1ServiceName

// Checker holds the status of each service and tells watchers of changes.
// It implements grpchealth.Checker. Its zero value is not usable: see
// NewChecker.
type Checker struct {
	mu       sync.Mutex
	statuses map[string]grpchealth.Status
	// changed is closed at the next SetStatus or Close, and replaced.
	changed chan struct{}
	closed  bool
}

// NewChecker returns a Checker in which each of services is SERVING, as
// is the server as a whole (the service name "") until it is set.
func NewChecker(services ...string) *Checker {
	c := &Checker{statuses: make(map[string]grpchealth.Status, len(services)), changed: make(chan struct{})}
	for _, s := range services {
		c.statuses[s] = grpchealth.StatusServing
	}
	return c
}

// SetStatus sets service's status (the server's as a whole for ""),
// registering the service if it is new, and wakes its watchers.
func (c *Checker) SetStatus(service string, status grpchealth.Status) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.statuses[service]; ok && old == status {
		return
	}
	c.statuses[service] = status
	c.wake()
}

// Close ends every Watch, after it has sent the latest status of its
// service, and has later ones end at once (nothing sent), with code
// unavailable: a server shutting down gracefully waits for its streams,
// and a watch would otherwise hold it for the whole grace period. Check
// still answers.
func (c *Checker) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		c.wake()
	}
}

func (c *Checker) wake() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Check implements grpchealth.Checker: the service's status; SERVING for
// the server as a whole ("") until it is set; not_found for a service
// never registered.
func (c *Checker) Check(_ context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	status, known, _, _ := c.state(req.Service)
	if !known {
		return nil, connect.NewError(connect.CodeNotFound, errors.New("unknown service "+req.Service)) // as grpchealth says it
	}
	return &grpchealth.CheckResponse{Status: status}, nil
}

// state returns service's status, whether it is registered, the channel
// closed at the next change and whether the Checker is closed.
func (c *Checker) state(service string) (status grpchealth.Status, known bool, changed <-chan struct{}, closed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	status, known = c.statuses[service]
	if !known && service == "" {
		status, known = grpchealth.StatusServing, true
	}
	return status, known, c.changed, c.closed
}

// errClosed ends the watches of a Checker that was closed.
var errClosed = connect.NewError(connect.CodeUnavailable,
	errors.New("the server is shutting down; watch its health again after reconnecting"))

// watch sends service's status, then each change of it (a service not
// registered is SERVICE_UNKNOWN until it is), until ctx ends or c closes.
// A watch begun once c is closed ends at once, with nothing sent: grpc-go's
// client backs off before it watches again only when no message came.
func (c *Checker) watch(ctx context.Context, service string, send func(healthpb.HealthCheckResponse_ServingStatus) error) error {
	const none = healthpb.HealthCheckResponse_ServingStatus(-1) // nothing sent yet
	last := none
	for {
		status, known, changed, closed := c.state(service)
		if closed && last == none {
			return errClosed
		}
		now := healthpb.HealthCheckResponse_SERVICE_UNKNOWN
		if known {
			now = healthpb.HealthCheckResponse_ServingStatus(status)
		}
		if now != last {
			if err := send(now); err != nil {
				return err
			}
			last = now
		}
		if closed {
			return errClosed
		}
		// Waiting for a change is no work: the transport need not count
		// this handler among those running (internal/waits).
		waits.Begin(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err() // canceled, or deadline_exceeded
		case <-changed:
		}
	}
}

// NewHandler returns the path at which to mount grpc.health.v1 and its
// handler, answering from c.
func NewHandler(c *Checker, opts ...connect.HandlerOption) (string, http.Handler) {
	path, checks := grpchealth.NewHandler(c, opts...)
	watch := connect.NewServerStreamHandler(path+"Watch",
		func(ctx context.Context, req *connect.Request[healthpb.HealthCheckRequest], stream *connect.ServerStream[healthpb.HealthCheckResponse]) error {
			return c.watch(ctx, req.Msg.GetService(), func(s healthpb.HealthCheckResponse_ServingStatus) error {
				return stream.Send(&healthpb.HealthCheckResponse{Status: s})
			})
		}, opts...)
	mux := http.NewServeMux()
	mux.Handle(path, checks)
	mux.Handle(path+"Watch", watch)
	return path, mux
}
