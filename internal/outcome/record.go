// Package outcome defines the record of a call's end, the one fact that
// Switchyard's logs, metrics and traces are all made from.
//
// The transport fills a Record for every request it serves — internal/h2
// for its HTTP/2 streams, Observe for HTTP/1.1 and for net/http's HTTP/2
// server — from what it writes on the wire: the gRPC status in the
// trailers (or a trailers-only HEADERS frame), the gRPC-Web trailer frame,
// the Connect unary error body or end-of-stream message, or else the HTTP
// status. So a call rejected before any handler (an undecodable body, an
// oversized message, a wrong content type, an unknown procedure, a bad
// timeout header) gets the same record as one that reached its handler,
// and a call counts as finished ("sent") only when its final status was
// handed to the socket, not when its handler returned.
//
// The package depends on the standard library only, so the transport can
// import it without pulling telemetry in.
package outcome

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// Protocol is the RPC protocol of a request, told by its content type.
type Protocol uint8

// Protocols. ProtocolHTTP is a request that is no RPC by its content type
// (a page, a preflight, or a call with a wrong or missing content type).
const (
	ProtocolHTTP Protocol = iota
	ProtocolGRPC
	ProtocolGRPCWeb
	ProtocolConnect
	numProtocols
)

// NumProtocols is how many Protocol values there are (for tables).
const NumProtocols = int(numProtocols)

var protocolNames = [...]string{"http", "grpc", "grpcweb", "connect"}

// String is the protocol's name as connect.Peer.Protocol spells it ("http"
// for requests that are no RPC).
func (p Protocol) String() string {
	if int(p) < len(protocolNames) {
		return protocolNames[p]
	}
	return "http"
}

// End is how a call ended.
type End uint8

// Ends.
const (
	// EndSent: the final status (trailers, trailer frame, end-of-stream
	// message or the whole response) was handed to the socket.
	EndSent End = iota
	// EndClientReset: the client reset the stream (RST_STREAM) first.
	EndClientReset
	// EndServerReset: the server reset the stream (a protocol error, a
	// handler that did not finish its response, a stalled send window).
	EndServerReset
	// EndConnClosed: the connection ended first.
	EndConnClosed
	numEnds
)

// NumEnds is how many End values there are (for tables).
const NumEnds = int(numEnds)

var endNames = [...]string{"sent", "client_reset", "server_reset", "conn_closed"}

func (e End) String() string {
	if int(e) < len(endNames) {
		return endNames[e]
	}
	return "unknown"
}

// Record is one call's outcome. The transport owns it and hands it to an
// Observer when the call starts and when it ends; an Observer must not keep
// the pointer after CallEnded returns (internal/h2 keeps the record inside
// its stream, which is not reused, but the HTTP/1.1 observer's is pooled).
type Record struct {
	Start     time.Time
	Duration  time.Duration // from the request's headers to the end
	Procedure string        // the request path, "/pkg.Service/Method" for RPCs
	Protocol  Protocol
	// Code is the status the client was given: from the wire for a sent
	// call. For one that did not end sent, what its client reports:
	// deadline_exceeded when it had a deadline (grpc-timeout,
	// connect-timeout-ms) that had passed when the call ended; else
	// canceled for its own reset; for a closed connection canceled when
	// the peer closed it, unavailable when the server did (Observe's
	// HTTP/1.1 cannot tell the two: canceled, but for a call the server
	// had ended first, with ErrCallEnded: unavailable); for a server
	// reset the reset's mapping.
	Code Code
	End  End
	// Handled is set when the call reached its RPC handler (its
	// interceptors ran); a call that did not was rejected before it.
	Handled bool
	// HTTPStatus is the response's status; 0 for a call that ended
	// before its response's header went out (or, served by net/http,
	// before its handler wrote one).
	HTTPStatus int
	// Request and response body bytes as they crossed the transport
	// (framing included, before any decompression), and the messages in
	// them (envelopes; a Connect unary request is one once its body came
	// or its handler had it, a response one when it is a 200; a
	// transport's plain-text explanation of a rejection is none).
	BytesIn, BytesOut int64
	MsgsIn, MsgsOut   int64
	// Peer is the client's address: the connection's, or the client a
	// trusted proxy named (-trusted-proxies), for rejected calls too;
	// once the handler sees the request (Handled), the one it saw.
	Peer      string
	UserAgent string
	// Message is the error message the client was given (grpc-message, the
	// Connect error's message) or why the transport ended the call.
	Message string
	// Header is the request's header, while the call runs (sinks read
	// traceparent from it at the start). Nil after CallEnded.
	Header http.Header
	// Span belongs to the tracing sink: set by CallStarted, ended by
	// CallEnded.
	Span any

	// The wire's state, its small fields first: a record travels inside
	// internal/h2's per-stream allocation, whose size class it decides.
	wire      wireKind
	text      bool // gRPC-Web text: bodies are base64
	explained bool // the response body is a transport's explanation (Explain): no messages
	inText    base64Quanta
	outText   base64Quanta
	in, out   envelopeScanner
	endFrame  captured // the trailer frame or end-of-stream message, or a unary error body
}

