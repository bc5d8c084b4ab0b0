package main

// workload is one row of the benchmark: a load generator workload run
// against a Switchyard configuration and against its peer. Adding a row
// is one line here; adding a server configuration is one entry in
// serverKinds.
type workload struct {
	name string
	load string // the load generator's workload
	conc int    // calls in flight per connection (one connection per server core)
	per  int    // messages per call for streaming requests
	unit string // what msgs counts
	// mix: GetTeam on a mix that is not all hits — a share of unknown
	// cities, and PutTeam from a writer process at a share of the reads.
	mix bool
	// stream: the target is messages/s rather than calls/s and p99.
	stream bool
	sy     string // the Switchyard configuration (a serverKinds key)
	peer   string // the server it is compared with (a serverKinds key)
	// target is the Switchyard/peer throughput ratio issue 16 asks for at
	// every core count; target1, when set, at one server core.
	target, target1 float64
	// extra rows inform; their peer is not the one the targets are set on.
	extra bool
	// maxCores limits a row to small core counts (0: every count).
	maxCores int
	// proto is the load generator's -protocol for a unary row (empty:
	// gRPC).
	proto string
	// ownPeer gives the row a run of its peer of its own, next to its
	// Switchyard run, where it would share another row's run of the same
	// load: a row whose Switchyard run stands far from that run in the
	// round is then compared with a peer run made beside it.
	ownPeer bool
}

var table = []workload{
	// Product rows: the call users make most, against what a user would
	// pick instead — grpc-go with the teams in a map.
	{name: "getteam", load: "getteam", conc: 64, unit: "calls", mix: true, sy: "switchyard", peer: "grpc-go-map", target: 1.0, target1: 1.2},
	{name: "legacygetteam", load: "legacygetteam", conc: 64, unit: "calls", mix: true, sy: "switchyard", peer: "grpc-go-map", target: 1.0, target1: 1.2},
	// Transport rows: the same domain work on both sides, on a Switchyard
	// process of their own, so RouteChat's notes (kept up to their bound)
	// and the streams' buffers are not counted in the GetTeam rows' RSS,
	// and the other way round.
	{name: "getfeature", load: "getfeature", conc: 64, unit: "calls", sy: "switchyard-routes", peer: "grpc-go", target: 1.3},
	{name: "listfeatures", load: "listfeatures", conc: 16, unit: "features", stream: true, sy: "switchyard-routes", peer: "grpc-go", target: 1.3},
	{name: "recordroute", load: "recordroute", conc: 16, per: 100, unit: "points", stream: true, sy: "switchyard-routes", peer: "grpc-go", target: 1.0},
	{name: "routechat", load: "routechat", conc: 16, per: 100, unit: "notes", stream: true, sy: "switchyard-routes", peer: "grpc-go", target: 1.0},
	// TLS: the write path differs there.
	{name: "getteam-tls", load: "getteam", conc: 64, unit: "calls", mix: true, sy: "switchyard-tls", peer: "grpc-go-map-tls", target: 1.0, target1: 1.2},
	{name: "listfeatures-tls", load: "listfeatures", conc: 16, unit: "features", stream: true, sy: "switchyard-tls", peer: "grpc-go-tls", target: 1.3},
	// PostgreSQL store, one server core (PostgreSQL itself runs on the
	// load generator's CPUs). Its peer's run of the same load would be the
	// GetTeam row's, a minute away in the round: it gets one beside it.
	{name: "getteam-postgres", load: "getteam", conc: 64, unit: "calls", mix: true, sy: "switchyard-postgres", peer: "grpc-go-map", target: 1.0, target1: 1.2, maxCores: 1, ownPeer: true},
	// Extra rows: the SQLite-reading grpc-go peer, and grpc-go's own
	// route_guide example (tutorial names on both sides).
	{name: "getteam-sqlite-peer", load: "getteam", conc: 64, unit: "calls", mix: true, sy: "switchyard", peer: "grpc-go", extra: true},
	{name: "legacygetfeature", load: "legacygetfeature", conc: 64, unit: "calls", sy: "switchyard-routes", peer: "route_guide", extra: true},
	{name: "legacylistfeatures", load: "legacylistfeatures", conc: 16, unit: "features", stream: true, sy: "switchyard-routes", peer: "route_guide", extra: true},
	{name: "legacyrecordroute", load: "legacyrecordroute", conc: 16, per: 100, unit: "points", stream: true, sy: "switchyard-routes", peer: "route_guide", extra: true},
	{name: "legacyroutechat", load: "legacyroutechat", conc: 16, per: 100, unit: "notes", stream: true, sy: "switchyard-routes", peer: "route_guide", extra: true},
	// Observability's price: metrics and an unsampled tracer on, against
	// Switchyard as shipped (issue 14).
	{name: "getteam-observed", load: "getteam", conc: 64, unit: "calls", mix: true, sy: "switchyard-observed", peer: "switchyard", extra: true},
	{name: "listfeatures-observed", load: "listfeatures", conc: 16, unit: "features", stream: true, sy: "switchyard-observed", peer: "switchyard-routes", extra: true},
	// What answering plain unary calls without connect-go's per-call
	// machinery (internal/grpcunary) buys, against -grpc-unary connect.
	{name: "getteam-direct", load: "getteam", conc: 64, unit: "calls", mix: true, sy: "switchyard", peer: "switchyard-connect", extra: true},
	// The same in the browsers' gRPC-Web and in Connect's unary protocol
	// (the generated Go SDK's default), where a plain connect-go server
	// is what a user would pick instead. Both servers are processes of
	// their own: the other protocols' code would otherwise count in the
	// GetTeam rows' RSS.
	{name: "getteam-connect", load: "getteam", proto: "connect", conc: 64, unit: "calls", mix: true, sy: "switchyard-web", peer: "switchyard-connect-web", extra: true, maxCores: 1},
	{name: "getteam-grpcweb", load: "getteam", proto: "grpcweb", conc: 64, unit: "calls", mix: true, sy: "switchyard-web", peer: "switchyard-connect-web", extra: true, maxCores: 1},
}

