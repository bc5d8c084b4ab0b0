package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	conformancev1 "github.com/switchyard/switchyard/conformance/gen/connectrpc/conformance/v1"
)

// requestInfo is what the handler saw of the call: the request headers, the
// time left of the client's timeout, the messages received and, for a
// Connect GET, the query.
func requestInfo(ctx context.Context, received ...proto.Message) (*conformancev1.ConformancePayload_RequestInfo, error) {
	requests, err := asAny(received)
	if err != nil {
		return nil, err
	}
	info := &conformancev1.ConformancePayload_RequestInfo{Requests: requests}
	call, ok := connect.CallInfoForHandlerContext(ctx)
	if !ok {
		return info, nil
	}
	info.RequestHeaders = toHeaders(call.RequestHeader())
	info.TimeoutMs = clientTimeoutMs(ctx, call.RequestHeader())
	if q, ok := ctx.Value(queryKey{}).(url.Values); ok && len(q) > 0 {
		info.ConnectGetInfo = &conformancev1.ConformancePayload_ConnectGetInfo{QueryParams: toHeaders(http.Header(q))}
	}
	return info, nil
}

// clientTimeoutMs is the time left until the call's deadline, when the
// client sent a timeout (Connect-Timeout-Ms, or Grpc-Timeout for gRPC and
// gRPC-Web). The context's deadline, not the header, is read: the suite
// checks that the server kept the client's timeout. Without such a header
// it is nil even though the product caps every unary call (its deadline
// interceptor): that cap is the server's, not a timeout the client sent.
func clientTimeoutMs(ctx context.Context, h http.Header) *int64 {
	if h.Get("Connect-Timeout-Ms") == "" && h.Get("Grpc-Timeout") == "" {
		return nil
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		return nil
	}
	ms := max(time.Until(deadline).Milliseconds(), 0)
	return &ms
}

// toHeaders lists h by name, in a stable order.
func toHeaders(h http.Header) []*conformancev1.Header {
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	slices.Sort(names)
	headers := make([]*conformancev1.Header, 0, len(names))
	for _, name := range names {
		headers = append(headers, &conformancev1.Header{Name: name, Value: h[name]})
	}
	return headers
}

// addHeaders adds every value of hs to h.
func addHeaders(h http.Header, hs []*conformancev1.Header) {
	for _, header := range hs {
		for _, v := range header.GetValue() {
			h.Add(header.GetName(), v)
		}
	}
}

// asAny wraps each message in an Any, as RequestInfo.requests holds them.
func asAny(msgs []proto.Message) ([]*anypb.Any, error) {
	out := make([]*anypb.Any, 0, len(msgs))
	for _, m := range msgs {
		a, err := anypb.New(m)
		if err != nil {
			return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("echoing a request: %w", err))
		}
		out = append(out, a)
	}
	return out, nil
}

type queryKey struct{}

// recordQuery keeps a GET request's query in its context for requestInfo:
// connect-go v1 gives handlers no other way to see it. POSTs pass through
// untouched.
func recordQuery(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			r = r.WithContext(context.WithValue(r.Context(), queryKey{}, r.URL.Query()))
		}
		h.ServeHTTP(w, r)
	})
}
