// Package grpcunary serves the plain case of a unary call, in gRPC,
// gRPC-Web or Connect's unary protocol, without connect-go's per-call
// machinery, and hands every other request to the procedure's connect-go
// handler.
//
// connect-go serves a unary call as a stream: it builds a handler
// connection with its own header maps, envelope reader and writer, derives
// a request for the client's timeout, negotiates compression by splitting
// headers, receives twice (the second receive proves there is no second
// message, and its io.EOF passes errors.As on the way), runs the call
// through a chain of interceptor closures and flushes the response
// headers before the trailers. Under a GetTeam load that is about half of
// the server's CPU time; this package answers the same call in a third of
// that (BENCHMARKS.md, "Fifth pass").
//
// The plain case is an uncompressed request of exactly one message no
// larger than the read limit and 64 KiB, whose timeout parses and has not
// passed (or which has none), in one of:
//   - gRPC: a POST over HTTP/2, Content-Type application/grpc or
//     application/grpc+proto;
//   - gRPC-Web: a POST over any HTTP version, Content-Type
//     application/grpc-web or application/grpc-web+proto (the text
//     variant arrives here as binary through internal/grpcwebtext);
//   - Connect: a POST over any HTTP version, Content-Type
//     application/proto or application/json, Connect-Protocol-Version 1 or
//     none; or, for a procedure without side effects (Options.Get), a GET
//     with the message in its query (encoding proto or json, base64 or
//     not, no compression).
//
// Everything else, and every request
// that turns out to break a rule while its body is read (a flag, a second
// message, a body that ends early, bytes that do not unmarshal), goes to
// connect-go with the bytes read so far put back in front of the body, so
// that connect-go answers it exactly as it would have: only requests that
// reach the handler are ever answered here. What the handler sees and
// what the client receives are connect-go's (the same response headers,
// body and trailers, error details included), which the package's tests
// check by sending the same requests to both. One difference is in the
// encoding only: a gRPC-Web text answer carries the same frames in one
// padded run of base64, where connect-go's flush between the message and
// the trailer frame makes internal/grpcwebtext close a run after each.
//
// The handler gets its request as connect.NewRequest builds it: Msg and
// Header() (every request header, Host included, as connect-go passes
// them) are set, but Spec(), Peer() and HTTPMethod() are zero and the
// context carries no connect.CallInfo. Only procedures whose handlers read
// nothing else may be served here; Switchyard's own services are such.
package grpcunary

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard/switchyard/internal/h2"
	"github.com/switchyard/switchyard/internal/outcome"
)

// MaxMessageBytes is the largest request message served here; larger ones
// go to connect-go, so that the buffers kept for reuse stay small.
const MaxMessageBytes = 64 << 10

// Wrap runs a call's handler inside what the server's connect
// interceptors do around it on connect-go's path (record the call as
// handled, cap its deadline, recover a panic, keep internals out of
// errors). procedure is "/pkg.Service/Method", peer the request's
// RemoteAddr, header its headers. It returns the handler's error as the
// interceptors would have turned it.
type Wrap func(ctx context.Context, procedure, peer string, header http.Header, handler func(context.Context) error) error

// Options are what a procedure's plain path shares with its connect
// handler.
type Options struct {
	// ReadMaxBytes is connect.WithReadMaxBytes' limit: larger requests go
	// to connect-go, which refuses them (0: no limit beyond
	// MaxMessageBytes).
	ReadMaxBytes int
	// CompressMinBytes is connect.WithCompressMinBytes': a smaller response
	// is not compressed even when the client accepts gzip.
	CompressMinBytes int
	// Wrap is the interceptors' work (nil: the handler runs bare).
	Wrap Wrap
	// Get says the procedure has no side effects, so that its connect
	// handler takes Connect's GET requests
	// (connect.WithIdempotency(connect.IdempotencyNoSideEffects)): they
	// are then plain calls too. Without it every GET goes to connect-go.
	Get bool
}

