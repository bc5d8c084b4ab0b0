package telemetry

import (
	"context"
	"database/sql"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"golang.org/x/net/http2"

	"github.com/switchyard/switchyard/internal/outcome"
)

// durationBuckets are the latency histogram's bounds, in seconds: fine
// below a millisecond, where a GetTeam call's median lies, so that a p99
// reads what it is rather than "at most 5 ms" (the first bucket of common
// defaults), and up to 10 s for long calls.
var durationBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075,
	0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// metrics is the metric sink. The per-call path is a few atomic additions
// in a series of its own per procedure and protocol, plus one histogram
// record with a precomputed attribute set: the counters are observable
// instruments, read from the atomics at scrape time, so a call allocates
// nothing for them.
type metrics struct {
	t        *Telemetry
	registry *prometheus.Registry
	provider *sdkmetric.MeterProvider
	duration metric.Float64Histogram

	mu     sync.Mutex               // creating series
	series []atomic.Pointer[series] // procedure × protocol

	conns                       atomic.Int64
	refused                     atomic.Int64
	pingTimeouts, writeTimeouts atomic.Int64
	linesDropped                atomic.Int64
	resets                      [2][http2Codes + 1]atomic.Int64                        // [by client][http2CodeIndex]
	goAways                     [outcome.NumGoAwayReasons][http2Codes + 1]atomic.Int64 // [reason][http2CodeIndex]

	poolsMu sync.Mutex // pools, caches and feeds
	pools   []PoolStatser
	caches  []CacheStatser
	feeds   []FeedStatser
}

// series is the state of one procedure and protocol.
type series struct {
	procedure, protocol string
	attrs               attribute.Set
	record              []metric.RecordOption // the histogram's attributes
	inFlight            atomic.Int64
	msgsIn, msgsOut     atomic.Int64
	calls               [outcome.NumCodes][outcome.NumEnds]atomic.Int64
}

// PoolStatser is a store that reports the statistics of its database/sql
// connection pools, by pool name ("read", "write"): the team store's
// sqlstore.Store does.
type PoolStatser interface {
	PoolStats() map[string]sql.DBStats
}

// CommitStatser is a store that groups writes into commits (the SQLite
// and PostgreSQL stores): it reports the writes its writer took and the
// transactions it began for them, whatever their outcome, or ok false
// when it does not group them.
type CommitStatser interface {
	CommitStats() (writes, commits int64, ok bool)
}

// FsyncStatser is a store whose fsyncs may wait in the network poller
// (the SQLite store, through internal/sqlitevfs): it reports those that
// did and those made blocking because the kernel refused AIO, or ok false
// when it makes no fsyncs of its own.
type FsyncStatser interface {
	FsyncStats() (parked, blocking int64, ok bool)
}

