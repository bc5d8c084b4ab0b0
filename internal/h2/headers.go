package h2

import (
	"bytes"
	"errors"
	"math"
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// headerBlock is a request's header block as it is decoded, from a HEADERS
// frame and its CONTINUATION frames. The connection decodes one block at a
// time into one reused headerBlock: golang.org/x/net/http2's
// MetaHeadersFrame grows a fresh field slice per block, four allocations
// (~600 bytes) per request.
type headerBlock struct {
	id        uint32
	endStream bool
	hasPrio   bool
	prioDep   uint32
	open      bool   // CONTINUATION frames to come
	remain    uint32 // what is left of MaxHeaderListSize
	values    int    // fields but Trailer ones, against maxFieldValues
	declared  int    // names the Trailer fields declare, against maxFieldValues
	wire      uint32 // what is left of the block's wire budget (headerFragment)
	truncated bool   // over MaxHeaderListSize: fields are incomplete
	invalid   error  // malformed (RFC 9113 section 8.2): a stream error
	fields    []hpack.HeaderField
	nPseudo   int            // fields[:nPseudo] are the pseudo-header fields
	dec       *hpack.Decoder // the connection's, which calls emit
}

// Why a header block is malformed.
var (
	errPseudoAfterRegular = errors.New("pseudo-header field after a regular one")
	errUnknownPseudo      = errors.New("unknown or duplicate pseudo-header field")
	errFieldName          = errors.New("invalid header field name")
	errFieldValue         = errors.New("invalid header field value")
)

func (b *headerBlock) start(f *http2.HeadersFrame, budget uint32) {
	*b = headerBlock{
		id:        f.StreamID,
		endStream: f.StreamEnded(),
		hasPrio:   f.HasPriority(),
		prioDep:   f.Priority.StreamDep,
		open:      true,
		remain:    budget,
		wire:      uint32(min(2*uint64(budget), math.MaxUint32)),
		fields:    b.fields[:0],
		dec:       b.dec,
	}
	b.dec.SetEmitEnabled(true)
}

// drop stops the fields of a block found malformed or too large: the
// decoder goes on (HPACK state is per connection) without emitting them.
func (b *headerBlock) drop() { b.dec.SetEmitEnabled(false) }

// pseudo is the value of a pseudo-header field ("method" for ":method").
func (b *headerBlock) pseudo(name string) string {
	for _, f := range b.fields[:b.nPseudo] {
		if f.Name[1:] == name {
			return f.Value
		}
	}
	return ""
}

func (b *headerBlock) regular() []hpack.HeaderField { return b.fields[b.nPseudo:] }

// emit takes one decoded field. Once the block is found malformed or too
// large, the rest of its fragment is decoded without emitting (drop), and
// any further fragment ends the connection (headerFragment): what a
// malformed block can make the server decode is bounded by the fragment's
// bytes, and no fragment after it is decoded at all (CVE-2023-45288).
func (b *headerBlock) emit(hf hpack.HeaderField) {
	if b.invalid != nil || b.truncated {
		return
	}
	size, over := uint64(hf.Size()), false
	if hf.Name == "trailer" {
		// Each name declared becomes an entry of r.Trailer: it counts,
		// and costs what a field of its own would (GO-2026-6603).
		n := strings.Count(hf.Value, ",") + 1
		b.declared += n
		size += uint64(n-1) * uint64(hpack.HeaderField{}.Size())
		over = b.declared > maxFieldValues
	} else {
		b.values++
		over = b.values > maxFieldValues
	}
	if over || size > uint64(b.remain) {
		b.truncated, b.remain = true, 0
		b.drop()
		return
	}
	b.remain -= uint32(size)
	if !httpguts.ValidHeaderFieldValue(hf.Value) {
		b.invalid = errFieldValue
		b.drop()
		return
	}
	if strings.HasPrefix(hf.Name, ":") {
		if b.nPseudo != len(b.fields) {
			b.invalid = errPseudoAfterRegular
			b.drop()
			return
		}
		switch hf.Name {
		case ":method", ":scheme", ":authority", ":path", ":protocol":
		default:
			b.invalid = errUnknownPseudo
			b.drop()
			return
		}
		for _, p := range b.fields {
			if p.Name == hf.Name {
				b.invalid = errUnknownPseudo
				b.drop()
				return
			}
		}
		b.nPseudo++
	} else if !validFieldName(hf.Name) {
		b.invalid = errFieldName
		b.drop()
		return
	}
	b.fields = append(b.fields, hf)
}

// validFieldName: a token in lower case (RFC 9113 section 8.2.1).
func validFieldName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if ch := name[i]; ch >= 'A' && ch <= 'Z' || !httpguts.IsTokenRune(rune(ch)) {
			return false
		}
	}
	return true
}