// New serves procedure's plain unary calls with impl (the same method the
// connect handler next was built from) and sends every other request to
// next. Req and Res must be generated protobuf message types.
func New[Req, Res any](procedure string, impl func(context.Context, *connect.Request[Req]) (*connect.Response[Res], error), next http.Handler, opts Options) http.Handler {
	if _, ok := any(new(Req)).(proto.Message); !ok {
		panic(fmt.Sprintf("grpcunary: %s's request type %T is not a protobuf message", procedure, new(Req)))
	}
	if _, ok := any(new(Res)).(proto.Message); !ok {
		panic(fmt.Sprintf("grpcunary: %s's response type %T is not a protobuf message", procedure, new(Res)))
	}
	limit := MaxMessageBytes
	if opts.ReadMaxBytes > 0 && opts.ReadMaxBytes < limit {
		limit = opts.ReadMaxBytes
	}
	return &handler[Req, Res]{procedure: procedure, impl: impl, next: next, opts: opts, limit: limit}
}

type handler[Req, Res any] struct {
	procedure string
	impl      func(context.Context, *connect.Request[Req]) (*connect.Response[Res], error)
	next      http.Handler
	opts      Options
	limit     int
}

func (h *handler[Req, Res]) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	call, ok := plain(r, h.opts.Get)
	if !ok {
		h.next.ServeHTTP(w, r)
		return
	}
	buf := getBuffer()
	defer putBuffer(buf)
	msg, ok, readErr := h.receive(r, call, buf)
	if !ok && call.isGet() {
		h.next.ServeHTTP(w, r) // the message was in the query, still there
		return
	}
	if !ok {
		// After the bytes read, the rest of the body; or the error its
		// read met, which a second read need not meet again (net/http
		// closes a body whose trailer it could not read).
		rest := io.Reader(r.Body)
		if readErr != nil {
			rest = failedReader{readErr}
		}
		r.Body = &replay{Reader: io.MultiReader(bytes.NewReader(bytes.Clone(*buf)), rest), body: r.Body}
		h.next.ServeHTTP(w, r)
		return
	}
	h.serve(w, r, call, msg, buf)
}

// protocol is the RPC protocol of a plain call.
type protocol uint8

const (
	protoGRPC    protocol = iota // HTTP/2 only: its status travels in trailers
	protoGRPCWeb                 // any HTTP version: its trailers end the body
	protoConnect                 // Connect's unary protocol: the message is the body, or a GET's query
)

// call is what the request's headers decided.
type call struct {
	protocol    protocol
	query       url.Values // Connect's GET: its query, which holds the message (nil for a POST)
	json        bool       // Connect's application/json (else protobuf)
	contentType []string   // the request's, which the response repeats
	gzip        bool       // the response may be compressed
	deadline    time.Time  // the client's timeout from now; zero: none
}

// isGet reports whether the call is a Connect GET.
func (c call) isGet() bool { return c.query != nil }

// plain reports whether r's headers are the plain case, and what they ask;
// get says whether the procedure takes Connect's GET requests.
func plain(r *http.Request, get bool) (call, bool) {
	var c call
	if r.Method == http.MethodGet && get {
		return c, connectGet(r, &c)
	}
	if r.Method != http.MethodPost {
		return c, false
	}
	switch header(r.Header, "Content-Type") {
	case "application/grpc":
		c.contentType = grpcValue
	case "application/grpc+proto":
		c.contentType = grpcProtoValue
	case "application/grpc-web":
		c.protocol, c.contentType = protoGRPCWeb, grpcWebValue
	case "application/grpc-web+proto":
		c.protocol, c.contentType = protoGRPCWeb, grpcWebProtoValue
	case "application/proto":
		c.protocol, c.contentType = protoConnect, protoValue
		return c, connectHeaders(r, &c)
	case "application/json":
		c.protocol, c.contentType, c.json = protoConnect, jsonValue, true
		return c, connectHeaders(r, &c)
	default:
		return c, false
	}
	if c.protocol == protoGRPC && r.ProtoMajor != 2 {
		return c, false
	}
	if enc := header(r.Header, "Grpc-Encoding"); enc != "" && enc != "identity" {
		return c, false
	}
	c.gzip = acceptsGzip(header(r.Header, "Grpc-Accept-Encoding"))
	if t := header(r.Header, "Grpc-Timeout"); t != "" {
		d, ok := outcome.ParseGRPCTimeout(t)
		if !ok {
			return c, false // connect-go explains what is wrong with it
		}
		if d > 0 {
			c.deadline = time.Now().Add(d)
		}
	}
	return c, true
}

