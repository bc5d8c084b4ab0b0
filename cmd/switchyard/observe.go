package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/switchyard/switchyard/internal/outcome"
	"github.com/switchyard/switchyard/internal/telemetry"
)

// newTelemetry builds the sinks of the per-call records: logs always,
// metrics when the admin listener serves them, traces when the standard
// OTEL_* variables turn them on. logLinesDropped counts the log lines
// the log's writer dropped.
func newTelemetry(o options, logger *slog.Logger, logLinesDropped func() int64) (*telemetry.Telemetry, error) {
	tracing, err := telemetry.TracingFromEnv(context.Background(), nil)
	if err != nil {
		return nil, err
	}
	if tracing != nil {
		logger.Info("tracing on: spans exported over OTLP/HTTP (OTEL_EXPORTER_OTLP_*)")
		// The SDK reports its errors, a failed export above all (its
		// batch of spans is dropped), through the global handler, which
		// would print them with the log package, outside the
		// configured format.
		otel.SetErrorHandler(otel.ErrorHandlerFunc(newTracingErrorLog(logger, time.Now).log))
	}
	return telemetry.New(telemetry.Options{Logger: logger, Metrics: o.adminAddr != "", Tracing: tracing, LogLinesDropped: logLinesDropped})
}

// tracingErrorEvery bounds the lines of OpenTelemetry's errors: a
// collector that refuses every batch under load would otherwise be a
// line per batch of 512 spans.
const tracingErrorEvery = 10 * time.Second

// tracingErrorLog writes OpenTelemetry's errors as WARN lines, at most one
// per tracingErrorEvery; the next line counts those left out.
type tracingErrorLog struct {
	logger *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	last    time.Time
	dropped int
}

func newTracingErrorLog(logger *slog.Logger, now func() time.Time) *tracingErrorLog {
	return &tracingErrorLog{logger: logger, now: now}
}

func (t *tracingErrorLog) log(err error) {
	t.mu.Lock()
	now := t.now()
	if !t.last.IsZero() && now.Sub(t.last) < tracingErrorEvery {
		t.dropped++
		t.mu.Unlock()
		return
	}
	dropped := t.dropped
	t.last, t.dropped = now, 0
	t.mu.Unlock()
	t.logger.Warn("tracing error; spans may be lost", "err", err, "errors_not_logged", dropped)
}

// admin is the admin listener (-admin-addr): metrics, profiles, probes.
type admin struct {
	hs     *http.Server
	logger *slog.Logger
	ready  atomic.Bool // false once the drain begins: /readyz answers 503
	live   atomic.Bool // false once the team store is lost: /livez answers 503
	done   chan error
}

// startAdmin serves the admin listener on addr, or does nothing when addr
// is empty.
func startAdmin(addr string, tel *telemetry.Telemetry, logger *slog.Logger) (*admin, error) {
	a := &admin{done: make(chan error, 1), logger: logger}
	a.ready.Store(true)
	a.live.Store(true)
	if addr == "" {
		return a, nil
	}
	ln, err := listen("-admin-addr", addr)
	if err != nil {
		return nil, err
	}
	handler := tel.AdminHandler(a.ready.Load, a.live.Load)
	if ip := ln.Addr().(*net.TCPAddr).IP; ip.IsLoopback() {
		handler = loopbackHostsOnly(handler)
	} else if ip.IsUnspecified() {
		logger.Warn("the admin listener is on every interface: /metrics and /debug/pprof/ answer anyone who reaches this host", "admin_addr", ln.Addr().String())
	}
	a.hs = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.Info("admin listener serving", "admin_addr", ln.Addr().String())
	go func() { a.done <- a.hs.Serve(ln) }()
	return a, nil
}

// close stops the admin listener; it serves until the very end of a drain,
// so probes and scrapes see it through.
func (a *admin) close() {
	if a.hs == nil {
		return
	}
	_ = a.hs.Close()
	if err := <-a.done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		a.logger.Warn("admin listener", "err", err)
	}
}

// loopbackHostsOnly serves only requests whose Host is "localhost" or an
// IP address: a listener on loopback is what DNS rebinding reaches, by a
// page of the attacker's domain that resolves to 127.0.0.1 in the
// browser of someone on this host, and such a request names that domain.
func loopbackHostsOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if hh, _, err := net.SplitHostPort(host); err == nil {
			host = hh
		} else {
			host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]") // "[::1]" without a port
		}
		if _, err := netip.ParseAddr(host); err != nil && !strings.EqualFold(host, "localhost") {
			http.Error(w, "the admin listener answers requests for localhost or an IP address only, not "+strconv.Quote(outcome.Echo(r.Host)), http.StatusMisdirectedRequest)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// samePort reports whether listeners on a and b (HOST:PORT, checked) would
// clash: the same port, not 0, on the same host, or where one listens on
// every address of the other's family ("" and "::" on both families,
// "0.0.0.0" on IPv4's).
func samePort(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	na, errA := strconv.Atoi(pa)
	nb, errB := strconv.Atoi(pb)
	if errA != nil || errB != nil || na != nb || na == 0 {
		return false
	}
	covers := func(every, h string) bool {
		return every == "" || every == "::" || every == "0.0.0.0" && !strings.Contains(h, ":")
	}
	return ha == hb || covers(ha, hb) || covers(hb, ha)
}

// checkAdminAddr accepts -admin-addr: empty (off) or HOST:PORT.
func checkAdminAddr(addr string) error {
	if addr == "" {
		return nil
	}
	return checkAddr(addr)
}

// heapSampleRate is the runtime's allocation sampling rate as the process
// started: 512 KiB, or what GODEBUG=memprofilerate set.
var heapSampleRate = runtime.MemProfileRate

// sampleHeap keeps the runtime sampling allocations for the heap profile
// only when something can read that profile: the admin listener's
// /debug/pprof/heap. Each sampled call stack costs a bucket and a touched
// page of the runtime's bucket table (1.4 MiB when all touched), kept for
// the life of the process, which nothing could read without the listener.
func sampleHeap(readable bool, logger *slog.Logger) {
	if readable {
		runtime.MemProfileRate = heapSampleRate
	} else {
		runtime.MemProfileRate = 0
	}
	logger.Debug("heap profile", "sample_bytes", runtime.MemProfileRate)
}
