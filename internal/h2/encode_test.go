package h2

import (
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/http2/hpack"
)

// client decodes the blocks of one blockEncoder as the connection's peer
// would: one decoder, in order, told of each table size limit the peer
// sends.
type client struct {
	t   *testing.T
	b   *blockEncoder
	dec *hpack.Decoder
	// size is the encoder's table size as the peer's settings make it;
	// announce is set while a smaller one is still to be announced.
	size     uint32
	announce bool
}

func newClient(t *testing.T) *client {
	return &client{t: t, b: newBlockEncoder(), dec: hpack.NewDecoder(4096, nil), size: 4096}
}

func (c *client) setLimit(v uint32) {
	c.b.setLimit(v)
	c.dec.SetAllowedMaxDynamicTableSize(v)
	if v < c.size {
		c.size, c.announce = v, true
	}
}

// header encodes a HEADERS block and checks what the peer decodes. It
// reports whether the block was one remembered.
func (c *client) header(status, length string, h http.Header) (recalled bool) {
	c.t.Helper()
	return c.dated(status, length, "", h)
}

// dated is header with the date field the server adds.
func (c *client) dated(status, length, date string, h http.Header) (recalled bool) {
	c.t.Helper()
	fs := takeSnap(h) // as the writer hands the fields over
	defer fs.release()
	recalled = c.b.recall(status, length, date, fs.fields)
	if !recalled {
		c.b.header(status, length, date, fs.fields)
	}
	want := []hpack.HeaderField{{Name: ":status", Value: status}}
	for k, vv := range h {
		if !strings.HasPrefix(k, http.TrailerPrefix) && !connectionSpecific(strings.ToLower(k)) {
			want = appendValid(want, strings.ToLower(k), vv)
		}
	}
	if length != "" {
		want = append(want, hpack.HeaderField{Name: "content-length", Value: length})
	}
	if date != "" {
		want = append(want, hpack.HeaderField{Name: "date", Value: date})
	}
	c.check(want)
	return recalled
}

// trailers encodes a trailer block (declared names first, then h's keys
// with http.TrailerPrefix) and checks what the peer decodes.
func (c *client) trailers(declared []string, h http.Header) (recalled bool) {
	c.t.Helper()
	if len(declared) == 0 {
		recalled = c.b.recallWith(func(m *memoBlock) bool { return m.status == "" && m.holds(h) })
	}
	if !recalled {
		c.b.trailers(declared, h)
	}
	var want []hpack.HeaderField
	for _, k := range declared {
		want = appendValid(want, strings.ToLower(k), h[k])
	}
	for k, vv := range h {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			want = appendValid(want, strings.ToLower(name), vv)
		}
	}
	c.check(want)
	return recalled
}

func appendValid(fields []hpack.HeaderField, name string, values []string) []hpack.HeaderField {
	for _, v := range values {
		if !strings.ContainsAny(v, "\x00\r\n") {
			fields = append(fields, hpack.HeaderField{Name: name, Value: v})
		}
	}
	return fields
}

func (c *client) check(want []hpack.HeaderField) {
	c.t.Helper()
	block := c.b.buf.Bytes()
	if c.announce && len(block) > 0 {
		if block[0]&0xe0 != 0x20 {
			c.t.Fatalf("the table was limited to %d, and the next block does not say so first: %x", c.size, block)
		}
		c.announce = false
	}
	got, err := c.dec.DecodeFull(block)
	if err != nil {
		c.t.Fatalf("the peer cannot decode %x: %v", block, err)
	}
	// Fields of different names may come in any order; the values of one
	// name in theirs.
	byName := func(a, b hpack.HeaderField) int { return strings.Compare(a.Name, b.Name) }
	slices.SortStableFunc(got, byName)
	slices.SortStableFunc(want, byName)
	if !slices.EqualFunc(got, want, func(a, b hpack.HeaderField) bool { return a.Name == b.Name && a.Value == b.Value }) {
		c.t.Fatalf("the peer decoded\n%v\nwant\n%v", got, want)
	}
}

// A remembered block goes out only while the encoder's table is as it
// was: after a field is added to the table the indexes move, and the
// block is encoded again.
func TestBlockEncoderForgetsAfterNewEntry(t *testing.T) {
	c := newClient(t)
	grpc := http.Header{"Content-Type": {"application/grpc"}}
	c.header("200", "", grpc) // adds the field to the table
	if c.header("200", "", grpc) {
		t.Fatal("the block that added a field was remembered")
	}
	if !c.header("200", "", grpc) {
		t.Fatal("a block of indexes only was not remembered")
	}
	c.header("200", "", http.Header{"Content-Type": {"text/plain"}}) // a new entry: application/grpc's index moves
	if c.header("200", "", grpc) {
		t.Fatal("a block remembered before the table changed was sent")
	}
}

