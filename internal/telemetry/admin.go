package telemetry

import (
	"io"
	"net/http"
	"net/http/pprof"
)

// AdminHandler serves the admin listener (-admin-addr), which must never
// be reachable from the public network:
//
//	/metrics        Prometheus exposition of every metric (when metrics are on)
//	/debug/pprof/   Go's profiles (cmdline shows the process's flags)
//	/livez          200 while the process runs: restart it when this fails
//	                (503 once its team store lost its SQLite file)
//	/readyz         200 while it takes calls; 503 from the moment it drains
//
// ready reports whether the server takes calls; it turns false when a
// drain begins (SIGTERM), while /livez stays 200. live reports whether
// the process can go on without a restart; it turns false when its team
// store lost its database, and ready with it.
func (t *Telemetry) AdminHandler(ready, live func() bool) http.Handler {
	mux := http.NewServeMux()
	if m := t.Metrics(); m != nil {
		mux.Handle("GET /metrics", m)
	}
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// probe answers 200 ok, or 503 with the first reason that holds.
	probe := func(checks ...func() (bool, string)) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			for _, check := range checks {
				if ok, why := check(); !ok {
					w.WriteHeader(http.StatusServiceUnavailable)
					_, _ = io.WriteString(w, why+"\n")
					return
				}
			}
			_, _ = io.WriteString(w, "ok\n")
		}
	}
	alive := func() (bool, string) {
		return live == nil || live(), "restart: the team store lost its database (see the log)"
	}
	mux.HandleFunc("GET /livez", probe(alive))
	mux.HandleFunc("GET /readyz", probe(alive, func() (bool, string) { return ready == nil || ready(), "draining" }))
	return mux
}
