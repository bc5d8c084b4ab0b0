package outcome

import (
	"net/http"
	"net/url"
	"strings"
)

// Explained reports whether a response with status and no body of its own
// gets RejectionBody's explanation: the transport holds such a status back
// until it knows whether a body follows.
func Explained(status int) bool {
	return status == http.StatusUnsupportedMediaType || status == http.StatusMethodNotAllowed
}

// RejectionBody is the body a person reads in an answer that a handler
// ended with a bare status: connect-go answers a request whose content
// type it does not serve (or a GET it cannot read) with an empty HTTP 415,
// listing the accepted types only in Accept-Post, and a GET of a procedure
// that does not take one with an empty HTTP 405. The transport that
// records the call writes it, when the response has no body of its own,
// so that every way of reaching the server (HTTP/2 of either server,
// HTTP/1.1) explains it the same way. It sets header's Content-Type (and
// nosniff).
func RejectionBody(req *http.Request, status int, header http.Header) (string, bool) {
	if !Explained(status) || req.Method == http.MethodHead {
		return "", false
	}
	var b strings.Builder
	contentType := req.Header.Get("Content-Type")
	switch {
	case status == http.StatusMethodNotAllowed && req.Method == http.MethodGet:
		b.WriteString("this procedure does not answer GET: only unary procedures marked read-only " +
			"(idempotency_level NO_SIDE_EFFECTS) do; call it with POST")
	case status == http.StatusMethodNotAllowed:
		b.WriteString("this procedure does not answer ")
		b.WriteString(Echo(req.Method))
		b.WriteString("; call it with ")
		writeAllowed(&b, header)
	case req.Method == http.MethodGet:
		writeGETProblem(&b, req)
	case contentType == "":
		b.WriteString("the request has no Content-Type header")
	default:
		b.WriteString("this procedure is not served with Content-Type ")
		b.WriteString(Echo(contentType))
	}
	if accepted := header.Get("Accept-Post"); accepted != "" && req.Method == http.MethodPost {
		b.WriteString("; send one of: ")
		b.WriteString(accepted)
		b.WriteString(" (application/proto or application/json for Connect unary, application/connect+... for Connect streaming, application/grpc... for gRPC, application/grpc-web... for gRPC-Web)")
	}
	b.WriteString("\n")
	header.Set("Content-Type", "text/plain; charset=utf-8")
	// It repeats what the client sent: never to be read as HTML, as
	// net/http's Error says too.
	header.Set("X-Content-Type-Options", "nosniff")
	header.Del("Content-Length")
	return b.String(), true
}

// writeAllowed names the methods the response's Allow header lists
// ("GET, POST" for a procedure that takes Connect GETs): "GET or POST";
// POST when it lists none.
func writeAllowed(b *strings.Builder, header http.Header) {
	allow := header.Get("Allow")
	if strings.TrimSpace(allow) == "" {
		b.WriteString("POST")
		return
	}
	for i, m := range strings.Split(allow, ",") {
		if i > 0 {
			b.WriteString(" or ")
		}
		b.WriteString(strings.TrimSpace(m))
	}
}

// maxEcho bounds what an answer repeats of the request.
const maxEcho = 128

// Echo is a value the client sent, as an answer explaining a refusal
// repeats it: valid UTF-8, at most maxEcho bytes, and a copy (not the
// request's memory).
func Echo(s string) string {
	return strings.Clone(Shorten(strings.ToValidUTF8(s, "?"), maxEcho))
}

// writeGETProblem says why connect-go could not read a Connect GET: its
// query names no codec or one not served, or it has a body.
func writeGETProblem(b *strings.Builder, req *http.Request) {
	const form = " (?encoding=json&message=<the request as JSON>, or encoding=proto&base64=1&message=<base64 of the binary request>)"
	query, _ := url.ParseQuery(req.URL.RawQuery)
	switch encoding := query.Get("encoding"); {
	case encoding == "":
		b.WriteString("a GET request to a procedure names its codec and carries its message in the query" + form)
	case encoding != "json" && encoding != "proto":
		b.WriteString("a GET request's encoding is json or proto, not ")
		b.WriteString(Echo(encoding))
		b.WriteString(form)
	default:
		b.WriteString("a GET request to a procedure carries its message in the query" + form + " and must have no body")
	}
}
