package telemetry

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard/switchyard/internal/outcome"
)

// otlpExporter sends spans to an OTLP/HTTP collector as protobuf
// (POST <endpoint>/v1/traces). It is Switchyard's own because the SDK's
// otlptracehttp links grpc-go into the binary (its shared configuration
// package and the OTLP collector protos import it); the message it sends
// is tracepb.TracesData, which is wire-identical to the collector's
// ExportTraceServiceRequest.
//
// An export the collector could not take now — OTLP/HTTP's retryable
// answers (429, 502, 503, 504) or no connection — is sent again after a
// backoff, or after the collector's Retry-After, for as long as the
// export's timeout allows, so that a collector restarting loses no spans.
// An export still failing then, or refused outright (400, or a TLS
// mismatch that only a change of configuration fixes), is returned to
// the batch processor, which drops the batch: spans are not worth a queue
// that outlives the timeout.
type otlpExporter struct {
	url     string
	shown   string // url for errors: its password, if any, redacted
	headers map[string]string
	gzip    bool
	client  *http.Client
	timeout time.Duration
	spans   *spanCounts // if set, counts the spans exported and failed

	// The variables that set the endpoint, the headers and the CA (the
	// general ones when neither is set): an export's error names the
	// one to fix.
	endpointVar, headersVar, certVar, timeoutVar string
}

// newOTLPExporter reads the standard variables: OTEL_EXPORTER_OTLP_[TRACES_]
// ENDPOINT, HEADERS, TIMEOUT (ms), COMPRESSION (gzip|none) and
// CERTIFICATE (a PEM CA file for https).
func newOTLPExporter(getenv func(string) string) (*otlpExporter, error) {
	// env returns a setting and the variable it came from, which an
	// error names: the one a person has to fix.
	env := func(name string) (value, from string) {
		if v := getenv("OTEL_EXPORTER_OTLP_TRACES_" + name); v != "" {
			return v, "OTEL_EXPORTER_OTLP_TRACES_" + name
		}
		return getenv("OTEL_EXPORTER_OTLP_" + name), "OTEL_EXPORTER_OTLP_" + name
	}
	e := &otlpExporter{headers: map[string]string{}, timeout: 10 * time.Second}
	endpoint, from := env("ENDPOINT")
	e.endpointVar = from
	appended := "" // what the URL adds to the variable's value
	switch {
	case endpoint == "":
		e.url = "http://localhost:4318/v1/traces"
	case from == "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT":
		e.url = endpoint // used as given
	default:
		appended = "/v1/traces"
		e.url = strings.TrimSuffix(endpoint, "/") + appended
	}
	// A collector's credentials may be in the URL: no error shows them.
	u, err := url.Parse(e.url)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // without the URL
		}
		return nil, fmt.Errorf("%s: %w; want an http:// or https:// URL", from, err)
	}
	e.shown = u.Redacted()
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s=%q: want an http:// or https:// URL", from, strings.TrimSuffix(e.shown, appended))
	}
	h, from := env("HEADERS")
	e.headersVar = from
	if h != "" {
		after := "the first pair"
		for pair := range strings.SplitSeq(h, ",") {
			k, v, ok := strings.Cut(pair, "=")
			if !ok {
				// Not quoted: it may be a credential whose "=" was typed
				// as a space ("Authorization Bearer ...").
				return nil, fmt.Errorf("%s: %s is not key=value; want comma-separated key=value pairs, the values URL-encoded", from, after)
			}
			k, _ = url.QueryUnescape(strings.TrimSpace(k))
			after = "the pair after " + k
			v, _ = url.QueryUnescape(strings.TrimSpace(v))
			e.headers[k] = v
		}
	}
	t, from := env("TIMEOUT")
	e.timeoutVar = from
	if t != "" {
		ms, err := strconv.Atoi(t)
		if err != nil || ms <= 0 {
			return nil, fmt.Errorf("%s=%q: want milliseconds", from, t)
		}
		e.timeout = time.Duration(ms) * time.Millisecond
	}
	switch c, from := env("COMPRESSION"); c {
	case "", "none":
	case "gzip":
		e.gzip = true
	default:
		return nil, fmt.Errorf("%s=%q: want gzip or none", from, c)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	ca, from := env("CERTIFICATE")
	e.certVar = from
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", from, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s %s: no PEM certificate in it", from, ca)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	e.client = &http.Client{Transport: tr}
	return e, nil
}

