package server

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/switchyard/switchyard/internal/grpcunary"
	"github.com/switchyard/switchyard/internal/outcome"
)

// methodsOf groups procs' method names by service path ("/pkg.Service/").
func methodsOf(procs []Procedure) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, p := range procs {
		i := strings.LastIndexByte(p.Path, '/')
		service := p.Path[:i+1]
		if out[service] == nil {
			out[service] = map[string]bool{}
		}
		out[service][p.Path[i+1:]] = true
	}
	return out
}

// unknownProcedure answers a call of a method the server does not serve
// (service is "/pkg.Service/"; known says the service is served) in the
// protocol the call was made in: code unimplemented, with a message that
// names what is served, as grpc-go's "unknown service" and "unknown
// method". connect-go's handlers and the ServeMux would answer a bare
// HTTP 404, which gRPC clients report as an HTTP error ("unexpected HTTP
// status code received from server: 404"). It answers nothing, and
// reports false, for a request in no RPC protocol (a browser's GET gets
// the ServeMux's 404 page).
func (s *Server) unknownProcedure(w http.ResponseWriter, r *http.Request, service, method string, known bool) bool {
	protocol, enveloped := outcome.ProtocolOf(r)
	if protocol == outcome.ProtocolHTTP {
		return false
	}
	name := outcome.Shorten(strings.Trim(service, "/"), maxEcho)
	method = outcome.Shorten(method, maxEcho)
	var msg strings.Builder
	switch {
	case known && method == "":
		msg.WriteString("the path names service " + name + " but no method; it has ")
		msg.WriteString(strings.Join(s.methodNames(service), ", "))
	case known:
		msg.WriteString("unknown method " + method + " for service " + name + "; it has " + strings.Join(s.methodNames(service), ", "))
	default:
		services := slices.Sorted(slices.Values(s.Services))
		msg.WriteString("unknown service " + name + "; this server serves " + strings.Join(services, ", "))
	}
	text := strings.ToValidUTF8(msg.String(), "?")
	h := w.Header()
	switch {
	case protocol == outcome.ProtocolGRPC || protocol == outcome.ProtocolGRPCWeb:
		// Trailers-only: the status in the header block, no body.
		h.Set("Content-Type", r.Header.Get("Content-Type"))
		h.Set("Grpc-Status", "12")
		h.Set("Grpc-Message", grpcunary.PercentEncode(text))
		w.WriteHeader(http.StatusOK)
	case enveloped:
		// Connect streaming: the error in the end-of-stream message.
		end, _ := json.Marshal(map[string]connectError{"error": {Code: "unimplemented", Message: text}})
		frame := binary.BigEndian.AppendUint32([]byte{connectEndStream}, uint32(len(end)))
		h.Set("Content-Type", r.Header.Get("Content-Type"))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(append(frame, end...))
	default:
		// Connect unary: the error as JSON, with HTTP 404.
		body, _ := json.Marshal(connectError{Code: "unimplemented", Message: text})
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write(body)
	}
	return true
}

// maxEcho bounds what an answer repeats of the path the client sent.
const maxEcho = 128

// methodNames is the sorted names of service's listed methods.
func (s *Server) methodNames(service string) []string {
	return slices.Sorted(maps.Keys(s.methods[service]))
}

// badBase64Query answers a Connect GET whose query says its message is
// base64 (base64=1) and whose message is not URL-safe base64 (padded or
// not, as connect-go reads it) with invalid_argument, and reports true.
// connect-go answers it "unknown" with HTTP 500, as if the server had
// failed (it maps every error reading a message to CodeUnknown), and
// internal/grpcunary hands such a GET to connect-go.
func badBase64Query(w http.ResponseWriter, r *http.Request) bool {
	if protocol, _ := outcome.ProtocolOf(r); protocol != outcome.ProtocolConnect {
		return false
	}
	q := r.URL.Query()
	if q.Get("base64") != "1" {
		return false
	}
	msg := q.Get("message")
	enc := base64.URLEncoding
	if len(msg)%4 != 0 {
		enc = base64.RawURLEncoding
	}
	_, err := enc.DecodeString(msg)
	if err == nil {
		return false
	}
	body, _ := json.Marshal(connectError{Code: "invalid_argument",
		Message: "the query's message is not URL-safe base64 (the alphabet A-Z a-z 0-9 - _, padded or not), as base64=1 says: " + err.Error()})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write(body)
	return true
}

// connectError is a Connect error's JSON.
type connectError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// connectEndStream flags Connect's end-of-stream message.
const connectEndStream = 0x02
