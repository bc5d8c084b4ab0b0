// Command switchyard serves every Switchyard API — teams, greeter,
// routeguide, keywords and summator — on one port in gRPC, gRPC-Web and
// Connect, with health checks and server reflection.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"connectrpc.com/grpchealth"

	"github.com/switchyard/switchyard/internal/coalesce"
	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/telemetry"
	"github.com/switchyard/switchyard/services/keywords"
	"github.com/switchyard/switchyard/services/routeguide"
	"github.com/switchyard/switchyard/services/teams"
	"github.com/switchyard/switchyard/services/teams/sqlstore"
)

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	var usage usageError
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		// -h asked for the usage, which went to stdout: not an error.
	case errors.As(err, &usage):
		for _, line := range strings.Split(usage.err.Error(), "\n") {
			fmt.Fprintln(os.Stderr, "switchyard:", line)
		}
		fmt.Fprintln(os.Stderr, "Run switchyard -h for every flag and its valid values.")
		os.Exit(2) // as the flag package exits on a bad command line
	default:
		fmt.Fprintln(os.Stderr, "switchyard:", err)
		os.Exit(1)
	}
}

// listen listens on addr, the value of flag; an error names the flag, and
// a port in use says what to do.
func listen(flag, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("%s %s: %w: another process listens there; stop it, or give %s another port", flag, addr, err, flag)
	case err != nil:
		return nil, fmt.Errorf("%s %s: %w", flag, addr, err)
	}
	return ln, nil
}

// tryPorts finds a port of -addr or -admin-addr another process holds
// before the team directory is opened, so that a second copy started by
// mistake fails without creating or migrating it. The ports are bound
// and let go: they are bound for good once the server can serve, so a
// client, or nginx, meanwhile gets a refused connection, which it retries
// elsewhere, rather than one that waits for the store to open.
func tryPorts(o options) error {
	for _, p := range []struct{ flag, addr string }{{"-addr", o.addr}, {"-admin-addr", o.adminAddr}} {
		if _, port, _ := net.SplitHostPort(p.addr); p.addr == "" || port == "0" {
			continue // none, or a free one picked at the bind
		}
		ln, err := listen(p.flag, p.addr)
		if err != nil {
			return err
		}
		_ = ln.Close()
	}
	return nil
}

// usageError is a bad command line (exit status 2), as opposed to a failure
// to start or serve (exit status 1).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

type options struct {
	addr              string
	routeDB           string
	adminTokenFile    string
	dataDir           string
	postgresDSN       string
	readMaxBytes      int
	compressMinBytes  int
	keywordMaxBytes   int
	routeMaxPoints    int
	notesPerLocation  int
	noteLocations     int
	noteMaxBytes      int
	notesMaxBytes     int
	readHeaderTimeout time.Duration
	idleTimeout       time.Duration
	shutdownGrace     time.Duration
	logFormat         string
	logLevel          slog.Level

	tlsCert, tlsKey  string
	unaryTimeout     time.Duration
	maxHeaderBytes   int
	h2MaxStreams     int
	h2MaxFrameSize   int
	h2ConnBuffer     int
	h2StreamBuffer   int
	h2PingInterval   time.Duration
	h2PingTimeout    time.Duration
	writeByteTimeout time.Duration
	drainDelay       time.Duration
	maxConnections   int
	maxConnAge       time.Duration
	maxConnAgeGrace  time.Duration
	http2Server      string
	grpcUnary        string
	executablePages  string
	corsOrigins      string
	teamFeedInterval time.Duration
	teamCacheEntries int
	trustedProxies   string

	// Observability (-admin-addr) and the stalled-stream bound.
	adminAddr         string
	sendWindowTimeout time.Duration
}

// parseFlags reads the command line; -h writes the usage to usage and
// returns flag.ErrHelp. Every flag has its valid values (flags.go).
func parseFlags(args []string, usage io.Writer) (options, error) {
	o, f := declareFlags()
	if err := f.parse(args, usage); err != nil {
		return *o, err
	}
	switch {
	case o.tlsCert != "" && o.tlsKey == "":
		return *o, fmt.Errorf("-tls-cert %s needs -tls-key, the file of its private key: give both for TLS, or neither for cleartext h2c", o.tlsCert)
	case o.tlsKey != "" && o.tlsCert == "":
		return *o, fmt.Errorf("-tls-key %s needs -tls-cert, the file of its certificate: give both for TLS, or neither for cleartext h2c", o.tlsKey)
	}
	if o.maxConnAgeGrace != 0 && o.maxConnAge == 0 {
		return *o, errors.New("-max-connection-age-grace does nothing without -max-connection-age")
	}
	if o.adminAddr != "" && samePort(o.addr, o.adminAddr) {
		return *o, fmt.Errorf("-admin-addr %s: the port of -addr %s; the admin listener needs a port of its own", o.adminAddr, o.addr)
	}
	return *o, nil
}

