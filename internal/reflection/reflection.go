// Package reflection serves gRPC server reflection (v1 and v1alpha) from
// an image of the repository's protos that make generate builds with buf
// (files.binpb): the API, the tutorial protos, and gRPC's own health and
// reflection protos as Switchyard serves them (proto/grpcstd).
//
// It replaces connectrpc.com/grpcreflect for the server's footprint: that
// package builds descriptors at init (its own and, through protodesc,
// descriptor.proto's), a third of the server's live heap, which every
// garbage collection marks and every call's share of the heap goal pays
// for. Here nothing is built until a client asks, and the descriptors
// served are slices of the embedded image.
//
// The messages are read and written with protowire: the package needs no
// generated code of its own, so it registers nothing that could clash with
// grpc-go's registrations of the same protos in a program that links both.
package reflection

import (
	"bytes"
	"context"
	_ "embed" // the image
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protowire"
)

// The reflection services' names, and the one method of each (a bidi
// stream). Nothing here is in the protobuf registry: the package registers
// no descriptors.
const (
	ServiceV1      = "grpc.reflection.v1.ServerReflection"
	ServiceV1Alpha = "grpc.reflection.v1alpha.ServerReflection"
	Method         = "ServerReflectionInfo"
)

// image is a google.protobuf.FileDescriptorSet, with source info (grpcurl
// describe shows the comments).
//
//go:embed files.binpb
var image []byte

// NewHandlerV1 serves grpc.reflection.v1, listing services (which should
// include itself), and returns the path to mount it on.
func NewHandlerV1(services []string, opts ...connect.HandlerOption) (string, http.Handler) {
	return newHandler(ServiceV1, services, opts)
}

// NewHandlerV1Alpha serves grpc.reflection.v1alpha, the same protocol under
// the name older clients ask for.
func NewHandlerV1Alpha(services []string, opts ...connect.HandlerOption) (string, http.Handler) {
	return newHandler(ServiceV1Alpha, services, opts)
}

func newHandler(service string, services []string, opts []connect.HandlerOption) (string, http.Handler) {
	h := &handler{services: slices.Clone(services)}
	path := "/" + service + "/"
	opts = append(slices.Clone(opts), connect.WithCodec(codec{}), connect.WithCodec(noJSON{}))
	return path, connect.NewBidiStreamHandler(path+"ServerReflectionInfo", h.serve, opts...)
}

type handler struct {
	services []string
}

// serve answers each request of the stream in turn.
func (h *handler) serve(ctx context.Context, stream *connect.BidiStream[request, response]) error {
	reg, err := loadRegistry()
	if err != nil {
		return connect.NewError(connect.CodeInternal, err)
	}
	sent := map[string]bool{} // files this stream has sent
	for {
		req, err := stream.Receive()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(h.answer(reg, req, sent)); err != nil {
			return err
		}
	}
}

// Request fields (grpc.reflection.v1.ServerReflectionRequest).
const (
	reqHost             = 1
	reqFileByFilename   = 3
	reqFileContaining   = 4
	reqFileOfExtension  = 5
	reqExtensionNumbers = 6
	reqListServices     = 7
)

// Response fields (ServerReflectionResponse) and of the messages in it.
const (
	resValidHost       = 1
	resOriginalRequest = 2
	resFiles           = 4 // FileDescriptorResponse: 1 repeated bytes
	resExtensionNums   = 5 // ExtensionNumberResponse: 1 base type, 2 numbers
	resServices        = 6 // ListServiceResponse: 1 repeated ServiceResponse (1 name)
	resError           = 7 // ErrorResponse: 1 code, 2 message
)

// gRPC status codes an ErrorResponse carries.
const (
	codeInvalidArgument = int32(connect.CodeInvalidArgument)
	codeNotFound        = int32(connect.CodeNotFound)
)

