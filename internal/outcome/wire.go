package outcome

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// classify tells a request's protocol, and how its bodies are framed, from
// its method, content type and query, as connect-go's handler does: a GET
// is a Connect unary call when its query names an encoding, whatever its
// Content-Type says (connect-go serves GET only so), and any other
// method's content type is compared as connect-go canonicalizes it, in
// lower case.
func classify(method, contentType, rawQuery string) (Protocol, wireKind, bool) {
	if method == http.MethodGet {
		if query, _ := url.ParseQuery(rawQuery); query.Get("encoding") != "" {
			return ProtocolConnect, wireUnary, false
		}
		return ProtocolHTTP, wirePlain, false
	}
	contentType = lowerASCII(contentType)
	const app = "application/"
	if !strings.HasPrefix(contentType, app) {
		return ProtocolHTTP, wirePlain, false
	}
	sub := contentType[len(app):]
	switch {
	case strings.HasPrefix(sub, "grpc-web-text"):
		return ProtocolGRPCWeb, wireEnvelopes, true
	case strings.HasPrefix(sub, "grpc-web"):
		return ProtocolGRPCWeb, wireEnvelopes, false
	case IsGRPC(contentType):
		return ProtocolGRPC, wireEnvelopes, false
	case strings.HasPrefix(sub, "connect+"):
		return ProtocolConnect, wireEnvelopes, false
	case method == http.MethodPost && (strings.HasPrefix(sub, "proto") || strings.HasPrefix(sub, "json")):
		return ProtocolConnect, wireUnary, false
	}
	return ProtocolHTTP, wirePlain, false
}

// IsGRPC reports whether contentType, in lower case, is gRPC's
// (application/grpc, with or without a subtype or parameters), not
// gRPC-Web's, whose trailers travel in the body.
func IsGRPC(contentType string) bool {
	rest, ok := strings.CutPrefix(contentType, "application/grpc")
	return ok && (rest == "" || rest[0] == '+' || rest[0] == ';')
}

// lowerASCII is s in lower case, s itself (no copy) when it has no upper
// case letter, as clients nearly always send their content type.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// Envelope flags (gRPC's length-prefixed message, shared by gRPC-Web and
// Connect streaming).
const (
	flagCompressed      = 0x01
	flagConnectEnd      = 0x02 // Connect's end-of-stream message
	flagGRPCWebTrailer  = 0x80 // gRPC-Web's trailer frame
	envelopePrefixBytes = 5
)

// envelopeScanner follows the envelopes of a body as its bytes pass, in
// whatever pieces they come: it counts messages and hands the bytes of a
// final frame (endFlag set) to a captured.
type envelopeScanner struct {
	prefix    [envelopePrefixBytes]byte
	have      uint8  // prefix bytes seen of the current envelope
	remain    uint32 // payload bytes still to come
	capturing bool
	endFlag   byte // the flag that marks the final frame: 0 for requests and gRPC
	msgs      int64
}

func (s *envelopeScanner) feed(p []byte, c *captured) {
	for len(p) > 0 {
		if s.have < envelopePrefixBytes {
			n := copy(s.prefix[s.have:], p)
			s.have += uint8(n)
			p = p[n:]
			if s.have < envelopePrefixBytes {
				return
			}
			flags := s.prefix[0]
			s.remain = binary.BigEndian.Uint32(s.prefix[1:])
			if s.endFlag != 0 && flags&s.endFlag != 0 && c != nil {
				s.capturing = true
				c.begin(s.endFlag, flags)
			} else {
				s.msgs++
			}
		} else {
			n := len(p)
			if uint64(n) > uint64(s.remain) {
				n = int(s.remain)
			}
			if s.capturing {
				c.add(p[:n])
			}
			p = p[n:]
			s.remain -= uint32(n)
		}
		if s.have == envelopePrefixBytes && s.remain == 0 {
			s.have, s.capturing = 0, false
		}
	}
}

// base64Quanta decodes gRPC-Web text bodies on the way: base64 in
// 4-character quanta, padding allowed at the end of any quantum (clients
// and servers send separately padded chunks back to back).
type base64Quanta struct {
	q [4]byte
	n uint8
}

func (b *base64Quanta) feed(p []byte, s *envelopeScanner, c *captured) {
	var out [192]byte
	k := 0
	for _, ch := range p {
		if ch == '\r' || ch == '\n' {
			continue
		}
		b.q[b.n] = ch
		b.n++
		if b.n < 4 {
			continue
		}
		b.n = 0
		n, err := base64.StdEncoding.Decode(out[k:], b.q[:])
		if err != nil {
			continue // not base64: nothing to count
		}
		k += n
		if k > len(out)-3 {
			s.feed(out[:k], c)
			k = 0
		}
	}
	if k > 0 {
		s.feed(out[:k], c)
	}
}

// frameKind is what a captured holds.
type frameKind uint8

const (
	frameNone frameKind = iota
	frameGRPCWebTrailer
	frameConnectEnd
	frameUnaryError
)

// captureBytes bounds what is kept of a final frame: the status and its
// message, up to about maxMessageBytes. A longer frame keeps its first
// captureBytes, and its message is lost.
const captureBytes = maxMessageBytes + 64

