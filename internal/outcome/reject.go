package outcome

import (
	"net/http"
	"strings"
)

// RejectionBody is the body a person reads in an answer that a handler
// ended with a bare status: connect-go answers a request whose content
// type it does not serve (or a GET with a body) with an empty HTTP 415,
// and lists the accepted types only in Accept-Post. The transport that
// records the call writes it, when the response has no body of its own,
// so that every way of reaching the server (HTTP/2 of either server,
// HTTP/1.1) explains it the same way. It sets header's Content-Type.
func RejectionBody(req *http.Request, status int, header http.Header) (string, bool) {
	if status != http.StatusUnsupportedMediaType || req.Method == http.MethodHead {
		return "", false
	}
	var b strings.Builder
	contentType := req.Header.Get("Content-Type")
	switch {
	case req.Method == http.MethodGet:
		b.WriteString("a GET request to a procedure carries its message in the query (encoding=json&message=...) and must have no body")
	case contentType == "":
		b.WriteString("the request has no Content-Type header")
	default:
		b.WriteString("this procedure is not served with Content-Type ")
		b.WriteString(strings.Clone(strings.ToValidUTF8(contentType, "?")))
	}
	if accepted := header.Get("Accept-Post"); accepted != "" {
		b.WriteString("; send one of: ")
		b.WriteString(accepted)
		b.WriteString(" (application/proto or application/json for Connect unary, application/connect+... for Connect streaming, application/grpc... for gRPC, application/grpc-web... for gRPC-Web)")
	}
	b.WriteString("\n")
	header.Set("Content-Type", "text/plain; charset=utf-8")
	header.Del("Content-Length")
	return b.String(), true
}