func newMetrics(t *Telemetry) (*metrics, error) {
	m := &metrics{t: t, registry: prometheus.NewRegistry()}
	m.series = make([]atomic.Pointer[series], outcome.NumProtocols) // "unknown"
	// Go runtime and process metrics: client_golang's collectors, the
	// names Go dashboards expect (go_*, process_*), on the same registry.
	m.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exporter, err := otelprom.New(otelprom.WithRegisterer(m.registry), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		return nil, err
	}
	m.provider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	meter := m.provider.Meter("github.com/switchyard/switchyard/internal/telemetry")

	if m.duration, err = meter.Float64Histogram("switchyard.rpc.server.duration", metric.WithUnit("s"),
		metric.WithDescription("Time from a call's request headers to its end, by procedure and protocol."),
		metric.WithExplicitBucketBoundaries(durationBuckets...)); err != nil {
		return nil, err
	}
	calls, err := meter.Int64ObservableCounter("switchyard.rpc.server.calls",
		metric.WithDescription("Calls ended, by procedure, protocol, status code and how they ended (sent, client_reset, server_reset, conn_closed); calls rejected before a handler included."))
	if err != nil {
		return nil, err
	}
	inFlight, err := meter.Int64ObservableUpDownCounter("switchyard.rpc.server.in_flight",
		metric.WithDescription("Calls (streams) in progress, by procedure and protocol."))
	if err != nil {
		return nil, err
	}
	msgsIn, err := meter.Int64ObservableCounter("switchyard.rpc.server.messages.received",
		metric.WithDescription("Request messages received, by procedure and protocol."))
	if err != nil {
		return nil, err
	}
	msgsOut, err := meter.Int64ObservableCounter("switchyard.rpc.server.messages.sent",
		metric.WithDescription("Response messages sent, by procedure and protocol."))
	if err != nil {
		return nil, err
	}
	if _, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for i := range m.series {
			s := m.series[i].Load()
			if s == nil {
				continue
			}
			o.ObserveInt64(inFlight, s.inFlight.Load(), metric.WithAttributeSet(s.attrs))
			o.ObserveInt64(msgsIn, s.msgsIn.Load(), metric.WithAttributeSet(s.attrs))
			o.ObserveInt64(msgsOut, s.msgsOut.Load(), metric.WithAttributeSet(s.attrs))
			for code := range s.calls {
				for end := range s.calls[code] {
					if n := s.calls[code][end].Load(); n > 0 {
						o.ObserveInt64(calls, n, metric.WithAttributes(
							attribute.String("procedure", s.procedure), attribute.String("protocol", s.protocol),
							attribute.String("code", outcome.Code(code).String()), attribute.String("end", outcome.End(end).String())))
					}
				}
			}
		}
		return nil
	}, calls, inFlight, msgsIn, msgsOut); err != nil {
		return nil, err
	}
	if err := m.transportInstruments(meter); err != nil {
		return nil, err
	}
	if err := m.poolInstruments(meter); err != nil {
		return nil, err
	}
	if err := m.cacheInstruments(meter); err != nil {
		return nil, err
	}
	if err := m.feedInstruments(meter); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *metrics) transportInstruments(meter metric.Meter) error {
	conns, err := meter.Int64ObservableUpDownCounter("switchyard.http.connections.open",
		metric.WithDescription("Client connections open (HTTP/1.1 and HTTP/2)."))
	if err != nil {
		return err
	}
	resets, err := meter.Int64ObservableCounter("switchyard.http2.stream.resets",
		metric.WithDescription("HTTP/2 streams reset (RST_STREAM), by side (client or server) and error code; refused streams are counted apart."))
	if err != nil {
		return err
	}
	refused, err := meter.Int64ObservableCounter("switchyard.http2.streams.refused",
		metric.WithDescription("HTTP/2 streams refused (REFUSED_STREAM): over the concurrent stream limit, or after GOAWAY."))
	if err != nil {
		return err
	}
	goAways, err := meter.Int64ObservableCounter("switchyard.http2.goaways.sent",
		metric.WithDescription("Final HTTP/2 GOAWAY frames sent, by reason (shutdown, max_age, idle, client_goaway, connection_error, handler_close) and error code."))
	if err != nil {
		return err
	}
	pings, err := meter.Int64ObservableCounter("switchyard.http2.ping.timeouts",
		metric.WithDescription("HTTP/2 connections closed because a ping went unanswered."))
	if err != nil {
		return err
	}
	writes, err := meter.Int64ObservableCounter("switchyard.http2.write.timeouts",
		metric.WithDescription("HTTP/2 connections closed because the peer stopped reading (write timeout)."))
	if err != nil {
		return err
	}
	dropped, err := meter.Int64ObservableCounter("switchyard.log.rejected_lines.dropped",
		metric.WithDescription("Log lines of calls rejected before a handler, and of failed TLS handshakes, that sampling dropped (their calls are still counted)."))
	if err != nil {
		return err
	}
	unwritten, err := meter.Int64ObservableCounter("switchyard.log.lines.dropped",
		metric.WithDescription("Log lines dropped, once the log writer's buffer was full, because the log's destination did not take them as fast as they came (a pipe nobody reads)."))
	if err != nil {
		return err
	}
	spansExported, err := meter.Int64ObservableCounter("switchyard.trace.spans.exported",
		metric.WithDescription("Spans the OTLP collector took."))
	if err != nil {
		return err
	}
	spansDropped, err := meter.Int64ObservableCounter("switchyard.trace.spans.dropped",
		metric.WithDescription("Spans dropped, by reason: queue_full (the export queue was full: the collector is slow or down), export_failed (the collector refused them, or did not take them within the export timeout)."))
	if err != nil {
		return err
	}
	queueFull := metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "queue_full")))
	exportFailed := metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "export_failed")))
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(conns, m.conns.Load())
		if tr := m.t.tracing; tr != nil && tr.spans != nil {
			o.ObserveInt64(spansExported, tr.spans.exported.Load())
			o.ObserveInt64(spansDropped, tr.spans.queueFull.Load(), queueFull)
			o.ObserveInt64(spansDropped, tr.spans.exportFailed.Load(), exportFailed)
		}
		if m.t.logLinesDropped != nil {
			o.ObserveInt64(unwritten, m.t.logLinesDropped())
		}
		o.ObserveInt64(refused, m.refused.Load())
		o.ObserveInt64(pings, m.pingTimeouts.Load())
		o.ObserveInt64(writes, m.writeTimeouts.Load())
		o.ObserveInt64(dropped, m.linesDropped.Load())
		for side, name := range []string{"server", "client"} {
			for code := range m.resets[side] {
				if n := m.resets[side][code].Load(); n > 0 {
					o.ObserveInt64(resets, n, metric.WithAttributes(attribute.String("side", name),
						attribute.String("code", http2CodeLabel(code))))
				}
			}
		}
		for reason := range m.goAways {
			for code := range m.goAways[reason] {
				if n := m.goAways[reason][code].Load(); n > 0 {
					o.ObserveInt64(goAways, n, metric.WithAttributes(attribute.String("reason", outcome.GoAwayReason(reason).String()),
						attribute.String("code", http2CodeLabel(code))))
				}
			}
		}
		return nil
	}, conns, resets, refused, goAways, pings, writes, dropped, unwritten, spansExported, spansDropped)
	return err
}

