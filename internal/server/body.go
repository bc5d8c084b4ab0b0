package server

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"sync"
)

// bodyBufferBytes is the read buffer of a request body.
const bodyBufferBytes = 4 << 10

var bodyReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, bodyBufferBytes) }}

var errBodyReleased = errors.New("request body read after its handler returned")

// withBufferedBodies reads request bodies through a pooled buffer. connect
// reads a message's 5-byte prefix and then its bytes, often in several
// reads; on net/http's HTTP/2 server every body read is a round trip to the
// connection goroutine (flow control accounting). Through the buffer one
// read takes everything that has arrived — a client stream's points come
// many per read. A bufio.Reader reads from the body only when it is empty,
// and then once, so a read blocks exactly when it would have blocked
// unbuffered: bidi streams keep their timing.
func withBufferedBodies(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		br := bodyReaders.Get().(*bufio.Reader)
		br.Reset(r.Body)
		body := &bufferedBody{r: br, body: r.Body}
		r.Body = body
		defer body.release()
		h.ServeHTTP(w, r)
	})
}

type bufferedBody struct {
	mu   sync.Mutex
	r    *bufio.Reader // nil once released
	body io.ReadCloser
	// beforeFill, if set, runs before a read that goes to the network.
	beforeFill func()
}

func (b *bufferedBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.r == nil {
		return 0, errBodyReleased
	}
	if b.beforeFill != nil && b.r.Buffered() == 0 {
		b.beforeFill()
	}
	return b.r.Read(p)
}

func (b *bufferedBody) Close() error { return b.body.Close() }

// release returns the buffer to the pool once the handler is done.
func (b *bufferedBody) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.r.Reset(nil)
	bodyReaders.Put(b.r)
	b.r = nil
}