// A smaller table limit from the peer is announced at the start of the
// next block, even when that block was remembered.
func TestBlockEncoderAnnouncesSmallerTable(t *testing.T) {
	c := newClient(t)
	h := http.Header{"Content-Type": {"application/grpc"}, "Trailer:Grpc-Status": {"0"}}
	for range 3 {
		c.header("200", "", h)
		c.trailers(nil, h)
	}
	c.setLimit(0)
	if c.header("200", "", h) {
		t.Fatal("a block remembered before the peer limited the table was sent")
	}
	c.trailers(nil, h)
	c.header("200", "", h)
}

// Blocks of every kind, in random order, some of them adding fields to a
// table that the peer's limits shrink: whether remembered or encoded
// anew, each decodes to its fields; and while the table is large, a
// good share of the blocks are remembered ones.
func TestBlockEncoderDecodes(t *testing.T) {
	for seed := range uint64(24) {
		rng := rand.New(rand.NewPCG(seed, 16))
		c := newClient(t)
		pick := func(values ...string) string { return values[rng.IntN(len(values))] }
		// A third of the runs: the peer limits the table at some point.
		limitAt, limit := -1, uint32(0)
		if seed%3 == 0 {
			limitAt, limit = rng.IntN(2000), []uint32{0, 64, 200, 1000}[rng.IntN(4)]
		}
		recalled, blocks := 0, 0
		for i := range 2000 {
			if i == limitAt {
				c.setLimit(limit)
			}
			h := http.Header{
				"Content-Type":         {pick("application/grpc", "application/grpc", "application/proto")},
				"Grpc-Accept-Encoding": {"gzip"},
			}
			switch rng.IntN(40) {
			case 0, 1:
				h["X-Values"] = []string{"a", pick("b", "c")} // two values of one name
			case 2:
				h["Connection"] = []string{"close"} // connection-specific: dropped
			case 3:
				h["X-Bad"] = []string{"bad\x00value"} // invalid: dropped
			case 4:
				h["X-Fresh"] = []string{strconv.Itoa(rng.IntN(1 << 20))} // most likely a new entry
			}
			h["Trailer:Grpc-Status"] = []string{pick("0", "0", "0", "5", "13")}
			if h["Trailer:Grpc-Status"][0] != "0" {
				h["Trailer:Grpc-Message"] = []string{pick("no team plays in \"Atlantis\"", "no team plays in \"Gotham\"", "internal")}
			}
			var got bool
			switch rng.IntN(20) {
			case 0:
				h["X-Declared"] = []string{"v"}
				got = c.trailers([]string{"X-Declared"}, h)
			case 1, 2, 3, 4, 5, 6, 7, 8, 9:
				// The server's date changes once a second.
				date := pick("", "Mon, 07 Dec 2026 06:00:00 GMT", "Mon, 07 Dec 2026 06:00:01 GMT")
				got = c.dated(pick("200", "200", "404"), pick("", "", "12"), date, h)
			default:
				got = c.trailers(nil, h)
			}
			blocks++
			if got {
				recalled++
			}
		}
		if limitAt < 0 && recalled < blocks/4 {
			t.Fatalf("seed %d: %d of %d blocks were remembered ones", seed, recalled, blocks)
		}
		t.Logf("seed %d: %d of %d blocks remembered (table limited to %d at block %d)", seed, recalled, blocks, limit, limitAt)
	}
}

func TestIndexesOnly(t *testing.T) {
	for _, c := range []struct {
		block []byte
		want  bool
	}{
		{nil, true},
		{[]byte{0x88, 0xbe, 0xfe}, true},  // :status 200, then indexes 62 and 126
		{[]byte{0xff, 0x00}, false},       // index 127: two bytes
		{[]byte{0xff, 0x81, 0x01}, false}, // a longer index ends with its top bit clear
		{[]byte{0x88, 0x40, 0x81}, false}, // a literal, added to the table
		{[]byte{0x0f, 0x83}, false},       // a literal, not added
		{[]byte{0x20, 0x88}, false},       // a table size update
	} {
		if got := indexesOnly(c.block); got != c.want {
			t.Errorf("indexesOnly(%x) = %v, want %v", c.block, got, c.want)
		}
	}
}

// A memo takes a new entry in its first free place, or else halfway,
// pushing the later ones back and dropping the last; an entry used moves
// one place ahead.
func TestMemoSlot(t *testing.T) {
	memo := []int{1, 2, 0, 4}
	free := func(v *int) bool { return *v == 0 }
	*memoSlot(memo, free) = 5
	if want := []int{1, 2, 5, 4}; !slices.Equal(memo, want) {
		t.Fatalf("into a free place: %v, want %v", memo, want)
	}
	*memoSlot(memo, free) = 6
	if want := []int{1, 2, 6, 5}; !slices.Equal(memo, want) {
		t.Fatalf("into a full memo: %v, want %v", memo, want)
	}
	promote(memo, 3)
	promote(memo, 0)
	if want := []int{1, 2, 5, 6}; !slices.Equal(memo, want) {
		t.Fatalf("after promotions: %v, want %v", memo, want)
	}
}
