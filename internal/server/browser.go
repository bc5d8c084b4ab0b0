package server

import (
	"net/http"
	"strings"

	connectcors "connectrpc.com/cors"
	"github.com/rs/cors"

	"github.com/switchyard/switchyard/internal/grpcwebtext"
	"github.com/switchyard/switchyard/web"
)

// CORSMaxAge is how long, in seconds, a browser may cache a preflight
// answer: two hours, the most Chromium honours, so a page sends one OPTIONS
// per procedure rather than one per call.
const CORSMaxAge = 2 * 60 * 60

// forBrowsers puts what browsers need in front of h: gRPC-Web text mode
// (the official gRPC-Web client's default) and, when origins is not empty,
// CORS for those origins ("*" for any) with the headers connect's cors
// package lists for gRPC-Web and Connect.
//
// Credentials are never allowed cross-origin: Switchyard has no cookies, and
// its only secret (the admin bearer token) must be put into a request by the
// page itself, so a foreign page learns nothing it could not learn with curl.
func forBrowsers(h http.Handler, origins []string) http.Handler {
	h = grpcwebtext.Handler(h)
	if len(origins) == 0 {
		return h
	}
	return cors.New(cors.Options{
		AllowedOrigins: origins,
		AllowedMethods: connectcors.AllowedMethods(),
		AllowedHeaders: append(connectcors.AllowedHeaders(), "Authorization"),
		ExposedHeaders: connectcors.ExposedHeaders(),
		MaxAge:         CORSMaxAge,
	}).Handler(h)
}

// mountConsole serves the web console's page at "/" and its assets under
// "/console/". Both patterns are GET-only and exact, so an unknown
// procedure (a POST to "/pkg.Service/Method") still gets connect's 404 /
// UNIMPLEMENTED rather than a web page.
func (s *Server) mountConsole() {
	s.mux.Handle("GET /{$}", web.IndexHandler())
	s.mux.Handle("GET "+consoleAssets, web.AssetHandler())
}

// consoleAssets is where the console's assets are served.
const consoleAssets = "/console/"

// isPage reports whether r asks for a page of the console: what the
// ServeMux serves besides the services. route answers any other call in
// an RPC protocol as an unknown procedure (the ServeMux would answer a
// plain 404, 405, or a redirect to the path with a slash).
func isPage(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		(r.URL.Path == "/" || strings.HasPrefix(r.URL.Path, consoleAssets))
}