// connectHeaders reads a Connect unary request's headers into c and
// reports whether they are the plain case: an uncompressed body, protocol
// version 1 or none, and a Connect-Timeout-Ms that parses and has not
// passed (or none). A missing version is plain because Switchyard's
// handlers do not require one (connect.WithRequireConnectProtocolHeader);
// with that option such a request would have to go to connect-go.
func connectHeaders(r *http.Request, c *call) bool {
	if enc := header(r.Header, "Content-Encoding"); enc != "" && enc != "identity" {
		return false
	}
	if v := header(r.Header, "Connect-Protocol-Version"); v != "" && v != "1" {
		return false
	}
	return connectTimeout(r, c)
}

// connectTimeout reads a Connect request's Accept-Encoding and
// Connect-Timeout-Ms into c, and reports whether the timeout parses and
// has not passed (or there is none).
func connectTimeout(r *http.Request, c *call) bool {
	c.gzip = acceptsGzip(header(r.Header, "Accept-Encoding"))
	if t := header(r.Header, "Connect-Timeout-Ms"); t != "" {
		d, ok := outcome.ParseConnectTimeout(t)
		if !ok {
			return false // a zero timeout too: connect-go answers it
		}
		c.deadline = time.Now().Add(d)
	}
	return true
}

// connectGet reads a Connect GET request into c and reports whether it is
// the plain case: no body and no Content-Type; in the query, version v1 or
// none, encoding proto or json, a message, no compression; the headers as
// connectHeaders has them (bar Connect-Protocol-Version, which connect-go
// does not read on a GET). The message's bytes are read by receiveQuery.
func connectGet(r *http.Request, c *call) bool {
	if r.ContentLength != 0 || header(r.Header, "Content-Type") != "" {
		return false
	}
	q := r.URL.Query()
	if v := q.Get("connect"); v != "" && v != "v1" {
		return false
	}
	if enc := q.Get("compression"); enc != "" && enc != "identity" {
		return false
	}
	switch q.Get("encoding") {
	case "proto":
		c.contentType = protoValue
	case "json":
		c.contentType, c.json = jsonValue, true
	default:
		return false
	}
	if !q.Has("message") {
		return false
	}
	c.protocol, c.query = protoConnect, q
	return connectTimeout(r, c)
}

// acceptsGzip reports whether an accept-encoding list names gzip: connect-go
// answers in the first encoding named that it has, and gzip is its one.
func acceptsGzip(accept string) bool {
	for name := range strings.FieldsFuncSeq(accept, func(r rune) bool { return r == ',' || r == ' ' }) {
		if name == "gzip" {
			return true
		}
	}
	return false
}

func header(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// receive reads the request's one message into buf and unmarshals it; buf
// keeps every byte read, for connect-go when it is not the plain case,
// and the error the body's read met, if it did not simply end (readError).
func (h *handler[Req, Res]) receive(r *http.Request, c call, buf *[]byte) (*Req, bool, error) {
	switch {
	case c.isGet():
		msg, ok := h.receiveQuery(c, buf)
		return msg, ok, nil
	case c.protocol == protoConnect:
		return h.receiveBody(r, c, buf)
	}
	b := (*buf)[:5]
	if n, err := io.ReadFull(r.Body, b); err != nil {
		*buf = b[:n]
		return nil, false, readError(err)
	}
	size := int(binary.BigEndian.Uint32(b[1:5]))
	if b[0] != 0 || size > h.limit {
		*buf = b
		return nil, false, nil
	}
	if cap(b) < 5+size+1 {
		b = append(b, make([]byte, size+1)...)
	}
	b = b[:5+size+1]
	if n, err := io.ReadFull(r.Body, b[5:5+size]); err != nil {
		*buf = b[:5+n]
		return nil, false, readError(err)
	}
	// One message and then the end of the body, nothing more.
	if n, err := io.ReadFull(r.Body, b[5+size:]); n != 0 || err != io.EOF {
		*buf = b[:5+size+n]
		return nil, false, readError(err)
	}
	*buf = b[:5+size]
	msg, ok := unmarshal[Req](b[5:5+size], false)
	return msg, ok, nil
}

// readError is err, an error a body's read met, unless it says only that
// the body ended (early or not): reading it again says so again.
func readError(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return nil
	}
	return err
}

