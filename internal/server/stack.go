package server

import "net/http"

// handlerStackBytes is stack a call needs through connect, the codec and
// a handler. A goroutine starts with a few KiB and grows by copying its
// stack, which walks every frame; net/http starts a goroutine per request,
// so without this each call paid for two or three growths deep in connect
// (~13% of a unary call's CPU, see BENCHMARKS.md).
const handlerStackBytes = 8 << 10

// withGrownStack grows the request goroutine's stack once, while it is
// still shallow and cheap to copy, before h runs.
func withGrownStack(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		growStack(len(r.URL.Path))
		h.ServeHTTP(w, r)
	})
}

// growStack has a frame of handlerStackBytes, so calling it makes the
// runtime allocate a stack at least that large.
//
//go:noinline
func growStack(n int) byte {
	var frame [handlerStackBytes]byte
	frame[n%len(frame)] = byte(n)
	return frame[(n*7)%len(frame)]
}