// captured is the start of a response's final frame: the gRPC-Web trailer
// frame, the Connect end-of-stream message, or a Connect unary error body.
// Its buffer is made when a frame's first bytes arrive: a gRPC call (its
// status is in the trailers) and a Connect unary success have none, and
// the record they travel in (inside internal/h2's per-stream allocation)
// stays a size class smaller.
type captured struct {
	kind  frameKind
	flags byte
	cut   bool   // the frame was longer than buf keeps
	buf   []byte // its first captureBytes
}

func (c *captured) begin(endFlag, flags byte) {
	c.kind = frameConnectEnd
	if endFlag == flagGRPCWebTrailer {
		c.kind = frameGRPCWebTrailer
	}
	c.flags, c.cut, c.buf = flags, false, c.buf[:0]
}

func (c *captured) add(p []byte) {
	if c.kind == frameNone {
		c.kind = frameUnaryError
	}
	room := captureBytes - len(c.buf)
	if len(p) > room {
		p, c.cut = p[:room], true
	}
	if len(p) == 0 {
		return
	}
	if c.buf == nil {
		c.buf = make([]byte, 0, captureBytes)
	}
	c.buf = append(c.buf, p...)
}

// payload is the frame's bytes, decompressed if the frame says it is
// compressed (connect-go compresses final frames over its threshold, with
// gzip, the only compression it has by default). ok is false for a frame
// cut off by captureBytes that cannot be decompressed.
func (c *captured) payload() ([]byte, bool) {
	data := c.buf
	if c.flags&flagCompressed == 0 || c.kind == frameUnaryError {
		return data, true
	}
	if c.cut {
		return nil, false
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, false
	}
	out, err := io.ReadAll(io.LimitReader(zr, 64<<10))
	if err != nil {
		return nil, false
	}
	return out, true
}

// grpcWebTrailer reads the status from a gRPC-Web trailer frame: HTTP/1
// style header lines.
func (c *captured) grpcWebTrailer() (Code, string, bool) {
	data, ok := c.payload()
	if !ok {
		return CodeUnknown, "", false
	}
	var code Code
	var msg string
	found := false
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		name, value, ok := bytes.Cut(bytes.TrimRight(line, "\r"), []byte(":"))
		if !ok {
			continue
		}
		name, value = bytes.TrimSpace(name), bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("grpc-status")):
			code, found = parseGRPCStatus(value)
		case bytes.EqualFold(name, []byte("grpc-message")):
			msg = decodeGRPCMessage(string(value))
		}
	}
	return code, msg, found
}

// connectError reads a Connect error: the end-of-stream message
// ({"error":{...}} or no error) when endStream, else a unary error body.
func (c *captured) connectError(endStream bool) (Code, string) {
	data, ok := c.payload()
	if !ok {
		return CodeUnknown, "the end-of-stream message could not be read"
	}
	if endStream && !bytes.Contains(data, []byte(`"error"`)) {
		return CodeOK, ""
	}
	type wireError struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	var msg struct {
		Error *wireError `json:"error"`
		wireError
	}
	if err := json.Unmarshal(data, &msg); err == nil {
		e := &msg.wireError
		if endStream {
			e = msg.Error
		}
		if e != nil && e.Code != "" {
			return codeByName(e.Code), e.Message
		}
		return CodeUnknown, ""
	}
	// Cut off at captureBytes: the code comes first in connect-go's JSON.
	if _, rest, ok := bytes.Cut(data, []byte(`"code":"`)); ok {
		if name, _, ok := bytes.Cut(rest, []byte(`"`)); ok {
			return codeByName(string(name)), ""
		}
	}
	if endStream {
		return CodeUnknown, ""
	}
	return CodeOK, "" // not a Connect error: Finish falls back to the HTTP status
}

// grpcStatus reads grpc-status and grpc-message from a response's headers
// or trailers (declared names, or keys with http.TrailerPrefix).
func grpcStatus(h http.Header) (Code, string, bool) {
	vv := h["Grpc-Status"]
	msg := h["Grpc-Message"]
	if len(vv) == 0 {
		vv = h[http.TrailerPrefix+"Grpc-Status"]
		msg = h[http.TrailerPrefix+"Grpc-Message"]
	}
	if len(vv) == 0 {
		return CodeUnknown, "", false
	}
	code, ok := parseGRPCStatus(vv[0])
	if !ok {
		return CodeUnknown, "", true
	}
	var m string
	if len(msg) > 0 {
		m = decodeGRPCMessage(msg[0])
	}
	return code, m, true
}

func parseGRPCStatus[T string | []byte](s T) (Code, bool) {
	if len(s) == 0 || len(s) > 4 {
		return CodeUnknown, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return CodeUnknown, false
		}
		n = n*10 + int(s[i]-'0')
	}
	if n >= NumCodes {
		return CodeUnknown, true
	}
	return Code(n), true
}

// decodeGRPCMessage undoes grpc-message's percent-encoding.
func decodeGRPCMessage(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ProtocolOf is the RPC protocol req is made in, as its record classifies
// it by its method, content type and query (ProtocolHTTP: none), and
// whether its messages travel in envelopes (gRPC, gRPC-Web, Connect
// streaming) rather than as a Connect unary body.
func ProtocolOf(req *http.Request) (p Protocol, enveloped bool) {
	p, wire, _ := classify(req.Method, req.Header.Get("Content-Type"), req.URL.RawQuery)
	return p, wire == wireEnvelopes
}