// answer is the response to one request.
func (h *handler) answer(reg *registry, req *request, sent map[string]bool) *response {
	b := appendString(nil, resValidHost, req.host)
	b = appendBytes(b, resOriginalRequest, req.raw)
	fail := func(code int32, format string, args ...any) *response {
		e := appendVarint(nil, 1, uint64(code))
		e = appendString(e, 2, fmt.Sprintf(format, args...))
		return &response{appendBytes(b, resError, e)}
	}
	var f *file
	switch req.kind {
	case reqFileByFilename:
		if f = reg.files[req.name]; f == nil {
			return fail(codeNotFound, "no file %q: reflection knows the files of the served services", req.name)
		}
	case reqFileContaining:
		s, ok := reg.symbols[req.name]
		if !ok {
			return fail(codeNotFound, "no symbol %q: give a fully-qualified name without a leading dot, such as teams.v1.TeamsService", req.name)
		}
		f = s.file
	case reqFileOfExtension:
		if f = reg.extensions[extension{req.name, req.number}]; f == nil {
			return fail(codeNotFound, "no extension %d of %q", req.number, req.name)
		}
	case reqExtensionNumbers:
		s, ok := reg.symbols[req.name]
		if !ok || !s.message {
			return fail(codeNotFound, "no message %q", req.name)
		}
		e := appendString(nil, 1, req.name)
		for _, n := range reg.extensionNumbers[req.name] {
			e = appendVarint(e, 2, uint64(n))
		}
		return &response{appendBytes(b, resExtensionNums, e)}
	case reqListServices:
		var e []byte
		for _, name := range h.services {
			e = appendBytes(e, 1, appendString(nil, 1, name))
		}
		return &response{appendBytes(b, resServices, e)}
	default:
		return fail(codeInvalidArgument, "the request asks for nothing: set one of file_by_filename, file_containing_symbol, file_containing_extension, all_extension_numbers_of_type or list_services")
	}
	// The file, always, then the files it imports, directly or not, that
	// this stream has not sent yet.
	var e []byte
	queue := []*file{f}
	for i := 0; i < len(queue); i++ {
		g := queue[i]
		if i > 0 && sent[g.name] {
			continue
		}
		sent[g.name] = true
		e = appendBytes(e, 1, g.raw)
		for _, dep := range g.deps {
			if d := reg.files[dep]; d != nil && !slices.Contains(queue, d) {
				queue = append(queue, d)
			}
		}
	}
	return &response{appendBytes(b, resFiles, e)}
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
}

func appendString(b []byte, num protowire.Number, v string) []byte {
	return protowire.AppendString(protowire.AppendTag(b, num, protowire.BytesType), v)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
}

// request is a ServerReflectionRequest, as much as answering needs.
type request struct {
	raw    []byte // to repeat in the response
	host   string
	kind   protowire.Number // the message_request field set, 0 if none
	name   string           // its value; the containing type of an extension
	number int32            // an extension's number
}

func (r *request) unmarshal(b []byte) error {
	*r = request{raw: bytes.Clone(b)}
	return eachField(b, func(num protowire.Number, v []byte, n uint64) error {
		switch num {
		case reqHost:
			r.host = string(v)
		case reqFileByFilename, reqFileContaining, reqExtensionNumbers, reqListServices:
			r.kind, r.name = num, string(v)
		case reqFileOfExtension:
			r.kind, r.name, r.number = num, "", 0
			return eachField(v, func(num protowire.Number, v []byte, n uint64) error {
				switch num {
				case 1:
					r.name = string(v)
				case 2:
					r.number = int32(n)
				}
				return nil
			})
		}
		return nil
	})
}

// response is an encoded ServerReflectionResponse.
type response struct{ b []byte }

// codec is the protobuf codec for request and response.
type codec struct{}

func (codec) Name() string { return "proto" }

func (codec) Marshal(m any) ([]byte, error) {
	r, ok := m.(*response)
	if !ok {
		return nil, fmt.Errorf("reflection: cannot marshal %T", m)
	}
	return r.b, nil
}

func (codec) Unmarshal(b []byte, m any) error {
	r, ok := m.(*request)
	if !ok {
		return fmt.Errorf("reflection: cannot unmarshal into %T", m)
	}
	return r.unmarshal(b)
}

// noJSON answers Connect clients that ask for JSON: reflection is served
// in protobuf only, as every reflection client speaks it.
type noJSON struct{}

var errJSON = errors.New("reflection is served in protobuf only: use the proto codec (application/grpc, application/grpc-web or application/connect+proto)")

func (noJSON) Name() string                    { return "json" }
func (noJSON) Marshal(any) ([]byte, error)     { return nil, errJSON }
func (noJSON) Unmarshal(b []byte, _ any) error { return errJSON }

// eachField calls f with each field of the message b: v for a
// length-delimited field, n for a varint one.
func eachField(b []byte, f func(num protowire.Number, v []byte, n uint64) error) error {
	for len(b) > 0 {
		num, typ, k := protowire.ConsumeTag(b)
		if k < 0 {
			return protowire.ParseError(k)
		}
		b = b[k:]
		var v []byte
		var n uint64
		switch typ {
		case protowire.BytesType:
			v, k = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			n, k = protowire.ConsumeVarint(b)
		default:
			k = protowire.ConsumeFieldValue(num, typ, b)
		}
		if k < 0 {
			return protowire.ParseError(k)
		}
		b = b[k:]
		if err := f(num, v, n); err != nil {
			return err
		}
	}
	return nil
}

// loadRegistry indexes the embedded image, once, on the first request.
var loadRegistry = sync.OnceValues(func() (*registry, error) { return parseImage(image) })
