package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"connectrpc.com/connect"
	"golang.org/x/net/http2"
)

// rpcProtocol is how a call travels: gRPC, gRPC-Web (binary), or
// Connect's unary protocol with protobuf bodies. Every protocol's response
// becomes the same response (grpc-status, grpc-message, gRPC-framed
// body), so the workloads' checks are the same for all three.
type rpcProtocol string

const (
	protoGRPC    rpcProtocol = "grpc"
	protoGRPCWeb rpcProtocol = "grpcweb"
	protoConnect rpcProtocol = "connect"
)

var protocols = []rpcProtocol{protoGRPC, protoGRPCWeb, protoConnect}

// unaryWorkloads are the workloads whose calls are one message each way,
// which gRPC-Web and Connect can make over HTTP/2 as well.
var unaryWorkloads = map[string]bool{"getteam": true, "legacygetteam": true, "getfeature": true, "legacygetfeature": true}

// headers are the request's protocol headers, as each protocol's clients
// send them (grpc-go; grpc-web's JavaScript client; connect-go).
func (p rpcProtocol) headers() []string {
	switch p {
	case protoGRPCWeb:
		return []string{"content-type", "application/grpc-web+proto", "x-grpc-web", "1", "grpc-accept-encoding", "gzip"}
	case protoConnect:
		return []string{"content-type", "application/proto", "connect-protocol-version", "1", "accept-encoding", "gzip"}
	}
	return []string{"content-type", "application/grpc", "te", "trailers", "grpc-accept-encoding", "gzip"}
}

// body is a call's request body: Connect's unary body is the message
// itself, without gRPC's framing (unary workloads send exactly one).
func (p rpcProtocol) body(framed []byte) []byte {
	if p == protoConnect {
		return framed[5:]
	}
	return framed
}

// checkHeaders checks a response's first HEADERS: its status and content
// type.
func (p rpcProtocol) checkHeaders(status, contentType string) error {
	switch p {
	case protoGRPCWeb:
		if status != "200" {
			return fmt.Errorf("HTTP status %s", status)
		}
		if contentType != "application/grpc-web+proto" && contentType != "application/grpc-web" {
			return fmt.Errorf("content-type %q", contentType)
		}
	case protoConnect:
		// An error is JSON, with the HTTP status of its code.
		if want := "application/proto"; status != "200" {
			if contentType != "application/json" {
				return fmt.Errorf("HTTP status %s with content-type %q", status, contentType)
			}
		} else if contentType != want {
			return fmt.Errorf("content-type %q", contentType)
		}
	default:
		if status != "200" {
			return fmt.Errorf("HTTP status %s", status)
		}
		if contentType != "application/grpc" && !strings.HasPrefix(contentType, "application/grpc+") {
			return fmt.Errorf("content-type %q", contentType)
		}
	}
	return nil
}

// response turns what a finished call received into the response its
// check reads: status is the first HEADERS' :status, only the status they
// carried (if any), end the HEADERS that ended the stream (nil when DATA
// ended it), body the DATA.
func (p rpcProtocol) response(status string, only response, end *http2.MetaHeadersFrame, body []byte) (response, error) {
	switch p {
	case protoGRPCWeb:
		switch {
		case only.grpcStatus != "" && len(body) == 0:
			// Trailers-only: the status was in the headers (whether they
			// ended the stream or an empty DATA did).
			return only, nil
		case end != nil:
			return response{}, errors.New("HTTP trailers in a gRPC-Web response")
		}
		return webTrailers(body)
	case protoConnect:
		if end != nil {
			return response{}, errors.New("HTTP trailers in a Connect unary response")
		}
		if status == "200" {
			return response{grpcStatus: "0", body: frame(nil, body)}, nil
		}
		var wire struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		var code connect.Code
		if err := json.Unmarshal(body, &wire); err != nil {
			return response{}, fmt.Errorf("HTTP status %s: error body %q: %w", status, trunc(body), err)
		}
		if err := code.UnmarshalText([]byte(wire.Code)); err != nil {
			return response{}, fmt.Errorf("HTTP status %s: error code %q: %w", status, wire.Code, err)
		}
		return response{grpcStatus: fmt.Sprint(int(code)), grpcMessage: wire.Message}, nil
	}
	if end == nil {
		return response{}, fmt.Errorf("stream ended without trailers (HTTP error or unknown procedure?): %q", trunc(body))
	}
	return response{grpcStatus: fieldValue(end, "grpc-status"), grpcMessage: percentDecode(fieldValue(end, "grpc-message")), body: body}, nil
}

// webTrailers splits a gRPC-Web body into its messages and its trailer
// frame (flag 0x80, last), and reads the status from the trailers.
func webTrailers(body []byte) (response, error) {
	i, n := 0, 0
	for {
		if i+5 > len(body) {
			return response{}, fmt.Errorf("gRPC-Web body without a trailer frame: %q", trunc(body))
		}
		n = int(binary.BigEndian.Uint32(body[i+1 : i+5]))
		if body[i]&0x80 != 0 {
			break
		}
		i += 5 + n
	}
	if i+5+n != len(body) {
		return response{}, fmt.Errorf("gRPC-Web trailer frame of %d bytes in %d: %q", n, len(body)-i-5, trunc(body[i:]))
	}
	t := body[i+5:]
	r := response{body: body[:i]}
	for line := range strings.SplitSeq(string(t), "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "grpc-status":
			r.grpcStatus = strings.TrimSpace(v)
		case "grpc-message":
			r.grpcMessage = percentDecode(strings.TrimSpace(v))
		}
	}
	if !bytes.HasSuffix(t, []byte("\r\n")) {
		return r, fmt.Errorf("gRPC-Web trailer frame not ended by CRLF: %q", trunc(t))
	}
	return r, nil
}