// wireKind is how a protocol frames its bodies.
type wireKind uint8

const (
	wirePlain     wireKind = iota // no framing: a page, a rejected call
	wireEnvelopes                 // gRPC, gRPC-Web, Connect streaming: 5-byte prefixed messages
	wireUnary                     // Connect unary: the body is the message, or a JSON error
)

// maxUserAgent bounds a record's UserAgent, as the log line bounds its
// procedure.
const maxUserAgent = 256

// Begin starts the record of req, which arrived at start.
func (r *Record) Begin(req *http.Request, start time.Time) {
	r.Start = start
	r.Procedure = ProcedurePath(req)
	r.Header = req.Header
	r.Peer = req.RemoteAddr
	if ua := req.Header["User-Agent"]; len(ua) > 0 {
		// Bounded: it goes into every sink, and a client can send 64 KiB
		// of it, over HTTP/2 again and again for a byte through HPACK.
		r.UserAgent = Shorten(ua[0], maxUserAgent)
	}
	var contentType string
	if ct := req.Header["Content-Type"]; len(ct) > 0 {
		contentType = ct[0]
	}
	r.Protocol, r.wire, r.text = classify(req.Method, contentType, req.URL.RawQuery)
	switch r.Protocol {
	case ProtocolGRPCWeb:
		r.out.endFlag = flagGRPCWebTrailer
	case ProtocolConnect:
		r.out.endFlag = flagConnectEnd
	}
}

// WroteHeader notes the response status as the handler decides it (before
// its body is written).
func (r *Record) WroteHeader(status int) { r.HTTPStatus = status }

// ReadBody accounts for request body bytes as they arrive.
func (r *Record) ReadBody(p []byte) {
	r.BytesIn += int64(len(p))
	if r.wire != wireEnvelopes {
		return
	}
	if r.text {
		r.inText.feed(p, &r.in, nil)
		return
	}
	r.in.feed(p, nil)
}

// WroteBody accounts for response body bytes as the handler writes them.
func (r *Record) WroteBody(p []byte) {
	r.BytesOut += int64(len(p))
	if r.explained {
		return
	}
	switch r.wire {
	case wireEnvelopes:
		if r.text {
			r.outText.feed(p, &r.out, &r.endFrame)
			return
		}
		r.out.feed(p, &r.endFrame)
	case wireUnary:
		if r.HTTPStatus != http.StatusOK {
			r.endFrame.add(p) // a Connect unary error body: JSON
		}
	}
}

// Finish completes the record when the call is over: status and header are
// the response's as written (header holds the trailers too, as a
// ResponseWriter's map does at the end: declared names or
// http.TrailerPrefix keys); end says how it ended; endCode is the code of
// a server reset, or of a closed connection: CodeCanceled when the peer
// closed it, CodeUnavailable when the server did.
func (r *Record) Finish(now time.Time, status int, header http.Header, end End, endCode Code) {
	r.Duration = now.Sub(r.Start)
	r.HTTPStatus = status
	r.End = end
	if end != EndSent {
		// The code the client reports: its deadline's, once that has
		// passed (its own timer fired, whatever the transport saw
		// after), else its own cancel's for its reset.
		switch {
		case r.deadlinePassed(now):
			r.Code = CodeDeadlineExceeded
		case end == EndClientReset:
			r.Code = CodeCanceled
		default:
			r.Code = endCode
		}
		return
	}
	code, msg := r.status(status, header)
	if msg == "" {
		msg = r.Message // the explanation of a bare rejection (Explain)
	}
	r.Code, r.Message = code, Shorten(msg, maxMessageBytes)
	if r.wire == wireUnary {
		// The request is one message once it came (a GET's in its
		// query, an empty one as no bytes: the handler had it); one
		// refused before it was read (an unknown procedure, a GET not
		// served) is none, as an envelope never read is none.
		if r.Handled || r.BytesIn > 0 {
			r.MsgsIn = 1
		}
		if status == http.StatusOK {
			r.MsgsOut = 1
		}
		return
	}
	r.MsgsIn, r.MsgsOut = r.in.msgs, r.out.msgs
}

// maxMessageBytes bounds a record's Message: a message may repeat what
// the client sent (a path, a header), and every log line and span carries
// it.
const maxMessageBytes = 1024

// ProcedurePath is the path that names req's procedure: as the client
// sent it. A procedure's path, "/package.Service/Method", needs no
// %-escapes; one sent with them ("/pkg.Service%2FMethod", "%50utTeam")
// names no procedure, as for grpc-go, which routes on :path as sent. Were
// it unescaped first, a proxy's rule on the path ("deny
// /teams.v1.TeamsService/PutTeam") would see one procedure and the server
// serve another.
func ProcedurePath(req *http.Request) string {
	if req.URL.RawPath != "" {
		return req.URL.RawPath
	}
	return req.URL.Path
}

// Shorten is s cut to at most max bytes, on a rune's boundary, with "..."
// in place of what was cut.
func Shorten(s string, max int) string {
	if len(s) <= max {
		return s
	}
	return Cut(s, max-len("...")) + "..."
}