// declareFlags declares every flag of switchyard with its default and its
// valid values; the options are filled in when the flag set is parsed.
func declareFlags() (*options, *flagSet) {
	o := new(options)
	f := newFlagSet("switchyard")
	const path = "a file path"
	f.String(&o.addr, "addr", ":50051", "HOST:PORT; port 0 picks a free one", checkAddr, "listen address (HTTP/1.1 and prior-knowledge HTTP/2 cleartext)")
	f.String(&o.routeDB, "route-db", "", path+"; empty = the embedded 100-feature map", nil, "RouteGuide feature database (grpc-go example JSON)")
	f.String(&o.adminTokenFile, "admin-token-file", "", path+"; empty = SWITCHYARD_ADMIN_TOKEN, else writes disabled", nil, "file holding the bearer token that enables TeamsService writes")
	f.String(&o.dataDir, "data-dir", "", "a directory path; empty = $XDG_DATA_HOME/switchyard or ~/.local/share/switchyard", nil, "directory of the SQLite team directory (teams.db)")
	f.String(&o.postgresDSN, "postgres-dsn", "", "a postgres:// URL or a libpq key=value DSN; empty = SWITCHYARD_POSTGRES_DSN, else SQLite", nil, "keep teams in this PostgreSQL database instead of SQLite")
	f.Int(&o.readMaxBytes, "read-max-bytes", server.DefaultReadMaxBytes, sizeRange("the default"), "largest request message accepted")
	f.Int(&o.compressMinBytes, "compress-min-bytes", server.DefaultCompressMinBytes, sizeRange("the default"), "smallest response that is compressed when the client accepts it")
	f.Int(&o.keywordMaxBytes, "keyword-max-bytes", keywords.DefaultMaxTextBytes, sizeRange("the default"), "largest GetKeywords text")
	f.Int(&o.routeMaxPoints, "route-max-points", routeguide.DefaultMaxRoutePoints, countRange("the default"), "most points in one RecordRoute call")
	f.Int(&o.notesPerLocation, "chat-notes-per-location", routeguide.DefaultNotesPerLocation, countRange("the default"), "RouteChat notes kept per location (oldest evicted)")
	f.Int(&o.noteLocations, "chat-locations", routeguide.DefaultNoteLocations, countRange("the default"), "RouteChat locations kept (least recently written evicted)")
	f.Int(&o.noteMaxBytes, "chat-note-max-bytes", routeguide.DefaultNoteMaxBytes, sizeRange("the default"), "largest RouteChat note message accepted, in memory or PostgreSQL; a longer one gets resource_exhausted")
	f.Int(&o.notesMaxBytes, "chat-notes-max-bytes", routeguide.DefaultNotesMaxBytes, sizeRange("the default"), fmt.Sprintf("bytes of RouteChat notes kept in this process's memory, each its message plus %d; beyond them the locations written least recently are evicted; PostgreSQL's notes have no such bound", routeguide.NoteOverheadBytes))
	f.Duration(&o.readHeaderTimeout, "read-header-timeout", server.DefaultReadHeaderTimeout, timeoutRange("the default"), "time allowed to read a request's headers")
	f.Duration(&o.idleTimeout, "idle-timeout", server.DefaultIdleTimeout, timeoutRange("the default"), "idle keep-alive connections are closed after this long")
	f.Duration(&o.shutdownGrace, "shutdown-grace", 15*time.Second, durationRange{min: 0, max: 24 * time.Hour}, "on SIGTERM/SIGINT, time in-flight calls get to finish, after which those still running are ended (UNAVAILABLE); 0 ends them at once")
	f.Choice(&o.logFormat, "log-format", "text", []string{"text", "json"}, "log format")
	f.Level(&o.logLevel, "log-level", slog.LevelInfo, "log `level`")
	f.String(&o.tlsCert, "tls-cert", "", path+"; empty = cleartext h2c", nil, "PEM certificate (chain) file: serve HTTP/2 and HTTP/1.1 over TLS (ALPN h2, TLS 1.2+) instead of cleartext; needs -tls-key")
	f.String(&o.tlsKey, "tls-key", "", path+"; empty with no -tls-cert", nil, "PEM private key file of -tls-cert")
	f.Duration(&o.unaryTimeout, "unary-timeout", server.DefaultUnaryTimeout, timeoutRange("the default"), "deadline of a unary call whose client sets none or a longer one")
	f.Int(&o.maxHeaderBytes, "max-header-bytes", server.DefaultMaxHeaderBytes, intRange{min: 1 << 10, max: 16 << 20, zero: "the default", unit: "bytes"}, "largest request header block")
	// HTTP/2's SETTINGS_MAX_CONCURRENT_STREAMS of 0 refuses every stream
	// (RFC 9113 §6.5.2), so 0 is not "the default" here.
	f.Int(&o.h2MaxStreams, "http2-max-concurrent-streams", server.DefaultHTTP2MaxConcurrentStreams, countRange(""), "concurrent HTTP/2 streams (calls) per connection")
	// RFC 9113 §6.5.2: SETTINGS_MAX_FRAME_SIZE is 2^14..2^24-1.
	f.Int(&o.h2MaxFrameSize, "http2-max-read-frame-size", server.DefaultHTTP2MaxReadFrameSize, intRange{min: 1 << 14, max: 1<<24 - 1, zero: "the default", unit: "bytes"}, "largest HTTP/2 frame read")
	// A window starts at 65535 bytes (RFC 9113 §6.9.2) and the connection's
	// cannot shrink below it; a flow-control window is at most 2^31-1.
	f.Int(&o.h2ConnBuffer, "http2-max-receive-buffer-per-conn", server.DefaultHTTP2MaxReceiveBufferPerConnection, intRange{min: 65535, max: 1<<31 - 1, zero: "the default", unit: "bytes"}, "HTTP/2 flow-control window (unread request bytes) per connection")
	f.Int(&o.h2StreamBuffer, "http2-max-receive-buffer-per-stream", server.DefaultHTTP2MaxReceiveBufferPerStream, intRange{min: 65535, max: 1<<31 - 1, zero: "the default", unit: "bytes"}, "HTTP/2 flow-control window (unread request bytes) per stream")
	f.Duration(&o.h2PingInterval, "http2-ping-interval", server.DefaultHTTP2SendPingTimeout, timeoutRange("the default"), "ping an HTTP/2 connection silent for this long")
	f.Duration(&o.h2PingTimeout, "http2-ping-timeout", server.DefaultHTTP2PingTimeout, timeoutRange("the default"), "close an HTTP/2 connection whose ping goes unanswered this long")
	f.Duration(&o.writeByteTimeout, "write-byte-timeout", server.DefaultWriteByteTimeout, timeoutRange("the default"), "close an HTTP/2 connection that accepts no written byte for this long")
	f.Duration(&o.drainDelay, "drain-delay", 0, durationRange{min: time.Millisecond, max: time.Hour, zero: "off"}, "on SIGTERM/SIGINT, keep serving this long with health NOT_SERVING before refusing new connections (lets load balancers notice)")
	f.Choice(&o.http2Server, "http2-server", "switchyard", []string{"switchyard", "net/http"}, `HTTP/2 implementation: Switchyard's own (internal/h2) or the standard library's, for comparison`)
	f.Choice(&o.executablePages, "executable-pages", "trim", []string{"trim", "release", "keep"}, `once serving, what becomes of this binary's pages in memory: release drops from the resident set those start-up touched (mapped back as used); trim also drops its read-only data (function tables, type data) from the page cache, to be read a page at a time, about 6 MiB less RSS for a few hundred disk reads as the first calls warm up; keep leaves them to the kernel (Linux only)`)
	f.Choice(&o.grpcUnary, "grpc-unary", "direct", []string{"direct", "connect"}, `who answers plain unary calls (gRPC, gRPC-Web, Connect) of Switchyard's own procedures: internal/grpcunary (same answers, about a third of the CPU) or connect-go, which serves every other call either way`)
	// 1048576 is Linux's default ceiling on open files per process (nr_open).
	f.Int(&o.maxConnections, "max-connections", server.DefaultMaxConnections, intRange{min: 1, max: 1 << 20}, "connections served at once; more wait to be accepted")
	f.Duration(&o.maxConnAge, "max-connection-age", 0, durationRange{min: time.Second, max: 1000 * time.Hour, zero: "off"}, "end connections this old (±10%) with a graceful GOAWAY, so clients reconnect and load balancers rebalance")
	f.Duration(&o.maxConnAgeGrace, "max-connection-age-grace", 0, durationRange{min: time.Millisecond, max: 1000 * time.Hour, zero: "unbounded"}, "after -max-connection-age, calls in flight get this long before the connection closes")
	f.String(&o.corsOrigins, "cors-origins", "*", `comma-separated origins such as https://app.example.com; "*" = any, "" = none`, checkOrigins, "origins whose browser pages may call the API")
	f.String(&o.trustedProxies, "trusted-proxies", "", `comma-separated CIDR prefixes or addresses such as 10.0.0.0/8; "" = none`, func(v string) error {
		_, err := server.ParseTrustedProxies(v)
		return err
	}, "proxies whose X-Forwarded-For/X-Real-IP name the client in logs")
	// The feed's 1s bound needs a PostgreSQL heartbeat at most every 250ms.
	f.Duration(&o.teamFeedInterval, "team-feed-interval", sqlstore.DefaultFeedInterval, durationRange{min: 10 * time.Millisecond, max: sqlstore.MaxFeedInterval}, "how often the team change feed checks the store (SQLite: data_version poll; PostgreSQL: listener heartbeat)")
	f.String(&o.adminAddr, "admin-addr", "", "HOST:PORT such as 127.0.0.1:9090; empty = off", checkAdminAddr, "admin listener serving /metrics, /debug/pprof/, /livez and /readyz; never expose it publicly; the heap profile is sampled only while it is set")
	f.Duration(&o.sendWindowTimeout, "http2-send-window-timeout", server.DefaultSendWindowTimeout, durationRange{min: 100 * time.Millisecond, max: 24 * time.Hour, zero: "never"}, "reset an HTTP/2 stream whose client opens no flow-control window for its response this long (internal/h2 only)")
	// An entry is at most ~1.3 KiB (three names of 100 characters).
	f.Int(&o.teamCacheEntries, "team-cache-entries", teams.DefaultCacheEntries, intRange{min: 1, max: 1 << 20, zero: "off: every GetTeam reads the store"}, "teams and \"no team\" answers GetTeam keeps in memory, following the team change feed")
	return o, f
}