// failedReader is the rest of a body whose read failed with err.
type failedReader struct{ err error }

func (f failedReader) Read([]byte) (int, error) { return 0, f.err }

// receiveBody reads a Connect unary request: its body is the message.
func (h *handler[Req, Res]) receiveBody(r *http.Request, c call, buf *[]byte) (*Req, bool, error) {
	b := (*buf)[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		*buf = b
		if len(b) > h.limit {
			return nil, false, nil // connect-go refuses it, or serves it if under its own limit
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, false, readError(err)
		}
	}
	if c.json && len(b) == 0 {
		return nil, false, nil // connect-go explains that JSON needs an object
	}
	msg, ok := unmarshal[Req](b, c.json)
	return msg, ok, nil
}

// QueryBase64 is the encoding of a Connect GET's message, msg, whose query
// says base64=1, as connect-go reads it: URL-safe, padded when its length
// is a multiple of 4, else not.
func QueryBase64(msg string) *base64.Encoding {
	if len(msg)%4 != 0 {
		return base64.RawURLEncoding
	}
	return base64.URLEncoding
}

// receiveQuery reads a Connect GET request's message from its query:
// URL-safe base64 (padded or not) with base64=1, else the bytes as they
// are.
func (h *handler[Req, Res]) receiveQuery(c call, buf *[]byte) (*Req, bool) {
	q := c.query
	msg := q.Get("message")
	b := (*buf)[:0]
	if q.Get("base64") == "1" {
		var err error
		if b, err = QueryBase64(msg).AppendDecode(b, []byte(msg)); err != nil {
			return nil, false
		}
	} else {
		b = append(b, msg...)
	}
	*buf = b
	if len(b) > h.limit || c.json && len(b) == 0 {
		return nil, false
	}
	return unmarshal[Req](b, c.json)
}

// unmarshal decodes a request as connect-go's codecs do.
func unmarshal[Req any](b []byte, json bool) (*Req, bool) {
	msg := new(Req)
	var err error
	switch {
	case json:
		err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(b, any(msg).(proto.Message))
	case len(b) > 0:
		// Merge into the new message is proto.Unmarshal without its Reset
		// of a message that is empty already.
		err = proto.UnmarshalOptions{Merge: true}.Unmarshal(b, any(msg).(proto.Message))
	}
	return msg, err == nil
}

