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
// named, never shown. At most maxMetadataFields fields, each value cut to
// maxMetadataValue bytes: the header block may be 64 KiB.
const (
	maxMetadataFields = 16
	maxMetadataValue  = 128
	redacted          = "[redacted]"
)

// metadataField says whether the header field k (in canonical form) is
// call metadata, and whether it is a credential: named, not shown. A
// switch, not a map: it runs for every field of every call.
func metadataField(k string) (show, credential bool) {
	switch k {
	case "Authorization", "Proxy-Authorization", "Cookie":
		return true, true
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
		return false, false
	}
	return !strings.HasPrefix(k, "Sec-"), false
}

// metadataOf is h's call metadata, keys in lower case (gRPC's form) and
// sorted; nil, without allocating, for a call that has none. Past
// maxMetadataFields, the first in that order are shown.
func metadataOf(h http.Header) []slog.Attr {
	var md []slog.Attr
	for k, vs := range h {
		show, credential := metadataField(k)
		if !show {
			continue
		}
		v := redacted
		if !credential {
			v = strings.Join(vs, ", ")
		}
		md = append(md, slog.String(strings.ToLower(k), v))
	}
	if len(md) > 1 {
		slices.SortFunc(md, func(a, b slog.Attr) int { return strings.Compare(a.Key, b.Key) })
	}
	if len(md) > maxMetadataFields {
		md = append(md[:maxMetadataFields], slog.Int("more_fields", len(md)-maxMetadataFields))
	}
	for i, a := range md[:min(len(md), maxMetadataFields)] {
		md[i].Value = slog.StringValue(outcome.Shorten(strings.ToValidUTF8(a.Value.String(), "?"), maxMetadataValue))
	}
	return md
}