// stopAcceptingWithin bounds how long a drain waits, once it refuses new
// connections, for those just accepted to send their requests.
const stopAcceptingWithin = 500 * time.Millisecond

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "healthcheck" {
		return runHealthcheck(args[1:], stderr)
	}
	o, err := parseFlags(args, stdout)
	if err != nil {
		return usageError{err}
	}
	// SIGHUP asks for a reload, never an exit: caught from the start, as
	// opening the team store can take seconds; one sent before the server
	// serves is answered once it does.
	hangups := make(chan os.Signal, 1)
	signal.Notify(hangups, syscall.SIGHUP)
	defer signal.Stop(hangups)
	// One line per call: batch the writes so logging stays off the hot path
	// (see BENCHMARKS.md), in order. A destination that takes nothing (a
	// pipe nobody reads) must not stall every call, and the drain, behind
	// a log line: past 1 MiB unwritten, lines are dropped and counted
	// (switchyard_log_lines_dropped_total).
	logOut := coalesce.NewDroppingWriter(stderr, 1<<20)
	defer logOut.Close(5 * time.Second)
	logger := newLogger(o, logOut)
	// The log read later says where lines are missing, and how many: a
	// line before the first one kept after them.
	logOut.ReportDrops(func(n int64) []byte {
		var line bytes.Buffer
		newLogger(o, &line).Warn("log lines dropped: standard error did not take them", "dropped", n)
		return line.Bytes()
	})
	sampleHeap(o.adminAddr != "", logger)

	routeDB, err := routeguide.LoadDB(o.routeDB)
	if err != nil {
		return err
	}
	adminToken, err := loadAdminToken(o.adminTokenFile)
	if err != nil {
		return err
	}
	for _, w := range adminTokenWarnings(o.adminTokenFile, adminToken) {
		logger.Warn(w)
	}
	// Every file the flags name is read before the team directory is
	// opened (and maybe created and migrated), so a bad flag changes nothing.
	var certs *certReloader
	if o.tlsCert != "" {
		if certs, err = newCertReloader(o.tlsCert, o.tlsKey); err != nil {
			return err
		}
		warnNotValid(logger, "TLS: clients will refuse this certificate", certs.cert.Load().Leaf)
	}
	tel, err := newTelemetry(o, logger, logOut.Dropped)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(ctx); err != nil {
			logger.Warn("flushing telemetry", "err", err)
		}
	}()
	trustedProxies, _ := server.ParseTrustedProxies(o.trustedProxies) // checked by parseFlags
	if err := tryPorts(o); err != nil {
		return err
	}
	teamStore, sharedNotes, storeLost, err := openTeams(o, logger)
	if err != nil {
		return err
	}
	defer func() {
		if err := teamStore.Close(); err != nil {
			logger.Warn("closing the team store", "err", err)
		}
	}()
	if w, ok := teamStore.(teams.Watchable); ok {
		logChanges(context.Background(), w.Feed(), logger)
	}
	srv := server.NewStack(server.Config{
		Teams:               teamStore,
		AdminToken:          adminToken,
		RouteDB:             routeDB,
		RouteGuide:          routeguide.Options{MaxRoutePoints: o.routeMaxPoints, NotesPerLocation: o.notesPerLocation, NoteLocations: o.noteLocations, NoteMaxBytes: o.noteMaxBytes, NotesMaxBytes: o.notesMaxBytes, SharedNotes: sharedNotes},
		MaxKeywordTextBytes: o.keywordMaxBytes,
		ReadMaxBytes:        o.readMaxBytes,
		CompressMinBytes:    o.compressMinBytes,
		Logger:              logger,
		Telemetry:           tel,
		UnaryTimeout:        o.unaryTimeout,
		ConnectOnly:         o.grpcUnary == "connect",
		CORSOrigins:         corsOrigins(o.corsOrigins),
		TrustedProxies:      trustedProxies,
	}, server.HTTPConfig{
		ReadHeaderTimeout: o.readHeaderTimeout,
		IdleTimeout:       o.idleTimeout,

		MaxHeaderBytes:                     o.maxHeaderBytes,
		HTTP2MaxConcurrentStreams:          o.h2MaxStreams,
		HTTP2MaxReadFrameSize:              o.h2MaxFrameSize,
		HTTP2MaxReceiveBufferPerConnection: o.h2ConnBuffer,
		HTTP2MaxReceiveBufferPerStream:     o.h2StreamBuffer,
		HTTP2SendPingTimeout:               o.h2PingInterval,
		HTTP2PingTimeout:                   o.h2PingTimeout,
		WriteByteTimeout:                   o.writeByteTimeout,
		StdHTTP2:                           o.http2Server == "net/http",
		MaxConnections:                     o.maxConnections,
		SendWindowTimeout:                  o.sendWindowTimeout,
		MaxConnectionAge:                   o.maxConnAge,
		MaxConnectionAgeGrace:              o.maxConnAgeGrace,
	})
	httpServer := srv.HTTP
	if certs != nil {
		httpServer.TLSConfig.GetCertificate = certs.getCertificate
	}

	// Signals are caught from before the first connection, so a SIGTERM
	// right after start drains instead of killing the process.
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go reloadOnHangup(hangups, certs, logger)

	ln, err := listen("-addr", o.addr)
	if err != nil {
		return err
	}
	adm, err := startAdmin(o.adminAddr, tel, logger)
	if err != nil {
		ln.Close()
		return err
	}
	defer adm.close()
	logger.Info("switchyard serving", "addr", ln.Addr().String(), "services", len(srv.Services),
		"features", routeDB.Len(), "writes_enabled", adminToken != "", "tls", o.tlsCert != "")

	// Started: what starting up touched of the binary need not stay
	// resident (residency_linux.go).
	if o.executablePages != "keep" {
		if n, err := releaseStartupPages(o.executablePages == "trim"); err != nil {
			logger.Warn("releasing start-up pages", "err", err)
		} else {
			logger.Debug("start-up pages released", "bytes", n, "trim", o.executablePages == "trim")
		}
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	// exitErr is the drain's outcome: nil after a signal; an error, so
	// that the exit status is 1 and a supervisor restarts the process,
	// after the team store lost its SQLite file (storeLost; never closed
	// on PostgreSQL): only a new start opens the file now at its path.
	var exitErr error
	select {
	case err := <-serveErr:
		return err
	case sig := <-signals:
		logger.Info("draining", "signal", sig.String(), "grace", o.shutdownGrace)
	case <-storeLost:
		exitErr = errStoreLost
		logger.Error("draining: the team store lost its SQLite file; the process exits with status 1 once drained, so that its supervisor starts it again", "grace", o.shutdownGrace)
		adm.live.Store(false)
		srv.Health.SetStatus(server.HealthLiveness, grpchealth.StatusNotServing)
	}

	// Drain: report NOT_SERVING so balancers move away, stop accepting, let
	// in-flight calls finish within the grace period. A second signal ends
	// the process at once. Liveness stays SERVING (unless the store was
	// lost): the process is healthy, only leaving. HTTP/1.1 responses say
	// Connection: close from now on, so a proxy's keep-alive pool lets go
	// of its connections during the drain delay instead of racing their
	// close at the shutdown; first, so that a client that sees NOT_SERVING
	// sees that too.
	srv.Drain()
	adm.ready.Store(false)
	for _, name := range append([]string{"", server.HealthReadiness}, srv.Services...) {
		srv.Health.SetStatus(name, grpchealth.StatusNotServing)
	}
	// forcedExit ends the process on a second signal, with its log line
	// written: os.Exit runs no deferred function. In a drain the store's
	// loss began, the first signal (a supervisor stopping the process)
	// asks for what is under way and is only logged: the store's close,
	// which the forced exit skips, is what copies a deleted -wal's
	// acknowledged commits into teams.db.
	forcedExit := func(sig os.Signal) {
		logger.Warn("forced exit", "signal", sig.String())
		logOut.Close(time.Second)
		os.Exit(1)
	}
	forced := make(chan os.Signal, 1)
	go func() {
		if exitErr != nil {
			logger.Info("already draining", "signal", (<-signals).String())
		}
		forced <- <-signals
	}()
	if o.drainDelay > 0 {
		select {
		case <-time.After(o.drainDelay):
		case sig := <-forced:
			forcedExit(sig)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.shutdownGrace)
	defer cancel()
	go func() { forcedExit(<-forced) }()
	// New connections are refused from here on (a proxy tries another
	// replica); those accepted just now send their requests, which are
	// served, before the shutdown begins: it would drop them unanswered.
	settle, settled := context.WithTimeout(ctx, stopAcceptingWithin)
	srv.StopAccepting(settle)
	settled()
	// Health watches end (having sent NOT_SERVING): a shutdown waits for
	// every stream, and a client's watch lasts as long as its connection.
	srv.Health.Close()
	if err := httpServer.Shutdown(ctx); err != nil {
		// The calls still running answer UNAVAILABLE, which their clients
		// may retry elsewhere, before their connections close: closed
		// mid-message, they would report a protocol error.
		logger.Warn("grace period over; ending the calls still running", "err", err)
		srv.EndCalls()
		end, ended := context.WithTimeout(context.Background(), server.EndCallsWithin)
		if err := httpServer.Shutdown(end); errors.Is(err, context.DeadlineExceeded) {
			logger.Warn("closing the connections whose calls have not ended", "within", server.EndCallsWithin)
		}
		ended()
		_ = httpServer.Close()
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	if exitErr != nil {
		logger.Error("stopped", "err", exitErr)
		return exitErr
	}
	logger.Info("stopped")
	return nil
}

// errStoreLost ends a process whose team store lost its SQLite file.
var errStoreLost = errors.New("the team store's SQLite file was deleted or replaced under the running process (see the ERROR above); " +
	"drained and stopped: start it again to open the file now at its path")

// reloadOnHangup reads the TLS certificate again on every SIGHUP. Without
// TLS there is nothing to reload, and SIGHUP is only logged: it must not
// stop the server.
func reloadOnHangup(hangups <-chan os.Signal, certs *certReloader, logger *slog.Logger) {
	for range hangups {
		if certs == nil {
			logger.Info("SIGHUP: nothing to reload (no -tls-cert)")
			continue
		}
		leaf, err := certs.reload()
		if err != nil {
			logger.Error("TLS certificate reload failed; serving the previous certificate", "err", err)
			continue
		}
		// One not valid now is taken only when the one in use was not
		// valid either.
		if !warnNotValid(logger, "TLS certificate reloaded; clients will refuse it", leaf) {
			logger.Info("TLS certificate reloaded", certAttrs(leaf)...)
		}
	}
}

func newLogger(o options, w io.Writer) *slog.Logger {
	if o.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: o.logLevel}))
	}
	// slog's text handler, but the call lines skip slog's generic
	// attribute walk (telemetry.TextHandler): the same bytes, ~1 µs less
	// per call.
	return slog.New(telemetry.NewTextHandler(w, o.logLevel))
}

