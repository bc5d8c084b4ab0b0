package h2

import (
	"bytes"
	"net/http"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2/hpack"
)

// blockEncoder HPACK-encodes the connection's response header blocks
// into buf, and remembers a few blocks that came out as nothing but
// indexes into the tables, to send them again without encoding.
//
// Why that is exact: HPACK's output for a list of fields depends only on
// the encoder's state (its dynamic table and a pending table size
// update), and a field sent as an index changes no state. So while
// nothing else was encoded that could change the state, the same fields
// encode to the same bytes. gen counts the changes that may have
// happened: every block that was not indexes only, and every new limit
// on the table's size; a remembered block is good only in the gen it was
// made in. Most responses of a busy connection repeat the fields of the
// ones before (a gRPC server's content-type, its grpc-status 0), and
// encoding them was the larger part of the time a handler held the
// connection's write lock.
//
// The connection's wmu guards it.
type blockEncoder struct {
	enc *hpack.Encoder
	buf bytes.Buffer
	gen uint64
	// memo is ordered by use: a block recalled moves one place ahead, a
	// new one comes in halfway (or in a free place), pushing the rest
	// back and the last out (memoSlot). The blocks a connection sends
	// most stay.
	memo [memoBlocks]memoBlock
}

const (
	memoBlocks = 16
	// memoMaxBytes bounds what a remembered block holds of its fields:
	// fields the encoder drops (connection-specific ones, invalid
	// values) are part of the key but not of the table.
	memoMaxBytes = 4096
)

type memoBlock struct {
	gen    uint64      // good while blockEncoder.gen is this; 0: empty
	status string      // the :status value; "" for a trailer block
	length string      // the content-length the server added, if any
	date   string      // the date the server added, if any
	fields []memoField // its key: the response's fields, or for trailers the whole header map
	block  []byte
}

// memoField is a header field's key, canonical as a handler sets it, and
// values: a remembered block's key, and a headerSnap's.
type memoField struct {
	key    string
	values []string
}

func newBlockEncoder() *blockEncoder {
	b := &blockEncoder{gen: 1}
	b.enc = hpack.NewEncoder(&b.buf)
	return b
}

// setLimit takes the peer's SETTINGS_HEADER_TABLE_SIZE: the encoder may
// shrink its table and must say so at the start of the next block.
func (b *blockEncoder) setLimit(v uint32) {
	b.enc.SetMaxDynamicTableSizeLimit(v)
	b.gen++
}

// header encodes a response's HEADERS block: the status, the fields fs
// but the connection-specific ones, and the content-length and date the
// server adds, if set. fs holds no trailers (headerSnap leaves them out).
func (b *blockEncoder) header(status, length, date string, fs []memoField) {
	if b.recall(status, length, date, fs) {
		return
	}
	b.buf.Reset()
	b.field(":status", status)
	for _, f := range fs {
		if name, ok := wireName(f.key); ok && !connectionSpecific(name) {
			b.fields(name, f.values)
		}
	}
	if length != "" {
		b.field("content-length", length)
	}
	if date != "" {
		b.field("date", date)
	}
	b.remember(status, length, date, fs)
}

// trailers encodes a response's trailer block: the values in h of the
// names declared in its Trailer header, then h's keys with
// http.TrailerPrefix.
func (b *blockEncoder) trailers(declared []string, h http.Header) {
	memo := len(declared) == 0 // the fields are then h's alone
	if memo && b.recallWith(func(m *memoBlock) bool { return m.status == "" && m.holds(h) }) {
		return
	}
	b.buf.Reset()
	b.trailerFields(declared, h)
	if memo {
		b.rememberTrailers(h)
	} else {
		b.settle()
	}
}

// trailerFields encodes trailers' fields after what buf holds.
func (b *blockEncoder) trailerFields(declared []string, h http.Header) {
	for _, k := range declared {
		if name, ok := trailerName(k); ok {
			b.fields(name, h[k])
		}
	}
	for k, vv := range h {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			if name, ok := trailerName(name); ok {
				b.fields(name, vv)
			}
		}
	}
}

// appendTrailers encodes a response's trailers (as trailers does) after
// its header fields, which header has just encoded: one block, for
// gRPC's Trailers-Only response. What it adds is not remembered: the
// header block alone may have been.
func (b *blockEncoder) appendTrailers(declared []string, h http.Header) {
	start := b.buf.Len()
	b.trailerFields(declared, h)
	if !indexesOnly(b.buf.Bytes()[start:]) {
		b.gen++ // the encoder's state may have changed (settle)
	}
}

// trailerName is wireName for a trailer field; ok is false as well for
// the fields HTTP forbids in trailers (RFC 9110 section 6.5.1: framing,
// routing, authentication, Content-Type and the like; httpguts keeps the
// list), which net/http's server leaves out too.
func trailerName(canonical string) (string, bool) {
	if !httpguts.ValidTrailerHeader(canonical) {
		return "", false
	}
	return wireName(canonical)
}

// fields encodes a field's values, leaving out values HTTP forbids (as
// net/http does).
func (b *blockEncoder) fields(name string, values []string) {
	for _, v := range values {
		if httpguts.ValidHeaderFieldValue(v) {
			b.field(name, v)
		}
	}
}

func (b *blockEncoder) field(name, value string) {
	_ = b.enc.WriteField(hpack.HeaderField{Name: name, Value: value})
}

