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
//
// Bodies of Switchyard's own HTTP/2 server (internal/h2) already read
// without a round trip and tell how much they hold; they are left as they
// are, except for batchedChats, which need to know when a read is about to
// wait.
func withBufferedBodies(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		if src, ok := r.Body.(bufferedReader); ok {
			if batchedChats[r.URL.Path] {
				body := &bufferedBody{src: src, body: r.Body}
				r.Body = body
				defer body.release()
			}
			h.ServeHTTP(w, r)
			return
		}
		br := bodyReaders.Get().(*bufio.Reader)
		br.Reset(r.Body)
		body := &bufferedBody{src: br, pooled: br, body: r.Body}
		r.Body = body
		defer body.release()
		h.ServeHTTP(w, r)
	})
}

// bufferedReader is a body that holds what has arrived and says how much.
type bufferedReader interface {
	io.Reader
	Buffered() int
}

type bufferedBody struct {
	mu       sync.Mutex
	src      bufferedReader // the pooled buffer, or a body that buffers by itself
	pooled   *bufio.Reader  // the pooled buffer, to return; nil otherwise
	released bool
	body     io.ReadCloser
	// beforeFill, if set, runs before a read that goes to the network.
	beforeFill func()
}

func (b *bufferedBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.released {
		return 0, errBodyReleased
	}
	if b.beforeFill != nil && b.src.Buffered() == 0 {
		b.beforeFill()
	}
	return b.src.Read(p)
}

func (b *bufferedBody) Close() error { return b.body.Close() }

// release returns the buffer to the pool once the handler is done.
func (b *bufferedBody) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.released = true
	b.src = nil
	if b.pooled != nil {
		b.pooled.Reset(nil)
		bodyReaders.Put(b.pooled)
		b.pooled = nil
	}
}