// ExportSpans implements sdktrace.SpanExporter.
func (e *otlpExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) (err error) {
	if len(spans) == 0 {
		return nil
	}
	if c := e.spans; c != nil {
		n := int64(len(spans))
		c.queued.Add(-n)
		c.exporting.Add(n)
		defer func() {
			c.exporting.Add(-n)
			if err != nil {
				c.exportFailed.Add(n)
			} else {
				c.exported.Add(n)
			}
		}()
	}
	body, err := proto.Marshal(tracesData(spans))
	if err != nil {
		return err
	}
	if e.gzip {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(body)
		_ = zw.Close()
		body = buf.Bytes()
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	backoff := otlpFirstBackoff
	for {
		wait, err := e.post(ctx, body)
		if err == nil || wait < 0 {
			return err
		}
		if wait == 0 {
			// Half the backoff and up to as much again: replicas whose
			// exports failed together do not all come back at once.
			wait = backoff/2 + rand.N(backoff/2+1)
			backoff = min(2*backoff, otlpMaxBackoff)
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return err // no time for another try
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// The backoff between tries of an export: doubling from the first to the
// last, within the export's timeout (OTEL_EXPORTER_OTLP_TIMEOUT, 10 s by
// default).
const (
	otlpFirstBackoff = 100 * time.Millisecond
	otlpMaxBackoff   = 2 * time.Second
)

// post sends body once. When it fails, wait tells whether to try again:
// below zero not, zero after the backoff, above zero after that long (the
// collector's Retry-After).
func (e *otlpExporter) post(ctx context.Context, body []byte) (wait time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return -1, err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	if e.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	for k, v := range e.headers {
		req.Header.Set(k, v)
	}
	res, err := e.client.Do(req)
	if err != nil {
		// net/http's error names the URL with its password as "***".
		hint, retry := e.connHint(err)
		if wait = 0; !retry {
			wait = -1
		}
		return wait, fmt.Errorf("OTLP export: %w; %s", err, hint) // ExportSpans stops once ctx is done
	}
	defer res.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if res.StatusCode/100 == 2 {
		return 0, nil
	}
	// What the collector says, and what to fix here.
	var says []string
	// Text, or no type at all (as Go's TLS server answers a request in
	// cleartext): its first line, if printable. OTLP's protobuf Status is
	// not shown.
	if ct := res.Header.Get("Content-Type"); ct == "" || strings.HasPrefix(ct, "text/plain") {
		line, _, _ := strings.Cut(strings.TrimSpace(string(answer)), "\n")
		line = validUTF8(outcome.Cut(strings.TrimSpace(e.redact(line)), 200))
		if line != "" && strings.IndexFunc(line, unicode.IsControl) < 0 {
			says = append(says, line)
		}
	}
	switch res.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		says = append(says, "check the credentials in "+e.headersVar)
	case http.StatusNotFound:
		says = append(says, "check the path of "+e.endpointVar)
	}
	err = fmt.Errorf("OTLP export: %s from %s", res.Status, e.shown)
	if len(says) > 0 {
		err = fmt.Errorf("%w: %s", err, strings.Join(says, "; "))
	}
	switch res.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		if secs, perr := strconv.Atoi(strings.TrimSpace(res.Header.Get("Retry-After"))); perr == nil && secs > 0 {
			wait = time.Duration(secs) * time.Second
		}
		return wait, err
	}
	return -1, err
}

// redact replaces in a collector's answer the values of the headers sent
// (OTEL_EXPORTER_OTLP_HEADERS), whole or word by word, with "***": one
// that echoes the key it refused must not put it in the log.
func (e *otlpExporter) redact(s string) string {
	for _, v := range e.headers {
		if len(v) >= 4 {
			s = strings.ReplaceAll(s, v, "***")
		}
		for _, word := range strings.Fields(v) {
			if len(word) >= 8 {
				s = strings.ReplaceAll(s, word, "***")
			}
		}
	}
	return s
}

// connHint says what to check when an export got no answer, and whether
// to try again: not when the configuration must change first (the
// retries would end in the timeout's error, which hides this one).
func (e *otlpExporter) connHint(err error) (hint string, retry bool) {
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	switch {
	case errors.As(err, &unknownCA):
		return "set " + e.certVar + ": a PEM file of the CA that signed the collector's certificate", false
	case errors.As(err, &hostname):
		return "the collector's certificate does not name the host of " + e.endpointVar, false
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"): // net/http's, not exported
		return "the collector at " + e.endpointVar + " answers in cleartext: make it an http:// URL", false
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("the collector at %s did not answer within the export timeout (%s, %v)", e.endpointVar, e.timeoutVar, e.timeout), true
	}
	return "no collector answers at " + e.endpointVar, true
}

// Shutdown implements sdktrace.SpanExporter.
func (e *otlpExporter) Shutdown(context.Context) error {
	e.client.CloseIdleConnections()
	return nil
}

// tracesData converts spans to OTLP, grouped by resource and scope.
func tracesData(spans []sdktrace.ReadOnlySpan) *tracepb.TracesData {
	type scopeKey struct{ name, version string }
	var out tracepb.TracesData
	resources := map[attribute.Distinct]*tracepb.ResourceSpans{}
	scopes := map[*tracepb.ResourceSpans]map[scopeKey]*tracepb.ScopeSpans{}
	for _, s := range spans {
		res := s.Resource()
		key := res.Equivalent()
		rs := resources[key]
		if rs == nil {
			rs = &tracepb.ResourceSpans{Resource: &resourcepb.Resource{Attributes: keyValues(res.Attributes())}, SchemaUrl: validUTF8(res.SchemaURL())}
			resources[key] = rs
			scopes[rs] = map[scopeKey]*tracepb.ScopeSpans{}
			out.ResourceSpans = append(out.ResourceSpans, rs)
		}
		is := s.InstrumentationScope()
		sk := scopeKey{is.Name, is.Version}
		ss := scopes[rs][sk]
		if ss == nil {
			ss = &tracepb.ScopeSpans{Scope: &commonpb.InstrumentationScope{Name: validUTF8(is.Name), Version: validUTF8(is.Version)},
				SchemaUrl: validUTF8(is.SchemaURL)}
			scopes[rs][sk] = ss
			rs.ScopeSpans = append(rs.ScopeSpans, ss)
		}
		ss.Spans = append(ss.Spans, spanProto(s))
	}
	return &out
}

func spanProto(s sdktrace.ReadOnlySpan) *tracepb.Span {
	sc := s.SpanContext()
	tid, sid := sc.TraceID(), sc.SpanID()
	p := &tracepb.Span{
		TraceId:                tid[:],
		SpanId:                 sid[:],
		TraceState:             sc.TraceState().String(),
		Flags:                  uint32(sc.TraceFlags()) | 0x100, // has-is-remote known
		Name:                   validUTF8(s.Name()),
		Kind:                   spanKind(s.SpanKind()),
		StartTimeUnixNano:      uint64(s.StartTime().UnixNano()),
		EndTimeUnixNano:        uint64(s.EndTime().UnixNano()),
		Attributes:             keyValues(s.Attributes()),
		DroppedAttributesCount: uint32(s.DroppedAttributes()),
		DroppedEventsCount:     uint32(s.DroppedEvents()),
		DroppedLinksCount:      uint32(s.DroppedLinks()),
	}
	if parent := s.Parent(); parent.IsValid() {
		psid := parent.SpanID()
		p.ParentSpanId = psid[:]
		if parent.IsRemote() {
			p.Flags |= 0x200
		}
	}
	for _, ev := range s.Events() {
		p.Events = append(p.Events, &tracepb.Span_Event{TimeUnixNano: uint64(ev.Time.UnixNano()), Name: validUTF8(ev.Name),
			Attributes: keyValues(ev.Attributes), DroppedAttributesCount: uint32(ev.DroppedAttributeCount)})
	}
	for _, l := range s.Links() {
		ltid, lsid := l.SpanContext.TraceID(), l.SpanContext.SpanID()
		p.Links = append(p.Links, &tracepb.Span_Link{TraceId: ltid[:], SpanId: lsid[:], TraceState: l.SpanContext.TraceState().String(),
			Attributes: keyValues(l.Attributes), DroppedAttributesCount: uint32(l.DroppedAttributeCount), Flags: uint32(l.SpanContext.TraceFlags())})
	}
	switch st := s.Status(); st.Code {
	case codes.Error:
		p.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: validUTF8(st.Description)}
	case codes.Ok:
		p.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_OK}
	}
	return p
}

