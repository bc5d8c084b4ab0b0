package server

import (
	"net/http"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// batchedStreams are the server-streaming procedures whose handlers send
// every message in a tight loop, without waiting on anything between two
// sends. connect flushes after every message it sends; on net/http's
// HTTP/2 server each flush is a round trip to the connection's goroutine
// and usually a DATA frame of its own, which made a ListFeatures message
// cost ~4x grpc-go's. For these procedures a flush is deferred: messages
// leave when the stream's 4 KiB buffer fills, when the handler returns, or
// at the first send after maxFlushDelay without a flush, so a slow sender
// still streams. Streams that receive (bidi) or wait between sends are not
// listed and flush every message.
var batchedStreams = map[string]bool{
	"/routeguide.v1.RouteGuideService/ListFeatures": true,
	"/routeguide.RouteGuide/ListFeatures":           true,
	"/teams.v1.TeamsService/ListTeams":              true,
}

// batchedChats are bidi procedures whose handler, on one goroutine, only
// ever waits in Receive. Their flushes are deferred until the handler is
// about to read from the network (its buffered request body is empty), so
// replies to a pipelined batch of requests leave together, and a client that
// waits for each reply still gets it before the handler waits for more.
var batchedChats = map[string]bool{
	"/routeguide.v1.RouteGuideService/RouteChat": true,
	"/routeguide.RouteGuide/RouteChat":           true,
}

// maxFlushDelay bounds how long a batched stream holds sent messages while
// its handler keeps sending.
const maxFlushDelay = 2 * time.Millisecond

// withBatchedFlushes defers the flushes of batchedStreams' responses and of
// every unary procedure of services: a unary handler returns right after
// its one message, and net/http then sends message and trailers together
// instead of in two round trips.
func withBatchedFlushes(h http.Handler, services []string) http.Handler {
	batched := make(map[string]time.Duration, len(batchedStreams))
	for p := range batchedStreams {
		batched[p] = maxFlushDelay
	}
	for p := range batchedChats {
		batched[p] = maxFlushDelay
	}
	for _, name := range services {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		if err != nil {
			continue
		}
		sd, ok := d.(protoreflect.ServiceDescriptor)
		if !ok {
			continue
		}
		for i := range sd.Methods().Len() {
			m := sd.Methods().Get(i)
			if !m.IsStreamingClient() && !m.IsStreamingServer() {
				batched["/"+name+"/"+string(m.Name())] = noFlush
			}
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f, ok := w.(http.Flusher); ok {
			if delay, ok := batched[r.URL.Path]; ok {
				if s, ok := w.(flushSuppressor); ok && delay == noFlush {
					s.SuppressFlushes() // internal/h2's writer: no wrapper needed
					h.ServeHTTP(w, r)
					return
				}
				bw := &batchingWriter{ResponseWriter: w, flusher: f, delay: delay}
				if delay != noFlush {
					bw.last = time.Now()
				}
				if body, ok := r.Body.(*bufferedBody); ok && batchedChats[r.URL.Path] {
					body.beforeFill = bw.flushDeferred
				}
				w = bw
			}
		}
		h.ServeHTTP(w, r)
	})
}

// flushSuppressor is a ResponseWriter that can ignore flushes by itself
// (internal/h2's).
type flushSuppressor interface{ SuppressFlushes() }

type batchingWriter struct {
	http.ResponseWriter
	flusher http.Flusher
	delay   time.Duration // noFlush: never flush before the handler returns
	last    time.Time     // of the last real flush
	dirty   bool          // a flush was deferred
}

// noFlush is the delay of unary procedures: their handler returns right
// after sending, and the server then flushes message and trailers at once.
const noFlush = -1

// Flush flushes only when the last real flush is maxFlushDelay old; the
// HTTP/2 server sends the rest when its buffer fills or the handler returns.
func (b *batchingWriter) Flush() {
	if b.delay == noFlush {
		return
	}
	if now := time.Now(); now.Sub(b.last) >= b.delay {
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
