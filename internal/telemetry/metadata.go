package telemetry

import (
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/switchyard/switchyard/internal/outcome"
)

// A call's metadata, as the per-call log line shows it (the tutorials'
// servers print theirs): the request's header fields other than those the
// protocols, HTTP, browsers and proxies use, which the line shows in its
// own attributes or which say nothing about the call. Credentials are
// named, never shown, as is a value written as a credential
// (credentialValue) whatever its field's name. At most maxMetadataFields
// fields with names of at most maxMetadataKey bytes, each value cut to
// maxMetadataValue bytes: the header block may be 64 KiB.
const (
	maxMetadataFields = 16
	maxMetadataKey    = 64
	maxMetadataValue  = 128
	redacted          = "[redacted]"
)

// isMetadata reports whether the header field k (in canonical form) is
// call metadata. A switch, not a map: it runs for every field of every
// call.
func isMetadata(k string) bool {
	switch k {
	// Protocols: gRPC, gRPC-Web, Connect, tracing.
	case "Content-Type", "Content-Length", "Te", "User-Agent",
		"Grpc-Timeout", "Grpc-Encoding", "Grpc-Accept-Encoding", "X-Grpc-Web", "X-User-Agent",
		"Connect-Protocol-Version", "Connect-Timeout-Ms", "Connect-Content-Encoding", "Connect-Accept-Encoding",
		"Traceparent", "Tracestate",
		// HTTP, browsers and proxies (the peer attribute names the client).
		"Host", "Accept", "Accept-Encoding", "Accept-Language", "Content-Encoding",
		"Connection", "Keep-Alive", "Upgrade", "Http2-Settings",
		"Cache-Control", "Pragma", "Origin", "Referer", "Priority", "Dnt",
		"Access-Control-Request-Method", "Access-Control-Request-Headers",
		"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-Ip", "Forwarded", "Via":
		return false
	}
	return !strings.HasPrefix(k, "Sec-")
}

// secretWords are parts of the names of fields that carry credentials
// (Authorization, Proxy-Authorization, Cookie, and X-Api-Key,
// X-Auth-Request-Access-Token, X-Session-Id ...): such a field is named,
// its value not shown.
var secretWords = []string{"auth", "token", "secret", "passw", "apikey", "api-key", "session", "cookie", "credential", "signature", "private"}

// secretName reports whether the lower-case field name key looks like one
// of a credential.
func secretName(key string) bool {
	for _, w := range secretWords {
		if strings.Contains(key, w) {
			return true
		}
	}
	return false
}

// credentialValue reports whether one of a field's values is written as
// an Authorization credential is, "Bearer ..." or "Basic ..." (any case):
// a token sent under a name of the client's own (x-admin, grpcurl -H
// "admin: Bearer ...") is not shown either.
func credentialValue(vs []string) bool {
	for _, v := range vs {
		v = strings.TrimLeft(v, " \t")
		if hasFoldPrefix(v, "bearer ") || hasFoldPrefix(v, "basic ") {
			return true
		}
	}
	return false
}

// hasFoldPrefix is strings.HasPrefix without regard to ASCII case, for a
// lower-case prefix.
func hasFoldPrefix(s, lower string) bool {
	return len(s) >= len(lower) && strings.EqualFold(s[:len(lower)], lower)
}

// moreFields is the key of the count of fields left out: it holds '@',
// which no header field name can, so no client field takes its place.
const moreFields = "@more_fields"

// metadataOf is h's call metadata, keys in lower case (gRPC's form) and
// sorted; nil, without allocating, for a call that has none. Past
// maxMetadataFields, the first in that order are shown; a field whose
// name is longer than maxMetadataKey is not shown either (the header
// block may be 64 KiB), and both are counted in moreFields.
func metadataOf(h http.Header) []slog.Attr {
	var md []slog.Attr
	long := 0
	for k, vs := range h {
		if !isMetadata(k) {
			continue
		}
		if len(k) > maxMetadataKey {
			long++
			continue
		}
		key := strings.ToLower(k)
		v := redacted
		if !secretName(key) && !credentialValue(vs) {
			v = joinShort(vs)
		}
		md = append(md, slog.String(key, v))
	}
	if len(md) > 1 {
		slices.SortFunc(md, func(a, b slog.Attr) int { return strings.Compare(a.Key, b.Key) })
	}
	if more := long + max(len(md)-maxMetadataFields, 0); more > 0 {
		md = append(md[:min(len(md), maxMetadataFields)], slog.Int(moreFields, more))
	}
	return md
}

// joinShort is a field's values joined with ", ", cut to
// maxMetadataValue bytes (outcome.Shorten) and made valid UTF-8; no more
// of them than that is copied.
func joinShort(vs []string) string {
	var b strings.Builder
	for i, v := range vs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(v[:min(len(v), maxMetadataValue+1)])
		if b.Len() > maxMetadataValue {
			break
		}
	}
	// Cut first, on a rune's start, then mend: the "?" of a broken rune
	// is never longer than the bytes it stands for.
	return strings.ToValidUTF8(outcome.Shorten(b.String(), maxMetadataValue), "?")
}