func spanKind(k trace.SpanKind) tracepb.Span_SpanKind {
	switch k {
	case trace.SpanKindInternal:
		return tracepb.Span_SPAN_KIND_INTERNAL
	case trace.SpanKindServer:
		return tracepb.Span_SPAN_KIND_SERVER
	case trace.SpanKindClient:
		return tracepb.Span_SPAN_KIND_CLIENT
	case trace.SpanKindProducer:
		return tracepb.Span_SPAN_KIND_PRODUCER
	case trace.SpanKindConsumer:
		return tracepb.Span_SPAN_KIND_CONSUMER
	}
	return tracepb.Span_SPAN_KIND_UNSPECIFIED
}

func keyValues(attrs []attribute.KeyValue) []*commonpb.KeyValue {
	if len(attrs) == 0 {
		return nil
	}
	out := make([]*commonpb.KeyValue, 0, len(attrs))
	for _, kv := range attrs {
		out = append(out, &commonpb.KeyValue{Key: validUTF8(string(kv.Key)), Value: anyValue(kv.Value)})
	}
	return out
}

// anyValue maps each kind of attribute value onto OTLP's AnyValue: bytes
// as bytes_value, maps as kvlist_value, slices as array_value (element by
// element), and an empty value as an AnyValue with none set, which OTLP
// reads as empty. None of them is flattened into a string.
func anyValue(v attribute.Value) *commonpb.AnyValue {
	switch v.Type() {
	case attribute.BOOL:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: v.AsBool()}}
	case attribute.INT64:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v.AsInt64()}}
	case attribute.FLOAT64:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: v.AsFloat64()}}
	case attribute.STRING:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: validUTF8(v.AsString())}}
	case attribute.BYTESLICE:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: v.AsByteSlice()}}
	case attribute.MAP:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: keyValues(v.AsMap())}}}
	case attribute.EMPTY:
		return &commonpb.AnyValue{}
	case attribute.BOOLSLICE:
		return arrayValue(v.AsBoolSlice(), attribute.BoolValue)
	case attribute.INT64SLICE:
		return arrayValue(v.AsInt64Slice(), attribute.Int64Value)
	case attribute.FLOAT64SLICE:
		return arrayValue(v.AsFloat64Slice(), attribute.Float64Value)
	case attribute.STRINGSLICE:
		return arrayValue(v.AsStringSlice(), attribute.StringValue)
	case attribute.SLICE:
		return arrayValue(v.AsSlice(), func(e attribute.Value) attribute.Value { return e })
	}
	// A kind newer than this code: its string form rather than nothing.
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: validUTF8(v.String())}}
}

// arrayValue is OTLP's array_value of a slice attribute's elements, each
// made a Value by value.
func arrayValue[T any](elems []T, value func(T) attribute.Value) *commonpb.AnyValue {
	var values []*commonpb.AnyValue
	for _, e := range elems {
		values = append(values, anyValue(value(e)))
	}
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: values}}}
}

// validUTF8 is s with each invalid byte sequence replaced by U+FFFD.
// Protobuf's string fields must hold UTF-8, and proto.Marshal fails the
// whole message on one that does not: a single attribute made of a
// client's bytes (a path, a message) would otherwise lose the batch, every
// good span in it included.
func validUTF8(s string) string {
	return strings.ToValidUTF8(s, "\uFFFD")
}