// targetAt is the row's throughput target at n server cores (0: none).
func (w workload) targetAt(n int) float64 {
	if n == 1 && w.target1 > 0 {
		return w.target1
	}
	return w.target
}

// serverKind is how to start one server configuration. args gets the
// listen address and the run's shared files.
type serverKind struct {
	label string // as printed
	bin   string // file in -bin
	tls   bool   // served over TLS (the load generator trusts the run's certificate)
	pg    bool   // needs the run's PostgreSQL
	args  func(addr string, f files) []string
	// addr is the listen address for a free port (default 127.0.0.1:PORT).
	addr func(port string) string
	// env is added to the server's environment.
	env []string
}

// files are what the servers of a run share: a data directory, the admin
// token, a certificate, PostgreSQL databases.
type files struct {
	dir, token, cert, key string
	dsn                   func(db string) string // nil without PostgreSQL
	stopPG                func()
	pgPid                 int // the private PostgreSQL's postmaster; 0 without
}

var serverKinds = map[string]serverKind{
	// Switchyard as shipped: the binary's defaults, SQLite in a data
	// directory of its own, logging one line per call (to /dev/null: the
	// write is paid, storage is not).
	"switchyard": {label: "switchyard", bin: "switchyard", args: func(addr string, f files) []string {
		return []string{"-addr", addr, "-data-dir", f.dir + "/switchyard", "-admin-token-file", f.token}
	}},
	"switchyard-routes": {label: "switchyard (route rows)", bin: "switchyard", args: func(addr string, f files) []string {
		return []string{"-addr", addr, "-data-dir", f.dir + "/switchyard-routes", "-admin-token-file", f.token}
	}},
	"switchyard-tls": {label: "switchyard TLS", bin: "switchyard", tls: true, args: func(addr string, f files) []string {
		return []string{"-addr", addr, "-data-dir", f.dir + "/switchyard-tls", "-admin-token-file", f.token, "-tls-cert", f.cert, "-tls-key", f.key}
	}},
	"switchyard-postgres": {label: "switchyard PostgreSQL", bin: "switchyard", pg: true, args: func(addr string, f files) []string {
		return []string{"-addr", addr, "-postgres-dsn", f.dsn("switchyard"), "-admin-token-file", f.token}
	}},
	// Switchyard with its telemetry on: metrics collected for the admin
	// listener (not scraped during the run) and tracing configured with
	// the sampler off (the endpoint is never called: nothing is sampled).
	"switchyard-observed": {label: "switchyard observed", bin: "switchyard",
		args: func(addr string, f files) []string {
			return []string{"-addr", addr, "-data-dir", f.dir + "/switchyard-observed", "-admin-token-file", f.token, "-admin-addr", "127.0.0.1:0"}
		},
		env: []string{"OTEL_TRACES_EXPORTER=otlp", "OTEL_TRACES_SAMPLER=always_off", "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:9"}},
	// Switchyard with every call served by connect-go (-grpc-unary connect).
	"switchyard-connect": {label: "switchyard connect-go", bin: "switchyard", args: func(addr string, f files) []string {
		return []string{"-addr", addr, "-data-dir", f.dir + "/switchyard-connect", "-admin-token-file", f.token, "-grpc-unary", "connect"}
	}},
	// The same two for the Connect and gRPC-Web rows.
	"switchyard-web": {label: "switchyard (web rows)", bin: "switchyard", args: func(addr string, f files) []string {
		return []string{"-addr", addr, "-data-dir", f.dir + "/switchyard-web", "-admin-token-file", f.token}
	}},
	"switchyard-connect-web": {label: "switchyard connect-go (web rows)", bin: "switchyard", args: func(addr string, f files) []string {
		return []string{"-addr", addr, "-data-dir", f.dir + "/switchyard-connect-web", "-admin-token-file", f.token, "-grpc-unary", "connect"}
	}},
	// grpc-go with the teams in a map, as the tutorial keeps them.
	"grpc-go-map": {label: "grpc-go map", bin: "grpcteams", args: func(addr string, f files) []string {
		return []string{"-addr", addr, "-admin-token-file", f.token}
	}},
	"grpc-go-map-tls": {label: "grpc-go map TLS", bin: "grpcteams", tls: true, args: func(addr string, f files) []string {
		return []string{"-addr", addr, "-admin-token-file", f.token, "-tls-cert", f.cert, "-tls-key", f.key}
	}},
	// grpc-go calling Switchyard's domain packages: the same work per call.
	"grpc-go": {label: "grpc-go", bin: "grpcref", args: func(addr string, f files) []string {
		return []string{"-addr", addr, "-data-dir", f.dir + "/grpcref", "-admin-token-file", f.token}
	}},
	"grpc-go-tls": {label: "grpc-go TLS", bin: "grpcref", tls: true, args: func(addr string, f files) []string {
		return []string{"-addr", addr, "-data-dir", f.dir + "/grpcref-tls", "-admin-token-file", f.token, "-tls-cert", f.cert, "-tls-key", f.key}
	}},
	// grpc-go's examples/route_guide/server, built from its module. It
	// listens on localhost only and takes only a port.
	"route_guide": {label: "route_guide example", bin: "routeguide-example",
		args: func(addr string, _ files) []string { return []string{"-port", addr[len("localhost:"):]} },
		addr: func(port string) string { return "localhost:" + port }},
}