// loadAdminToken reads the admin token from path, or else from the
// SWITCHYARD_ADMIN_TOKEN environment variable. Empty means writes
// disabled. White space around it is dropped; a token no client could
// send (a line break, a space, a control or non-ASCII byte inside it) is
// refused, as writes would be enabled that nobody can make.
func loadAdminToken(path string) (string, error) {
	source, raw := "SWITCHYARD_ADMIN_TOKEN", os.Getenv("SWITCHYARD_ADMIN_TOKEN")
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("admin token: %w", err)
		}
		source, raw = "admin token file "+path, string(data)
	}
	token := strings.TrimSpace(raw)
	switch {
	case raw == "" && path == "":
		return "", nil // writes disabled
	case token == "":
		return "", fmt.Errorf("%s is empty or only white space", source)
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; c <= ' ' || c > '~' {
			return "", fmt.Errorf("%s: the token has byte 0x%02x at offset %d; an HTTP header can carry only one line of printable ASCII without spaces: "+
				"make one with, e.g., head -c 24 /dev/urandom | base64", source, c, i)
		}
	}
	return token, nil
}

// minAdminTokenBytes is the shortest admin token taken without a
// warning: 16 bytes of base64 are 96 bits, and a wrong token costs its
// sender one call, as many as it likes.
const minAdminTokenBytes = 16

