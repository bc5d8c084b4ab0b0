package server

import (
	"compress/gzip"
	"errors"
	"io"

	"connectrpc.com/connect"
)

// withBoundedGzip replaces connect-go's gzip with one whose decompressor
// stops one byte past maxBytes, a request message's limit. connect-go reads
// a message up to that byte and then, to report the message's size,
// decompresses the rest to nowhere: 1 MB of gzip that expands to 1 GiB
// cost the server a third of a second of CPU, for a refusal. grpc-go stops
// at the limit too. The compressor is connect-go's.
func withBoundedGzip(maxBytes int) connect.HandlerOption {
	return connect.WithCompression("gzip",
		func() connect.Decompressor { return &boundedGzip{limit: int64(maxBytes) + 1} },
		func() connect.Compressor { return gzip.NewWriter(io.Discard) })
}

// errPastLimit ends a decompression that reached its limit; connect-go
// reports it as the reason it cannot tell the message's size.
var errPastLimit = errors.New("decompression stopped past the limit")

// boundedGzip is a gzip reader that yields at most limit bytes of each
// message, then errPastLimit.
type boundedGzip struct {
	gzip.Reader
	limit, left int64
}

func (b *boundedGzip) Reset(r io.Reader) error {
	b.left = b.limit
	return b.Reader.Reset(r)
}

func (b *boundedGzip) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errPastLimit
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.Reader.Read(p)
	b.left -= int64(n)
	return n, err
}
