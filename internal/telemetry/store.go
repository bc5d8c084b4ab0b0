package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard/switchyard/services/teams"
)

// TraceStore returns store with a child span around each of its
// operations (each one query or one transaction), under the span of the
// call that makes it; store itself when tracing is off.
func (t *Telemetry) TraceStore(store teams.Store) teams.Store {
	if t.tracing == nil || store == nil {
		return store
	}
	return tracedStore{Store: store, tracer: t.tracing.tracer}
}

type tracedStore struct {
	teams.Store
	tracer trace.Tracer
}

// start begins the span of one store operation. Outside a sampled call it
// costs one SpanFromContext lookup and nothing more.
func (s tracedStore) start(ctx context.Context, op string) (context.Context, trace.Span) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, nil
	}
	return s.tracer.Start(ctx, "teams.Store/"+op, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.operation.name", op)))
}

func finish(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

func (s tracedStore) Get(ctx context.Context, city string) (teams.Team, error) {
	ctx, span := s.start(ctx, "Get")
	t, err := s.Store.Get(ctx, city)
	finish(span, err)
	return t, err
}

func (s tracedStore) List(ctx context.Context, opts teams.ListOptions) ([]teams.Team, bool, error) {
	ctx, span := s.start(ctx, "List")
	list, more, err := s.Store.List(ctx, opts)
	finish(span, err)
	return list, more, err
}

func (s tracedStore) Put(ctx context.Context, team teams.Team) (teams.Team, bool, error) {
	ctx, span := s.start(ctx, "Put")
	stored, created, err := s.Store.Put(ctx, team)
	finish(span, err)
	return stored, created, err
}

func (s tracedStore) Delete(ctx context.Context, city string) (teams.Team, error) {
	ctx, span := s.start(ctx, "Delete")
	t, err := s.Store.Delete(ctx, city)
	finish(span, err)
	return t, err
}