// maxFieldValues bounds the fields of a header block and, apart, the
// names its Trailer fields declare (each an entry of r.Trailer): a
// request over either is answered 431, as one over MaxHeaderListSize. It
// is net/http's DefaultMaxHeaderValueCount, which its HTTP/2 server (Go
// 1.27) applies so.
const maxFieldValues = 500

// headerFrameOverhead is what one HEADERS or CONTINUATION frame costs a
// header block's wire budget beyond its fragment: its frame header.
const headerFrameOverhead = 9

// headerFragment decodes one fragment of the open header block, and
// processes the block once its last fragment is in.
//
// A header block is bounded twice, so that no sender can make the server
// decode, or read, without end (the CONTINUATION floods of CVE-2023-45288
// and CVE-2024-27316):
//   - decoded: every field counts against MaxHeaderListSize (emit); a
//     fragment more than four times the budget left (HPACK's Huffman code
//     inflates at most ~3.75x), or any after the budget is gone, ends the
//     connection before it is decoded;
//   - on the wire: the block's fragments and their frame headers may total
//     2 x MaxHeaderListSize, whatever they decode to (empty CONTINUATION
//     frames, table size updates, indexed fields). A block within the
//     limit takes at most about MaxHeaderListSize on the wire: a field's
//     encoding is never larger than its RFC 7541 size.
//   - a fragment that follows a malformed field is not decoded: the stream
//     is lost already, and the connection ends (as net/http's server does).
//
// So a connection whose header block is malformed or too large is closed
// (GOAWAY PROTOCOL_ERROR) within 2 x MaxHeaderListSize bytes of it, and
// within one frame of a malformed field.
//
// A block in one frame that was decoded before, while the decoder's
// state has not changed since, is not decoded again (decodedBlocks).
func (c *conn) headerFragment(frag []byte, first, last bool) error {
	b := &c.hb
	cost := uint64(len(frag)) + headerFrameOverhead
	if b.invalid != nil || uint64(len(frag)) > 4*uint64(b.remain) || cost > uint64(b.wire) {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	b.wire -= uint32(cost)
	indexes := indexesOnly(frag)
	whole := first && last && indexes
	if whole && c.decoded.recall(frag, b) {
		b.open = false
		return c.processHeaders(b)
	}
	if !indexes {
		c.decoded.gen++ // the decoder's table may change
	}
	if _, err := c.hdec.Write(frag); err != nil {
		return http2.ConnectionError(http2.ErrCodeCompression)
	}
	if !last {
		return nil
	}
	b.open = false
	if err := c.hdec.Close(); err != nil {
		return http2.ConnectionError(http2.ErrCodeCompression)
	}
	if whole {
		c.decoded.remember(frag, b)
	}
	return c.processHeaders(b)
}

// decodedBlocks remembers what a few request header blocks decoded to.
// A block of indexes only (indexesOnly) changes no decoder state, so
// while no other block has changed it (gen counts the blocks that may
// have), the same bytes decode to the same fields. A client that sends
// the same request again (the same path and fields, no grpc-timeout)
// sends the same bytes. Ordered by use, as blockEncoder's memo.
type decodedBlocks struct {
	gen  uint64
	memo [decodedMemo]decodedBlock
}

const (
	decodedMemo = 8
	// decodedMaxBytes bounds the blocks remembered, and with them the
	// fields (one a byte): a request's usual fields take 10 to 30.
	decodedMaxBytes = 128
)

type decodedBlock struct {
	gen     uint64 // good while decodedBlocks.gen is this, if block is set
	block   []byte
	fields  []hpack.HeaderField
	nPseudo int
	remain  uint32
}

// recall sets b's fields to what block decoded to, if it is remembered.
func (d *decodedBlocks) recall(block []byte, b *headerBlock) bool {
	for i := range d.memo {
		m := &d.memo[i]
		if m.block != nil && m.gen == d.gen && bytes.Equal(m.block, block) {
			b.fields = append(b.fields[:0], m.fields...)
			b.nPseudo, b.remain = m.nPseudo, m.remain
			promote(d.memo[:], i)
			return true
		}
	}
	return false
}

// remember notes what block, indexes only, decoded to in b, if its
// fields were all good.
func (d *decodedBlocks) remember(block []byte, b *headerBlock) {
	if b.invalid != nil || b.truncated || len(block) > decodedMaxBytes {
		return
	}
	m := memoSlot(d.memo[:], func(m *decodedBlock) bool { return m.block == nil || m.gen != d.gen })
	m.gen, m.nPseudo, m.remain = d.gen, b.nPseudo, b.remain
	m.block = append(m.block[:0], block...)
	m.fields = append(m.fields[:0], b.fields...)
}
