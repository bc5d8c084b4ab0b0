package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	conformancev1 "github.com/switchyard/switchyard/conformance/gen/connectrpc/conformance/v1"
	"github.com/switchyard/switchyard/conformance/gen/connectrpc/conformance/v1/conformancev1connect"
)

// conformanceService answers as each request's response definition asks
// (headers, trailers, data, an error, a delay) and echoes what it received
// (headers, the client's timeout, the messages, Connect GET's query), so the
// runner can check both directions of every protocol. Unimplemented is left
// unimplemented on purpose: the suite checks the UNIMPLEMENTED answer.
type conformanceService struct {
	conformancev1connect.UnimplementedConformanceServiceHandler
}

// mountConformanceService is the server.Config.Mounts entry: the generated
// handler with the product's handler options, behind recordQuery.
func mountConformanceService(opts ...connect.HandlerOption) (string, http.Handler) {
	path, h := conformancev1connect.NewConformanceServiceHandler(conformanceService{}, opts...)
	return path, recordQuery(h)
}

func (conformanceService) Unary(ctx context.Context, req *connect.Request[conformancev1.UnaryRequest]) (*connect.Response[conformancev1.UnaryResponse], error) {
	payload, err := answerUnary(ctx, req.Msg.GetResponseDefinition(), req.Msg)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&conformancev1.UnaryResponse{Payload: payload}), nil
}

func (conformanceService) IdempotentUnary(ctx context.Context, req *connect.Request[conformancev1.IdempotentUnaryRequest]) (*connect.Response[conformancev1.IdempotentUnaryResponse], error) {
	payload, err := answerUnary(ctx, req.Msg.GetResponseDefinition(), req.Msg)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&conformancev1.IdempotentUnaryResponse{Payload: payload}), nil
}

func (conformanceService) ClientStream(ctx context.Context, stream *connect.ClientStream[conformancev1.ClientStreamRequest]) (*connect.Response[conformancev1.ClientStreamResponse], error) {
	var (
		def      *conformancev1.UnaryResponseDefinition
		received []proto.Message
	)
	for stream.Receive() {
		if len(received) == 0 {
			// Only the first message's definition counts.
			def = stream.Msg().GetResponseDefinition()
		}
		received = append(received, stream.Msg())
	}
	if err := stream.Err(); err != nil {
		return nil, err
	}
	payload, err := answerUnary(ctx, def, received...)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&conformancev1.ClientStreamResponse{Payload: payload}), nil
}

func (conformanceService) ServerStream(ctx context.Context, req *connect.Request[conformancev1.ServerStreamRequest], stream *connect.ServerStream[conformancev1.ServerStreamResponse]) error {
	def := req.Msg.GetResponseDefinition()
	if def == nil {
		return nil
	}
	addHeaders(stream.ResponseHeader(), def.GetResponseHeaders())
	addHeaders(stream.ResponseTrailer(), def.GetResponseTrailers())
	sent := 0
	if len(def.GetResponseData()) > 0 {
		// Headers first, before any delay, so the client is not left waiting.
		if err := stream.Send(nil); err != nil {
			return err
		}
	}
	for _, data := range def.GetResponseData() {
		payload := &conformancev1.ConformancePayload{Data: data}
		if sent == 0 {
			info, err := requestInfo(ctx, req.Msg)
			if err != nil {
				return err
			}
			payload.RequestInfo = info
		}
		if err := delay(ctx, def.GetResponseDelayMs()); err != nil {
			return err
		}
		if err := stream.Send(&conformancev1.ServerStreamResponse{Payload: payload}); err != nil {
			return err
		}
		sent++
	}
	return streamEnd(ctx, def.GetError(), sent, req.Msg)
}

func (conformanceService) BidiStream(ctx context.Context, stream *connect.BidiStream[conformancev1.BidiStreamRequest, conformancev1.BidiStreamResponse]) error {
	var (
		def        *conformancev1.StreamResponseDefinition
		fullDuplex bool
		first      = true
		sent       int
		// Messages not yet echoed: since the last response in full
		// duplex, all of them in half duplex.
		pending []proto.Message
	)
	for {
		msg, err := stream.Receive()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		pending = append(pending, msg)
		if first {
			first = false
			def, fullDuplex = msg.GetResponseDefinition(), msg.GetFullDuplex()
			addHeaders(stream.ResponseHeader(), def.GetResponseHeaders())
			addHeaders(stream.ResponseTrailer(), def.GetResponseTrailers())
			if fullDuplex && len(def.GetResponseData()) > 0 {
				if err := stream.Send(nil); err != nil {
					return err
				}
			}
		}
		if !fullDuplex {
			continue
		}
		if sent == len(def.GetResponseData()) {
			// Nothing left to answer with: end with the definition's error.
			break
		}
		if err := sendBidi(ctx, stream, def, sent, pending); err != nil {
			return err
		}
		sent++
		pending = nil
	}
	// Half duplex answers only now that the client is done (headers
	// first, before any delay); full duplex sends what more responses the
	// definition asks for.
	if !fullDuplex && len(def.GetResponseData()) > 0 {
		if err := stream.Send(nil); err != nil {
			return err
		}
	}
	for ; sent < len(def.GetResponseData()); sent++ {
		if err := sendBidi(ctx, stream, def, sent, pending); err != nil {
			return err
		}
		pending = nil
	}
	return streamEnd(ctx, def.GetError(), sent, pending...)
}