func (h *handler[Req, Res]) serve(w http.ResponseWriter, r *http.Request, c call, msg *Req, buf *[]byte) {
	defer r.Body.Close()
	// connect-go sets these before it receives, so a handler's writes
	// cannot displace them.
	out := w.Header()
	out["Content-Type"] = c.contentType
	if c.protocol == protoConnect {
		out["Accept-Encoding"] = gzipValue
	} else {
		out["Grpc-Accept-Encoding"] = gzipValue
		if c.gzip {
			out["Grpc-Encoding"] = gzipValue
		}
	}

	u := &unaryCall[Req, Res]{h: h, req: connect.Request[Req]{Msg: msg}} // as connect.NewRequest makes it
	req := &u.req
	in := req.Header()
	for k, v := range r.Header {
		in[k] = v
	}
	u.host[0] = r.Host
	in["Host"] = u.host[:]
	if c.isGet() {
		in["Content-Type"] = emptyValue // connect-go sets a GET's (absent) content type
	}

	ctx := r.Context()
	if !c.deadline.IsZero() {
		if left := time.Until(c.deadline); left <= 0 || !h2.LimitDuration(ctx, left) {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, c.deadline)
			defer cancel()
		}
	}
	var err error
	if h.opts.Wrap != nil {
		err = h.opts.Wrap(ctx, h.procedure, r.RemoteAddr, in, u.run)
	} else {
		err = u.run(ctx)
	}
	if err != nil {
		fail(w, r, c, false, nil, err)
		return
	}
	res := u.res
	// The handler's headers and trailers, protocol ones left out, as
	// connect-go merges them before it marshals the message.
	mergeNonProtocol(out, res.Header())
	trailers := res.Trailer()
	if c.protocol == protoConnect {
		vary(out, c)
		for k, v := range trailers {
			if _, protocol := protocolHeaders[k]; !protocol && len(v) > 0 {
				out[connectTrailerPrefix+k] = v
			}
		}
	}
	body, err := h.marshal(out, c, any(res.Msg).(proto.Message), buf)
	if err != nil {
		fail(w, r, c, true, trailers, err)
		return
	}
	_, _ = w.Write(body) // a failed write is the transport's to record
	switch c.protocol {
	case protoGRPC:
		addTrailers(out, http.TrailerPrefix, trailers)
		out[http.TrailerPrefix+"Grpc-Status"] = statusOK // the handler's trailers hold no protocol header
	case protoGRPCWeb:
		t := make(http.Header, len(trailers)+1)
		addTrailers(t, "", trailers)
		t["Grpc-Status"] = statusOK
		writeWebTrailers(w, t, buf)
	}
}

// unaryCall is what a call's handler needs, in one allocation: its
// request, the slot for its response, and the Host value the request's
// header carries.
type unaryCall[Req, Res any] struct {
	h    *handler[Req, Res]
	req  connect.Request[Req]
	res  *connect.Response[Res]
	host [1]string
}

// run calls the handler, as Wrap's handler.
func (u *unaryCall[Req, Res]) run(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var err error
	u.res, err = u.h.impl(ctx, &u.req)
	if u.res == nil && err == nil {
		panic(u.h.procedure + " returned nil *connect.Response and nil error")
	}
	return err
}

// connectTrailerPrefix marks a handler's trailer sent as a header of a
// Connect unary response.
const connectTrailerPrefix = "Trailer-"

// Values of response headers that every call sends: the transport only
// reads them, and a handler never sees the response's header map.
var (
	gzipValue         = []string{"gzip"}
	statusOK          = []string{"0"}
	grpcValue         = []string{"application/grpc"}
	grpcProtoValue    = []string{"application/grpc+proto"}
	grpcWebValue      = []string{"application/grpc-web"}
	grpcWebProtoValue = []string{"application/grpc-web+proto"}
	protoValue        = []string{"application/proto"}
	jsonValue         = []string{"application/json"}
	emptyValue        = []string{""}
)

// marshal encodes msg as the response's body: one envelope for gRPC and
// gRPC-Web, the bare message for Connect, compressed as connect-go would.
func (h *handler[Req, Res]) marshal(out http.Header, c call, msg proto.Message, buf *[]byte) ([]byte, error) {
	head := 5 // the envelope's
	if c.protocol == protoConnect {
		head = 0
	}
	var b []byte
	var err error
	if c.json {
		b, err = protojson.MarshalOptions{}.MarshalAppend((*buf)[:0], msg)
	} else {
		b, err = proto.MarshalOptions{}.MarshalAppend((*buf)[:head], msg)
	}
	if err != nil {
		return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("marshal message: %w", err))
	}
	*buf = b
	flags := byte(0)
	if c.gzip && len(b)-head >= h.opts.CompressMinBytes {
		z := getBuffer()
		defer putBuffer(z)
		if b, err = compress((*z)[:head], b[head:]); err != nil {
			return nil, connect.NewError(connect.CodeInternal, err)
		}
		// The compressed bytes go back into buf, which the caller keeps
		// until they are written.
		*buf = append((*buf)[:0], b...)
		b = *buf
		flags = 1
		if c.protocol == protoConnect {
			out["Content-Encoding"] = gzipValue
		}
	}
	if head > 0 {
		b[0] = flags
		binary.BigEndian.PutUint32(b[1:5], uint32(len(b)-5)) //nolint:gosec // at most MaxMessageBytes' worth of fields
	}
	return b, nil
}

var gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(io.Discard) }}

// compress appends data, gzipped as connect-go's default compressor does,
// to dst.
func compress(dst, data []byte) ([]byte, error) {
	out := bytes.NewBuffer(dst)
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(out)
	if _, err := zw.Write(data); err != nil {
		return nil, fmt.Errorf("compress: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress: %w", err)
	}
	return out.Bytes(), nil
}

// fail answers a call that ended in err as connect-go's handler for its
// protocol does. sending says whether the handler's response was being
// sent (its message did not marshal), trailers are that response's.
func fail(w http.ResponseWriter, r *http.Request, c call, sending bool, trailers http.Header, err error) {
	out := w.Header()
	switch c.protocol {
	case protoGRPC:
		if sending {
			// connect-go flushes its headers as its Send fails: its
			// answer is headers, then trailers, not the Trailers-Only
			// answer internal/h2 gives an error before the headers went.
			flush(w)
		}
		addTrailers(out, http.TrailerPrefix, trailers)
		writeError(out, http.TrailerPrefix, err)
	case protoGRPCWeb:
		if !sending {
			// Trailers-only: they are the response's headers.
			addTrailers(out, "", trailers)
			writeError(out, "", err)
			flush(w)
			return
		}
		t := make(http.Header, len(trailers)+3)
		addTrailers(t, "", trailers)
		writeError(t, "", err)
		buf := getBuffer()
		defer putBuffer(buf)
		writeWebTrailers(w, t, buf)
	case protoConnect:
		// A JSON error with the code's HTTP status, as connect-go's
		// handler writes it. A GET's answer varies with Accept-Encoding
		// (said once more when a marshal failed, as connect-go does).
		vary(out, c)
		ce := asConnectError(err)
		if c.isGet() && connect.IsNotModifiedError(ce) {
			if !connect.IsWireError(ce) {
				mergeNonProtocol(out, ce.Meta())
			}
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_ = errorWriter.Write(w, r, ce)
	}
}

// vary says that a Connect GET's answer varies with Accept-Encoding, as
// connect-go says it: so that caches keep its gzip and identity answers
// apart.
func vary(out http.Header, c call) {
	if c.isGet() {
		out["Vary"] = append(out["Vary"], "Accept-Encoding")
	}
}

// errorWriter writes Connect unary errors (it reads nothing of the
// handler options Switchyard sets).
var errorWriter = connect.NewErrorWriter()

// writeError puts err in the trailers, each name after prefix, as
// connect-go's gRPC handler does: its metadata, then status, message and
// details.
func writeError(out http.Header, prefix string, err error) {
	ce := asConnectError(err)
	if !connect.IsWireError(ce) {
		addTrailers(out, prefix, ce.Meta())
	}
	out.Add(prefix+"Grpc-Status", strconv.Itoa(int(ce.Code())))
	out.Add(prefix+"Grpc-Message", percentEncode(ce.Message()))
	if details := ce.Details(); len(details) > 0 {
		out.Add(prefix+"Grpc-Status-Details-Bin", connect.EncodeBinaryHeader(statusBytes(ce, details)))
	}
}

// writeWebTrailers ends a gRPC-Web response: t, its names in lower case,
// in an envelope flagged as trailers. Then the response is flushed, as
// connect-go flushes it.
func writeWebTrailers(w http.ResponseWriter, t http.Header, buf *[]byte) {
	for k, v := range t {
		if lower := strings.ToLower(k); lower != k {
			delete(t, k)
			t[lower] = append(t[lower], v...)
		}
	}
	b := bytes.NewBuffer(append((*buf)[:0], 0x80, 0, 0, 0, 0))
	_ = t.Write(b) // a bytes.Buffer does not fail
	*buf = b.Bytes()
	binary.BigEndian.PutUint32((*buf)[1:5], uint32(len(*buf)-5)) //nolint:gosec // a few headers
	_, _ = w.Write(*buf)
	flush(w)
}

func flush(w http.ResponseWriter) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

// asConnectError codes err as connect-go does on its way to the wire.
func asConnectError(err error) *connect.Error {
	if ce, ok := errors.AsType[*connect.Error](err); ok && ce != nil {
		return ce
	}
	switch {
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	}
	return connect.NewError(connect.CodeUnknown, err)
}

// statusBytes is the google.rpc.Status of an error with details, encoded
// as connect-go encodes it: code, message, then each detail as an Any.
func statusBytes(ce *connect.Error, details []*connect.ErrorDetail) []byte {
	var b []byte
	if code := uint64(ce.Code()); code != 0 {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, code)
	}
	if msg := ce.Message(); msg != "" {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, msg)
	}
	for _, d := range details {
		var any []byte
		any = protowire.AppendTag(any, 1, protowire.BytesType)
		any = protowire.AppendString(any, "type.googleapis.com/"+d.Type())
		if v := d.Bytes(); len(v) > 0 {
			any = protowire.AppendTag(any, 2, protowire.BytesType)
			any = protowire.AppendBytes(any, v)
		}
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendBytes(b, any)
	}
	return b
}

