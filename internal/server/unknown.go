package server

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"connectrpc.com/connect"

	"github.com/switchyard/switchyard/internal/grpcunary"
	"github.com/switchyard/switchyard/internal/outcome"
)

// indexProcedures maps each of procs' paths to its service's handler in
// services, and each service's path ("/pkg.Service/") to its methods'
// names, sorted and joined for unknownProcedure's messages.
func indexProcedures(procs []Procedure, services map[string]http.Handler) (handlers map[string]http.Handler, methods map[string]string) {
	handlers, names := map[string]http.Handler{}, map[string][]string{}
	for _, p := range procs {
		i := strings.LastIndexByte(p.Path, '/')
		service := p.Path[:i+1]
		handlers[p.Path] = services[service]
		names[service] = append(names[service], p.Path[i+1:])
	}
	methods = make(map[string]string, len(names))
	for service, n := range names {
		slices.Sort(n)
		methods[service] = strings.Join(n, ", ")
	}
	return handlers, methods
}

// unknownProcedure answers a call of a method the server does not serve
// (service is "/pkg.Service/", empty when the path names none; known says
// the service is served) in the
// protocol the call was made in (connect.ErrorWriter): code
// unimplemented, with a message that names what is served, as grpc-go's
// "unknown service" and "unknown method". connect-go's handlers and the
// ServeMux would answer a bare HTTP 404, which gRPC clients report as an
// HTTP error ("unexpected HTTP status code received from server: 404").
// It answers nothing, and reports false, for a request in no RPC protocol
// (a browser's GET gets the ServeMux's 404 page).
func (s *Server) unknownProcedure(w http.ResponseWriter, r *http.Request, service, method string, known bool) bool {
	protocol, enveloped := outcome.ProtocolOf(r)
	if protocol == outcome.ProtocolHTTP {
		return false
	}
	name, method := outcome.Echo(strings.Trim(service, "/")), outcome.Echo(method)
	var msg string
	switch {
	case r.URL.RawPath != "":
		msg = "the path " + outcome.Echo(r.URL.RawPath) + " names no procedure: a procedure's path is sent as it is named, without %-escapes (/package.Service/Method)"
	case service == "":
		msg = "the path " + outcome.Echo(r.URL.Path) + " names no procedure (/package.Service/Method); " + s.served
	case known && method == "":
		msg = "the path names service " + name + " but no method; it has " + s.methods[service]
	case known:
		msg = "unknown method " + method + " for service " + name + "; it has " + s.methods[service]
	default:
		msg = "unknown service " + name + "; " + s.served
	}
	if protocol == outcome.ProtocolConnect && !enveloped {
		// Connect unary: HTTP 404, as connect-go's own answer to a path
		// it does not route, where ErrorWriter would make it 501.
		w = withStatus{w, http.StatusNotFound}
	}
	_ = s.errors.Write(w, r, connect.NewError(connect.CodeUnimplemented, errors.New(msg)))
	return true
}

// withStatus is a ResponseWriter whose WriteHeader sends status instead.
type withStatus struct {
	http.ResponseWriter
	status int
}

func (w withStatus) WriteHeader(int) { w.ResponseWriter.WriteHeader(w.status) }

// badBase64Query answers a Connect GET of a procedure that takes GETs
// (elsewhere the path decides the answer) whose query says its message is
// base64 (base64=1) and whose message is not URL-safe base64 (padded or
// not, as connect-go reads it) with invalid_argument, and reports true.
// connect-go answers it "unknown" with HTTP 500, as if the server had
// failed (it maps every error reading a message to CodeUnknown), and
// internal/grpcunary hands such a GET to connect-go.
func (s *Server) badBase64Query(w http.ResponseWriter, r *http.Request) bool {
	if protocol, _ := outcome.ProtocolOf(r); protocol != outcome.ProtocolConnect {
		return false
	}
	q := r.URL.Query()
	if q.Get("base64") != "1" {
		return false
	}
	msg := q.Get("message")
	_, err := grpcunary.QueryBase64(msg).DecodeString(msg)
	if err == nil {
		return false
	}
	_ = s.errors.Write(w, r, connect.NewError(connect.CodeInvalidArgument, errors.New(
		"the query's message is not URL-safe base64 (the alphabet A-Z a-z 0-9 - _, padded or not), as base64=1 says: "+err.Error())))
	return true
}