// sendBidi sends response number n of def. The first carries the whole
// request info; later ones only the messages received since the last.
func sendBidi(ctx context.Context, stream *connect.BidiStream[conformancev1.BidiStreamRequest, conformancev1.BidiStreamResponse], def *conformancev1.StreamResponseDefinition, n int, received []proto.Message) error {
	payload := &conformancev1.ConformancePayload{Data: def.GetResponseData()[n]}
	var err error
	if n == 0 {
		payload.RequestInfo, err = requestInfo(ctx, received...)
	} else if len(received) > 0 {
		payload.RequestInfo = &conformancev1.ConformancePayload_RequestInfo{}
		payload.RequestInfo.Requests, err = asAny(received)
	}
	if err != nil {
		return err
	}
	if err := delay(ctx, def.GetResponseDelayMs()); err != nil {
		return err
	}
	return stream.Send(&conformancev1.BidiStreamResponse{Payload: payload})
}

// answerUnary is the answer of a unary or client-stream call to def, after
// the messages received: headers and trailers, then the delay, then the
// payload or the error. A missing definition asks for the echo alone.
func answerUnary(ctx context.Context, def *conformancev1.UnaryResponseDefinition, received ...proto.Message) (*conformancev1.ConformancePayload, error) {
	info, err := requestInfo(ctx, received...)
	if err != nil {
		return nil, err
	}
	if def == nil {
		return &conformancev1.ConformancePayload{RequestInfo: info}, nil
	}
	if call, ok := connect.CallInfoForHandlerContext(ctx); ok {
		addHeaders(call.ResponseHeader(), def.GetResponseHeaders())
		addHeaders(call.ResponseTrailer(), def.GetResponseTrailers())
	}
	if err := delay(ctx, def.GetResponseDelayMs()); err != nil {
		return nil, err
	}
	if e := def.GetError(); e != nil {
		return nil, toConnectError(e, info)
	}
	return &conformancev1.ConformancePayload{Data: def.GetResponseData(), RequestInfo: info}, nil
}

// streamEnd ends a stream with e, or cleanly when e is nil. When no
// response carried the request info, the error's details do.
func streamEnd(ctx context.Context, e *conformancev1.Error, sent int, received ...proto.Message) error {
	if e == nil {
		return nil
	}
	var info *conformancev1.ConformancePayload_RequestInfo
	if sent == 0 {
		var err error
		if info, err = requestInfo(ctx, received...); err != nil {
			return err
		}
	}
	return toConnectError(e, info)
}

// toConnectError is e as the handler returns it, with info (when not nil)
// as its last detail.
func toConnectError(e *conformancev1.Error, info *conformancev1.ConformancePayload_RequestInfo) error {
	err := connect.NewError(connect.Code(e.GetCode()), errors.New(e.GetMessage()))
	details := e.GetDetails()
	if info != nil {
		a, aerr := anypb.New(info)
		if aerr != nil {
			return connect.NewError(connect.CodeInternal, fmt.Errorf("request info as a detail: %w", aerr))
		}
		details = append(details[:len(details):len(details)], a)
	}
	for _, d := range details {
		detail, derr := connect.NewErrorDetail(d)
		if derr != nil {
			return connect.NewError(connect.CodeInternal, fmt.Errorf("error detail %s: %w", d.GetTypeUrl(), derr))
		}
		err.AddDetail(detail)
	}
	return err
}

// delay waits ms milliseconds, or until the call's context ends: then it
// returns the context's error, which the product's interceptors turn into
// DEADLINE_EXCEEDED or CANCELED.
func delay(ctx context.Context, ms uint32) error {
	if ms == 0 {
		return nil
	}
	t := time.NewTimer(time.Duration(ms) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