// poolInstruments reports the database/sql pools of the stores given to
// ObservePools.
func (m *metrics) poolInstruments(meter metric.Meter) error {
	open, err := meter.Int64ObservableGauge("switchyard.db.pool.connections.open",
		metric.WithDescription("Connections of the pool, in use and idle."))
	if err != nil {
		return err
	}
	inUse, err := meter.Int64ObservableGauge("switchyard.db.pool.connections.in_use", metric.WithDescription("Connections in use."))
	if err != nil {
		return err
	}
	idle, err := meter.Int64ObservableGauge("switchyard.db.pool.connections.idle", metric.WithDescription("Idle connections."))
	if err != nil {
		return err
	}
	maxOpen, err := meter.Int64ObservableGauge("switchyard.db.pool.connections.max", metric.WithDescription("The pool's limit on open connections (0: none)."))
	if err != nil {
		return err
	}
	waits, err := meter.Int64ObservableCounter("switchyard.db.pool.waits", metric.WithDescription("Queries that waited for a connection."))
	if err != nil {
		return err
	}
	waited, err := meter.Float64ObservableCounter("switchyard.db.pool.wait.duration", metric.WithUnit("s"),
		metric.WithDescription("Time spent waiting for a connection."))
	if err != nil {
		return err
	}
	writes, err := meter.Int64ObservableCounter("switchyard.teams.store.writes",
		metric.WithDescription("Team writes (PutTeam) the store's writer took, alone or in a group, whatever their outcome."))
	if err != nil {
		return err
	}
	commits, err := meter.Int64ObservableCounter("switchyard.teams.store.commits",
		metric.WithDescription("Transactions the store's writer began for those writes, whatever their outcome: writes that arrive together share one (and, on SQLite, its fsync); when a group's transaction fails, its writes are retried one at a time, and those count instead."))
	if err != nil {
		return err
	}
	fsyncs, err := meter.Int64ObservableCounter("switchyard.sqlite.fsyncs",
		metric.WithDescription("SQLite's fsyncs, by how they waited: parked (the goroutine waited in the poller while the kernel synced) or blocking (the kernel refused AIO: the thread and its P waited)."))
	if err != nil {
		return err
	}
	parkedSet := metric.WithAttributes(attribute.String("wait", "parked"))
	blockingSet := metric.WithAttributes(attribute.String("wait", "blocking"))
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		m.poolsMu.Lock()
		pools := m.pools
		m.poolsMu.Unlock()
		for _, p := range pools {
			if c, ok := p.(CommitStatser); ok {
				if w, n, ok := c.CommitStats(); ok {
					o.ObserveInt64(writes, w)
					o.ObserveInt64(commits, n)
				}
			}
			if f, ok := p.(FsyncStatser); ok {
				if parked, blocking, ok := f.FsyncStats(); ok {
					o.ObserveInt64(fsyncs, parked, parkedSet)
					o.ObserveInt64(fsyncs, blocking, blockingSet)
				}
			}
			for name, st := range p.PoolStats() {
				set := metric.WithAttributes(attribute.String("pool", name))
				o.ObserveInt64(open, int64(st.OpenConnections), set)
				o.ObserveInt64(inUse, int64(st.InUse), set)
				o.ObserveInt64(idle, int64(st.Idle), set)
				o.ObserveInt64(maxOpen, int64(st.MaxOpenConnections), set)
				o.ObserveInt64(waits, st.WaitCount, set)
				o.ObserveFloat64(waited, st.WaitDuration.Seconds(), set)
			}
		}
		return nil
	}, open, inUse, idle, maxOpen, waits, waited, writes, commits, fsyncs)
	return err
}