// percentEncode escapes a grpc-message as the gRPC HTTP/2 spec asks:
// bytes outside printable ASCII, and '%'.
func percentEncode(msg string) string {
	escape := func(c byte) bool { return c < ' ' || c > '~' || c == '%' }
	n := 0
	for i := range len(msg) {
		if escape(msg[i]) {
			n++
		}
	}
	if n == 0 {
		return msg
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(msg) + 2*n)
	for i := range len(msg) {
		if c := msg[i]; escape(c) {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// protocolHeaders are the headers connect-go keeps a handler from setting
// (its mergeNonProtocolHeaders).
var protocolHeaders = map[string]struct{}{
	"Content-Type": {}, "Content-Length": {}, "Content-Encoding": {}, "Host": {},
	"User-Agent": {}, "Trailer": {}, "Date": {},
	"Accept-Encoding": {}, "Trailer-": {}, "Connect-Content-Encoding": {},
	"Connect-Accept-Encoding": {}, "Connect-Timeout-Ms": {}, "Connect-Protocol-Version": {},
	"Grpc-Encoding": {}, "Grpc-Accept-Encoding": {}, "Grpc-Timeout": {},
	"Grpc-Status": {}, "Grpc-Message": {}, "Grpc-Status-Details-Bin": {},
}

// addTrailers adds from's headers, protocol ones left out, to out, each
// name after prefix (http.TrailerPrefix declares them trailers).
func addTrailers(out http.Header, prefix string, from http.Header) {
	for k, vs := range from {
		if _, protocol := protocolHeaders[k]; protocol {
			continue
		}
		for _, v := range vs {
			out.Add(prefix+k, v)
		}
	}
}

// mergeNonProtocol adds from's headers, protocol ones left out, to into.
func mergeNonProtocol(into, from http.Header) {
	for k, vs := range from {
		if len(vs) == 0 {
			continue
		}
		if _, protocol := protocolHeaders[k]; !protocol {
			into[k] = append(into[k], vs...)
		}
	}
}

// replay is a request body with the bytes already read put back in front.
type replay struct {
	io.Reader
	body io.ReadCloser
}

func (b *replay) Close() error { return b.body.Close() }

// Buffers for one message and its envelope, reused across calls.
var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func getBuffer() *[]byte { return buffers.Get().(*[]byte) }

func putBuffer(b *[]byte) {
	if cap(*b) > MaxMessageBytes+16 {
		return // a large response's buffer is not kept
	}
	*b = (*b)[:0]
	buffers.Put(b)
}