// Cut is s cut to at most n bytes, at the start of a rune: a cut inside a
// multi-byte character would leave an invalid sequence (which OTLP
// refuses, and a log line shows as a broken character). A byte that
// starts no rune within utf8.UTFMax of n is invalid already: s is cut at n.
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for i := n; i > n-utf8.UTFMax && i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i]
		}
	}
	return s[:n]
}

// Explain records the explanation a transport is about to write for a
// bare rejection (RejectionBody) as the call's message: the status says
// nothing more. Its bytes, which WroteBody is given next, are counted,
// but are plain text: the envelope scanner would read its first five
// letters as a message's prefix.
func (r *Record) Explain(body string) {
	r.Message = strings.TrimSuffix(body, "\n")
	r.explained = true
}

// ErrCallEnded is the cause with which a server cancels the contexts of
// the calls it ends when a grace period is over (server.Stack.EndCalls),
// and what those calls answer (UNAVAILABLE). A call whose context ended so
// ended as its answer went out: not its client's going.
var ErrCallEnded = errors.New("the server ended the call, which outlived its shutdown's or its connection's grace period: retry it")

// Reset clears r for reuse.
func (r *Record) Reset() { *r = Record{} }

// status derives the call's code and error message from the response.
func (r *Record) status(status int, header http.Header) (Code, string) {
	switch r.Protocol {
	case ProtocolGRPC, ProtocolGRPCWeb:
		if code, msg, ok := grpcStatus(header); ok {
			return code, msg
		}
		if r.Protocol == ProtocolGRPCWeb && r.endFrame.kind == frameGRPCWebTrailer {
			if code, msg, ok := r.endFrame.grpcWebTrailer(); ok {
				return code, msg
			}
		}
		if status != http.StatusOK {
			return CodeFromHTTP(status), ""
		}
		// A 200 without a status: grpc-go reports this as INTERNAL.
		return CodeInternal, "the response carried no grpc-status"
	case ProtocolConnect:
		if r.wire == wireEnvelopes {
			if status != http.StatusOK {
				return CodeFromHTTP(status), ""
			}
			if r.endFrame.kind == frameConnectEnd {
				return r.endFrame.connectError(true)
			}
			return CodeInternal, "the stream ended without an end-of-stream message"
		}
		if status == http.StatusOK || status == http.StatusNotModified {
			return CodeOK, ""
		}
		if code, msg := r.endFrame.connectError(false); code != CodeOK {
			return code, msg
		}
		return CodeFromHTTP(status), ""
	}
	if status < 400 {
		return CodeOK, ""
	}
	return CodeFromHTTP(status), ""
}

// Observer receives the records of the calls a transport serves, and the
// transport's events. Calls are made on the goroutines of the calls and
// connections: implementations must be safe for concurrent use and cheap.
type Observer interface {
	// CallStarted is called when a request's headers have arrived, before
	// its handler runs.
	CallStarted(r *Record)
	// CallEnded is called once the call is over, with Finish done.
	CallEnded(r *Record)
	// Transport events of HTTP/2 (internal/h2).
	StreamReset(byClient bool, code uint32)
	StreamRefused()
	GoAway(code uint32, reason GoAwayReason)
	PingTimeout()
	WriteTimeout()
}

// GoAwayReason says why a server sent a connection's final GOAWAY.
type GoAwayReason uint8

// The reasons for a final GOAWAY.
const (
	// GoAwayShutdown: the server is shutting down (SIGTERM, drain).
	GoAwayShutdown GoAwayReason = iota
	// GoAwayMaxAge: the connection reached its maximum age, so that the
	// client reconnects and load spreads over the replicas.
	GoAwayMaxAge
	// GoAwayIdle: no stream for the idle timeout.
	GoAwayIdle
	// GoAwayClient: the client sent GOAWAY first.
	GoAwayClient
	// GoAwayError: a connection error; the GOAWAY's code says which.
	GoAwayError
	// GoAwayHandler: a handler asked for the connection's end
	// (Connection: close in its response).
	GoAwayHandler
	// NumGoAwayReasons counts the reasons, for tables indexed by them.
	NumGoAwayReasons
)

var goAwayReasons = [NumGoAwayReasons]string{"shutdown", "max_age", "idle", "client_goaway", "connection_error", "handler_close"}

// String is the reason as a metric label: "shutdown", "max_age", "idle",
// "client_goaway", "connection_error" or "handler_close".
func (r GoAwayReason) String() string {
	if r < NumGoAwayReasons {
		return goAwayReasons[r]
	}
	return "unknown"
}

// recordKey finds a call's Record in its request context.
type recordKey struct{}

// ContextKey is the context key under which a transport makes a call's
// *Record available to its handler (internal/h2 answers it from the
// stream's own context, without a context.WithValue).
var ContextKey any = recordKey{}

// FromContext returns the record of the call whose request context ctx is
// (or is derived from), or nil.
func FromContext(ctx context.Context) *Record {
	r, _ := ctx.Value(ContextKey).(*Record)
	return r
}

// Recorder is a ResponseWriter whose transport records the call itself
// (internal/h2's): Observe passes its requests through.
type Recorder interface {
	OutcomeRecord() *Record
}
