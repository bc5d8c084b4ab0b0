package h2

import "net/http"

// Ending the connections net/http serves itself — HTTP/1.x, and HTTP/2
// under StdHTTP2 — without a race with their clients.
//
// Closing an idle keep-alive HTTP/1.1 connection races with the client's
// next request: a proxy reuses a connection from its pool the moment a
// response is in, and a request that meets a closed (reset) connection
// cannot be told apart from one that was processed, so one that is not
// idempotent — every Connect and gRPC-Web POST — is not retried (nginx
// answers 502). The one clean end HTTP/1.1 has is a response that carries
// Connection: close: net/http closes the connection after it, and the
// client knows not to reuse the connection. net/http's HTTP/2 server, and
// internal/h2's, take the same header from a handler as "send GOAWAY and
// end the connection when its streams have" (TestConnectionCloseEndsTheConnection).
//
// So a connection that should end says so in its next response:
//   - during a drain (Drain), every HTTP/1.x connection. HTTP/2
//     connections, whichever the server, get GOAWAY from the shutdown
//     (http.Server.Shutdown) as before, and keep serving until then;
//   - past its age (ageTracker), the connection, whatever its protocol.

// Drain tells the server that a shutdown is coming: from now on, every
// response on an HTTP/1.x connection carries Connection: close, so its
// client (a proxy's keep-alive pool) stops reusing the connection before
// the shutdown closes it. Call it when the drain begins, before the
// delay that lets load balancers notice.
func (s *Server) Drain() { s.draining.Store(true) }

// connClose wraps h, the http.Server's handler: a request on a connection
// that should end gets Connection: close set on its response before h
// runs (h may still delete it). internal/h2's own HTTP/2 requests, which
// neither case concerns, pay one comparison.
func (s *Server) connClose(h http.Handler) http.Handler {
	if h == nil {
		h = http.DefaultServeMux // as net/http serves a nil Handler
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.ProtoMajor == 1 || s.conf.StdHTTP2) && s.endsConn(r) {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}

// endsConn reports whether r's response should end its connection, which
// net/http serves: the server drains and r is HTTP/1.x, or the connection
// is past its age.
func (s *Server) endsConn(r *http.Request) bool {
	if r.ProtoMajor == 1 && s.draining.Load() {
		return true
	}
	if s.ages == nil {
		return false
	}
	ac := agedConnOf(r)
	return ac != nil && ac.old.Load()
}