// sized makes room for the series of n procedures.
func (m *metrics) sized(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if need := n * outcome.NumProtocols; need > len(m.series) {
		grown := make([]atomic.Pointer[series], need)
		for i := range m.series {
			grown[i].Store(m.series[i].Load())
		}
		m.series = grown
	}
}

// seriesOf returns the series of procedure index proc and protocol p,
// creating it on first use.
func (m *metrics) seriesOf(proc int, p outcome.Protocol) *series {
	i := proc*outcome.NumProtocols + int(p)
	if i < len(m.series) {
		if s := m.series[i].Load(); s != nil {
			return s
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if i >= len(m.series) {
		i, proc = int(p), 0 // not sized for it (no ServeProcedures): "unknown"
	}
	if s := m.series[i].Load(); s != nil {
		return s
	}
	s := &series{procedure: m.t.names[proc], protocol: p.String()}
	s.attrs = attribute.NewSet(attribute.String("procedure", s.procedure), attribute.String("protocol", s.protocol))
	s.record = []metric.RecordOption{metric.WithAttributeSet(s.attrs)}
	m.series[i].Store(s)
	return s
}

func (m *metrics) started(proc int, p outcome.Protocol) {
	m.seriesOf(proc, p).inFlight.Add(1)
}

func (m *metrics) ended(proc int, r *outcome.Record) {
	s := m.seriesOf(proc, r.Protocol)
	s.inFlight.Add(-1)
	s.msgsIn.Add(r.MsgsIn)
	s.msgsOut.Add(r.MsgsOut)
	// The duration first: a scrape that counts the call in calls_total
	// then finds it in the histogram too (the other order let a scrape
	// fall between them).
	m.duration.Record(context.Background(), r.Duration.Seconds(), s.record...)
	s.calls[r.Code][r.End].Add(1)
}

func (m *metrics) reset(byClient bool, code uint32) {
	side := 0
	if byClient {
		side = 1
	}
	m.resets[side][http2CodeIndex(code)].Add(1)
}

func (m *metrics) goAway(code uint32, reason outcome.GoAwayReason) {
	m.goAways[min(reason, outcome.NumGoAwayReasons-1)][http2CodeIndex(code)].Add(1)
}

// http2Codes is how many error codes HTTP/2 names (RFC 9113 section 7,
// NO_ERROR to HTTP_1_1_REQUIRED). A peer may send any 32-bit code: the
// others are counted together as code="unknown", so that the label stays
// bounded and does not pass one code off as another.
const http2Codes = 14

// http2CodeIndex is code's place in the counters: http2Codes for every
// code HTTP/2 does not name.
func http2CodeIndex(code uint32) int {
	return int(min(code, http2Codes))
}

// http2CodeLabel is the code label of a counter's place: the code's name
// ("CANCEL"), or "unknown".
func http2CodeLabel(i int) string {
	if i < http2Codes {
		return http2.ErrCode(i).String()
	}
	return "unknown"
}

func (m *metrics) droppedLine() { m.linesDropped.Add(1) }

// ObservePools reports the database/sql pools of p in the metrics.
func (t *Telemetry) ObservePools(p PoolStatser) {
	if t.metrics == nil || p == nil {
		return
	}
	t.metrics.poolsMu.Lock()
	t.metrics.pools = append(t.metrics.pools, p)
	t.metrics.poolsMu.Unlock()
}

// Metrics serves the Prometheus exposition of every metric, or nil when
// metrics are off.
func (t *Telemetry) Metrics() http.Handler {
	if t.metrics == nil {
		return nil
	}
	return promhttp.HandlerFor(t.metrics.registry, promhttp.HandlerOpts{})
}
