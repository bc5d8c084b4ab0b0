package h2

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"
)

// The adapter for net/http's own HTTP/2 server (Config.StdHTTP2), with
// BufferedListener. On that server every Flush and every request body
// read is a round trip between the handler's goroutine and the
// connection's, and connect flushes after every message it sends: a
// ListFeatures message cost ~4x grpc-go's. stdTuning defers flushes and
// buffers bodies, per procedure. internal/h2 needs none of it: its
// flushes go to a pending buffer, where a stream's DATA frames merge
// (wire.go), and its bodies hand over everything that has arrived at once.
// Measured without it: ListFeatures at 0.10x the throughput and 8.3x the
// CPU per call, RouteChat 0.15x and 6.2x, RecordRoute 0.51x and 1.9x
// (BENCHMARKS.md, "The transport owns the wire").

// flushPolicy is how stdTuning treats a procedure's flushes.
type flushPolicy int

const (
	// flushAtEnd (unary): the handler returns right after its one message,
	// and the server then sends message and trailers together.
	flushAtEnd flushPolicy = iota + 1
	// flushBatched (server streams whose handler sends in a tight loop,
	// waiting on nothing between two sends): messages leave when the
	// server's buffer fills, when the handler returns, or at the first send
	// maxFlushDelay after the last flush, so a slow sender still streams.
	flushBatched
	// flushBeforeRead (bidi streams whose handler, on one goroutine, only
	// waits in Receive): deferred flushes go out when the handler is about
	// to wait for the network, so replies to a pipelined batch leave
	// together and a client waiting for each reply still gets it.
	flushBeforeRead
)

// stdTightLoops are the streaming procedures measured to fit a policy;
// other streams flush every message, as connect asks.
var stdTightLoops = map[string]flushPolicy{
	"/routeguide.v1.RouteGuideService/ListFeatures": flushBatched,
	"/routeguide.RouteGuide/ListFeatures":           flushBatched,
	"/teams.v1.TeamsService/ListTeams":              flushBatched,
	"/routeguide.v1.RouteGuideService/RouteChat":    flushBeforeRead,
	"/routeguide.RouteGuide/RouteChat":              flushBeforeRead,
}

// maxFlushDelay bounds how long a flushBatched stream holds sent messages
// while its handler keeps sending.
const maxFlushDelay = 2 * time.Millisecond

// stdTuning wraps h for net/http's HTTP/2 server: over HTTP/2 the unary
// procedures (paths) get flushAtEnd, stdTightLoops theirs; request bodies
// are read through a pooled buffer.
func stdTuning(h http.Handler, unary []string) http.Handler {
	policies := make(map[string]flushPolicy, len(stdTightLoops)+len(unary))
	for p, policy := range stdTightLoops {
		policies[p] = policy
	}
	for _, p := range unary {
		policies[p] = flushAtEnd
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var bw *batchingWriter
		// Over HTTP/1.1 a flush is what makes a reply chunked, and only a
		// chunked reply carries trailers (gRPC's status): held back to the
		// end, a small reply would go out with a Content-Length instead.
		if f, ok := w.(http.Flusher); ok && r.ProtoMajor == 2 {
			if policy := policies[r.URL.Path]; policy != 0 {
				bw = &batchingWriter{ResponseWriter: w, flusher: f, policy: policy, last: time.Now()}
				w = bw
			}
		}
		if r.Body != nil && r.Body != http.NoBody {
			br := bodyReaders.Get().(*bufio.Reader)
			br.Reset(r.Body)
			body := &pooledBody{br: br, body: r.Body}
			if bw != nil && bw.policy == flushBeforeRead {
				body.beforeFill = bw.flushDeferred
			}
			r.Body = body
			defer body.release()
		}
		h.ServeHTTP(w, r)
	})
}

type batchingWriter struct {
	http.ResponseWriter
	flusher http.Flusher
	policy  flushPolicy
	last    time.Time // of the last real flush
	dirty   bool      // a flush was deferred
}

// Flush defers the flush as the policy says.
func (b *batchingWriter) Flush() {
	if b.policy == flushAtEnd {
		return
	}
	if now := time.Now(); now.Sub(b.last) >= maxFlushDelay {
		b.last = now
		b.dirty = false
		b.flusher.Flush()
		return
	}
	b.dirty = true
}

// flushDeferred flushes what deferred flushes held back.
func (b *batchingWriter) flushDeferred() {
	if b.dirty {
		b.dirty = false
		b.last = time.Now()
		b.flusher.Flush()
	}
}

// Unwrap lets http.ResponseController reach the server's writer.
func (b *batchingWriter) Unwrap() http.ResponseWriter { return b.ResponseWriter }

// bodyBufferBytes is the read buffer of a request body.
const bodyBufferBytes = 4 << 10

var bodyReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, bodyBufferBytes) }}

var errBodyReleased = errors.New("request body read after its handler returned")

// pooledBody reads a request body through a pooled buffer: one read
// takes everything that has arrived (connect reads a message's prefix,
// then its bytes). A bufio.Reader reads from the body only when it is
// empty, and then once, so a read blocks exactly when it would have
// unbuffered: bidi streams keep their timing.
type pooledBody struct {
	mu       sync.Mutex
	br       *bufio.Reader
	released bool
	body     io.ReadCloser
	// beforeFill, if set, runs before a read that goes to the network.
	beforeFill func()
}

func (b *pooledBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.released {
		return 0, errBodyReleased
	}
	if b.beforeFill != nil && b.br.Buffered() == 0 {
		b.beforeFill()
	}
	return b.br.Read(p)
}

func (b *pooledBody) Close() error { return b.body.Close() }

// release returns the buffer to the pool once the handler is done: a late
// read fails rather than read another request's bytes.
func (b *pooledBody) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.released = true
	b.br.Reset(nil)
	bodyReaders.Put(b.br)
	b.br = nil
}