// adminTokenWarnings says what is amiss, though not fatal, with the admin
// token loadAdminToken read from path (or the environment): one so short
// that it can be guessed, and a SWITCHYARD_ADMIN_TOKEN that the file
// overrides (an operator who set both may think the variable's is used).
func adminTokenWarnings(path, token string) []string {
	var warnings []string
	if path != "" && strings.TrimSpace(os.Getenv("SWITCHYARD_ADMIN_TOKEN")) != "" {
		warnings = append(warnings, "SWITCHYARD_ADMIN_TOKEN is set but not used: the admin token is the one in -admin-token-file "+path)
	}
	if token != "" && len(token) < minAdminTokenBytes {
		warnings = append(warnings, fmt.Sprintf("the admin token is %d bytes long: a short token can be guessed, as failed tries are not limited; "+
			"use %d or more random bytes, e.g. head -c 24 /dev/urandom | base64", len(token), minAdminTokenBytes))
	}
	return warnings
}

// splitOrigins turns the -cors-origins flag into a list, dropping blanks.
func splitOrigins(flagValue string) []string {
	var origins []string
	for _, o := range strings.Split(flagValue, ",") {
		if o = strings.TrimSpace(o); o != "" {
			origins = append(origins, o)
		}
	}
	return origins
}

// corsOrigins is the -cors-origins flag's list (checked by checkOrigins),
// each origin as a browser writes it in its Origin header (browserOrigin).
func corsOrigins(flagValue string) []string {
	origins := splitOrigins(flagValue)
	for i, o := range origins {
		origins[i] = browserOrigin(o)
	}
	return origins
}

// browserOrigin is origin (checked by checkOrigins) as a browser sends
// it: "HTTPS://App.example.com:443" is "https://app.example.com".
func browserOrigin(origin string) string {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return origin // "*", or refused by checkOrigins
	}
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	if h, port, err := net.SplitHostPort(host); err == nil && (scheme == "https" && port == "443" || scheme == "http" && port == "80") {
		host = h
		if strings.Contains(h, ":") {
			host = "[" + h + "]" // IPv6
		}
	}
	return scheme + "://" + host
}