// recall writes the remembered block for a response's header fields
// (status, the content-length and date the server adds, and fs), if
// there is one. It reports whether it did; if not, the caller encodes the
// fields and calls remember.
func (b *blockEncoder) recall(status, length, date string, fs []memoField) bool {
	return b.recallWith(func(m *memoBlock) bool {
		return m.status == status && m.length == length && m.date == date && m.holdsList(fs)
	})
}

// recallWith writes the first remembered block of this gen that match
// says is the one, if there is one (recall; a trailer block's, with
// status "", is keyed by the whole header map).
func (b *blockEncoder) recallWith(match func(m *memoBlock) bool) bool {
	for i := range b.memo {
		m := &b.memo[i]
		if m.gen == b.gen && match(m) {
			b.buf.Reset()
			b.buf.Write(m.block)
			promote(b.memo[:], i)
			return true
		}
	}
	return false
}

// remember ends a block encoded field by field from these fields (as
// recall takes them). A block of indexes only is remembered; any other
// may have changed the encoder's state, so every block remembered so far
// is forgotten.
func (b *blockEncoder) remember(status, length, date string, fs []memoField) {
	size := 0
	for _, f := range fs {
		size += f.size()
	}
	if m := b.slotFor(size); m != nil {
		m.status, m.length, m.date = status, length, date
		m.fields = make([]memoField, 0, len(fs))
		for _, f := range fs {
			// Copied: the values may be the handler's.
			m.fields = append(m.fields, memoField{key: f.key, values: slices.Clone(f.values)})
		}
	}
}

// rememberTrailers is remember for a trailer block keyed by the whole
// header map h.
func (b *blockEncoder) rememberTrailers(h http.Header) {
	size := 0
	for k, vv := range h {
		size += memoField{key: k, values: vv}.size()
	}
	if m := b.slotFor(size); m != nil {
		m.status, m.length, m.date = "", "", ""
		m.fields = make([]memoField, 0, len(h))
		for k, vv := range h {
			m.fields = append(m.fields, memoField{key: k, values: slices.Clone(vv)})
		}
	}
}

// slotFor returns the place for the block just encoded, its key's fields
// keySize bytes, with the block in it; nil if the block is not to be
// remembered.
func (b *blockEncoder) slotFor(keySize int) *memoBlock {
	if !b.settle() || b.buf.Len()+keySize > memoMaxBytes {
		return nil
	}
	m := memoSlot(b.memo[:], func(m *memoBlock) bool { return m.gen != b.gen }) // empty, or of an earlier gen
	m.gen, m.block = b.gen, append(m.block[:0], b.buf.Bytes()...)
	return m
}

// size is the bytes of f's name and values.
func (f memoField) size() int {
	n := len(f.key)
	for _, v := range f.values {
		n += len(v)
	}
	return n
}

// settle ends a block that is not to be remembered. It reports whether
// the block was indexes only; if not, it forgets every block remembered.
func (b *blockEncoder) settle() bool {
	if indexesOnly(b.buf.Bytes()) {
		return true
	}
	b.gen++
	return false
}

// holdsList reports whether fs are the fields m was made from, in any
// order: the same keys (each once) with the same values.
func (m *memoBlock) holdsList(fs []memoField) bool {
	if len(fs) != len(m.fields) {
		return false
	}
	for i := range fs {
		f, g := &fs[i], &m.fields[i]
		if g.key != f.key {
			if g = m.field(f.key); g == nil {
				return false
			}
		}
		if !slices.Equal(g.values, f.values) {
			return false
		}
	}
	return true
}

// field is m's field of this key, or nil.
func (m *memoBlock) field(key string) *memoField {
	for i := range m.fields {
		if m.fields[i].key == key {
			return &m.fields[i]
		}
	}
	return nil
}

// holds reports whether h is the header map m was made from: the same
// keys with the same values. (It is keyed by the whole map, though a
// block holds only one kind of its fields, so that it needs no walk
// over the map to tell the kinds apart.)
func (m *memoBlock) holds(h http.Header) bool {
	if len(h) != len(m.fields) {
		return false
	}
	for _, f := range m.fields {
		vv, ok := h[f.key]
		if !ok || len(vv) != len(f.values) {
			return false
		}
		for i, v := range vv {
			if f.values[i] != v {
				return false
			}
		}
	}
	return true
}

// memoSlot returns the place for a new entry in memo, which is ordered by
// use: the first free one, or else the middle one, the entries from there
// on pushed back one place and the last one's buffers reused.
func memoSlot[T any](memo []T, free func(*T) bool) *T {
	at := len(memo) / 2
	for i := range memo {
		if free(&memo[i]) {
			at = i
			break
		}
	}
	if !free(&memo[at]) {
		last := memo[len(memo)-1]
		copy(memo[at+1:], memo[at:len(memo)-1])
		memo[at] = last
	}
	return &memo[at]
}

// promote moves memo[i], just used, one place ahead.
func promote[T any](memo []T, i int) {
	if i > 0 {
		memo[i-1], memo[i] = memo[i], memo[i-1]
	}
}

// indexesOnly reports whether block is nothing but indexed fields of
// one byte each (RFC 7541 section 6.1, index below 127). Every other
// representation begins with a byte whose top bit is clear (literals,
// table size updates), or, for a longer index, ends with one; so a
// block whose every byte has it set, none of them 0xff, is this.
func indexesOnly(block []byte) bool {
	for _, c := range block {
		if c < 0x80 || c == 0xff {
			return false
		}
	}
	return true
}
