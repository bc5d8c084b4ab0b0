// Package server assembles Switchyard: every service's connect handler,
// health and reflection on one http.Handler that speaks gRPC, gRPC-Web and
// Connect.
package server

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/switchyard/switchyard/gen/greeter/v1/greeterv1connect"
	"github.com/switchyard/switchyard/gen/keywords/v1/keywordsv1connect"
	"github.com/switchyard/switchyard/gen/legacy/helloworld/helloworldconnect"
	"github.com/switchyard/switchyard/gen/legacy/keywords/keywordsconnect"
	"github.com/switchyard/switchyard/gen/legacy/routeguide/routeguideconnect"
	"github.com/switchyard/switchyard/gen/legacy/summator/summatorconnect"
	"github.com/switchyard/switchyard/gen/legacy/teams/teamsconnect"
	"github.com/switchyard/switchyard/gen/routeguide/v1/routeguidev1connect"
	"github.com/switchyard/switchyard/gen/summator/v1/summatorv1connect"
	"github.com/switchyard/switchyard/gen/teams/v1/teamsv1connect"
	"github.com/switchyard/switchyard/internal/grpcunary"
	"github.com/switchyard/switchyard/internal/health"
	"github.com/switchyard/switchyard/internal/outcome"
	"github.com/switchyard/switchyard/internal/reflection"
	"github.com/switchyard/switchyard/internal/telemetry"
	"github.com/switchyard/switchyard/services/greeter"
	"github.com/switchyard/switchyard/services/keywords"
	"github.com/switchyard/switchyard/services/routeguide"
	"github.com/switchyard/switchyard/services/summator"
	"github.com/switchyard/switchyard/services/teams"
)

// Health service names for probes (Kubernetes' grpc probes, switchyard
// healthcheck): HealthLiveness is SERVING for as long as the process
// serves, drain included, so a draining replica is not restarted (the
// binary turns it NOT_SERVING for a drain it starts because its team
// store lost its SQLite file, which only a restart mends);
// HealthReadiness, like "" and every service, turns NOT_SERVING when the
// drain starts, so traffic moves away. Reflection does not list them.
const (
	HealthLiveness  = "liveness"
	HealthReadiness = "readiness"
)

// Defaults of Config.
const (
	// DefaultReadMaxBytes is grpc-go's default receive limit.
	DefaultReadMaxBytes = 4 << 20
	// DefaultCompressMinBytes: smaller responses are not worth compressing.
	DefaultCompressMinBytes = 1024
)

// Config is what the server is built from; zero values take the defaults.
type Config struct {
	// Teams is the team directory (an in-memory tutorial directory if nil).
	Teams teams.Store
	// AdminToken enables TeamsService writes for callers that present it.
	AdminToken string
	// RouteDB is the RouteGuide feature database (the embedded one if nil).
	RouteDB    *routeguide.DB
	RouteGuide routeguide.Options
	// MaxKeywordTextBytes bounds GetKeywords' text.
	MaxKeywordTextBytes int
	// ReadMaxBytes bounds one request message; larger ones get RESOURCE_EXHAUSTED.
	ReadMaxBytes int
	// CompressMinBytes is the smallest response that is compressed.
	CompressMinBytes int
	// Logger receives the server's lines (slog.Default if nil); the
	// per-call lines go through Telemetry, to the same logger.
	Logger *slog.Logger
	// Telemetry receives every call's outcome record: logs, metrics,
	// traces (nil: one that writes the per-call lines to Logger only).
	Telemetry *telemetry.Telemetry
	// UnaryTimeout caps every unary call's deadline (DefaultUnaryTimeout
	// when zero); shorter client deadlines are kept.
	UnaryTimeout time.Duration
	// CORSOrigins may call from other origins in browsers ("*" for any);
	// empty allows none (same-origin pages, such as the console, still work).
	CORSOrigins []string
	// Mounts are further services, served beside Switchyard's own with the
	// same handler options (interceptors, limits) and listed by health and
	// reflection. Each is a generated New...Handler bound to its
	// implementation. The Connect conformance suite's server-under-test
	// mounts its ConformanceService here.
	Mounts []func(opts ...connect.HandlerOption) (string, http.Handler)
	// ConnectOnly serves every call through connect-go, the plain unary
	// calls (gRPC, gRPC-Web, Connect) of Switchyard's own procedures
	// included (otherwise internal/grpcunary answers those, with
	// connect-go's answers, at about a third of the CPU). For comparisons
	// and as a way back.
	ConnectOnly bool
	// TrustedProxies may set the client's address with X-Forwarded-For or
	// X-Real-IP (see withClientAddr); requests from elsewhere keep their
	// connection's address. Empty trusts no one.
	TrustedProxies []netip.Prefix
}

// Server is the assembled handler and the parts the process controls.
type Server struct {
	// Handler serves every procedure.
	Handler http.Handler
	// Health answers grpc.health.v1; set NOT_SERVING while draining, and
	// closed (ending its watches) before a graceful shutdown.
	Health *health.Checker
	// Services are the fully-qualified names of every served service.
	Services []string
	// Procedures are the methods of Services.
	Procedures []Procedure
	// Telemetry observes every call (Config.Telemetry, or the default).
	Telemetry *telemetry.Telemetry

	mux *http.ServeMux
	// services maps "/pkg.Service/" to its handler: route's fast path.
	services map[string]http.Handler
	// procedures maps each listed procedure ("/pkg.Service/Method",
	// Procedures) to its service's handler, and methods the path of each
	// service whose methods are listed to their names: a call of another
	// method gets unknownProcedure's answer.
	procedures map[string]http.Handler
	methods    map[string]string // "A, B, C"
	// served names the services served, for unknownProcedure's messages.
	served string
	// errors answers a call the server refuses before any handler in the
	// call's protocol.
	errors *connect.ErrorWriter
	// unary maps "/pkg.Service/Method" to its internal/grpcunary handler,
	// for the unary procedures of Switchyard's own services.
	unary    map[string]http.Handler
	unaryGet []string // those of unary whose Connect GETs it serves too
	// takesGet holds the procedures whose handlers take Connect GETs
	// (declared without side effects), with or without Config.ConnectOnly.
	takesGet map[string]bool
	// isUnary maps every procedure to whether it is unary: a request
	// body must arrive within its call's deadline, a unary one's within
	// unaryTimeout (limitBody).
	isUnary      map[string]bool
	unaryTimeout time.Duration
	opts         []connect.HandlerOption
	unaryOpts    *grpcunary.Options // nil with Config.ConnectOnly
}

// New builds the server from cfg.
func New(cfg Config) *Server {
	if cfg.Teams == nil {
		cfg.Teams = teams.NewMemStore(teams.TutorialTeams)
	}
	if cfg.RouteDB == nil {
		cfg.RouteDB = routeguide.DefaultDB()
	}
	if cfg.ReadMaxBytes <= 0 {
		cfg.ReadMaxBytes = DefaultReadMaxBytes
	}
	if cfg.CompressMinBytes <= 0 {
		cfg.CompressMinBytes = DefaultCompressMinBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.UnaryTimeout <= 0 {
		cfg.UnaryTimeout = DefaultUnaryTimeout
	}
	tel := cfg.Telemetry
	if tel == nil {
		tel, _ = telemetry.New(telemetry.Options{Logger: cfg.Logger}) // no metrics, no tracing: cannot fail
	}
	// Every line the handlers log carries the call's trace, if any.
	cfg.Logger = tel.Logger()
	guard := &unaryGuard{tel: tel, deadline: NewDeadlineInterceptor(cfg.UnaryTimeout),
		safe: NewSafeErrorInterceptor(cfg.Logger), recover: recoverHandler(cfg.Logger)}
	s := &Server{
		Telemetry: tel,
		mux:       http.NewServeMux(),
		opts: []connect.HandlerOption{
			// Outermost: it marks the call handled before anything can fail it.
			connect.WithInterceptors(tel.Interceptor()),
			connect.WithReadMaxBytes(cfg.ReadMaxBytes),
			withBoundedGzip(cfg.ReadMaxBytes),
			connect.WithCompressMinBytes(cfg.CompressMinBytes),
			// What they return is what the transport writes, and records.
			connect.WithInterceptors(guard.deadline, guard.safe),
			connect.WithRecover(guard.recover),
		},
		unary: map[string]http.Handler{},
	}
	if !cfg.ConnectOnly {
		// The same limits, and the same interceptors' work (unaryGuard).
		s.unaryOpts = &grpcunary.Options{ReadMaxBytes: cfg.ReadMaxBytes, CompressMinBytes: cfg.CompressMinBytes, Wrap: guard.wrap}
	}

	if c, ok := cfg.Teams.(*teams.Cache); ok {
		tel.ObserveCache(c)
	}
	if pools, ok := teams.Unwrap(cfg.Teams).(telemetry.PoolStatser); ok {
		tel.ObservePools(pools)
	}
	if w, ok := teams.Unwrap(cfg.Teams).(teams.Watchable); ok {
		tel.ObserveFeed(w.Feed())
	}
	store := tel.TraceStore(cfg.Teams)
	// Each unary procedure of Switchyard's own services is also served
	// by internal/grpcunary for plain unary calls (its handlers read only
	// the request's message and headers); the Mounts are connect-go's.
	teamsV1 := teams.NewHandler(store, cfg.AdminToken).WithLogger(cfg.Logger)
	h := s.mount(teamsv1connect.NewTeamsServiceHandler(teamsV1, s.opts...))
	plainUnary(s, teamsv1connect.TeamsServiceGetTeamProcedure, teamsV1.GetTeam, h)
	plainUnary(s, teamsv1connect.TeamsServicePutTeamProcedure, teamsV1.PutTeam, h)
	plainUnary(s, teamsv1connect.TeamsServiceDeleteTeamProcedure, teamsV1.DeleteTeam, h)
	greeterV1 := greeter.NewHandler()
	h = s.mount(greeterv1connect.NewGreeterServiceHandler(greeterV1, s.opts...))
	plainUnary(s, greeterv1connect.GreeterServiceSayHelloProcedure, greeterV1.SayHello, h)
	plainUnary(s, greeterv1connect.GreeterServiceSayHelloAgainProcedure, greeterV1.SayHelloAgain, h)
	routeGuide := routeguide.NewHandler(cfg.RouteDB, cfg.RouteGuide).WithLogger(cfg.Logger)
	h = s.mount(routeguidev1connect.NewRouteGuideServiceHandler(routeGuide, s.opts...))
	plainUnary(s, routeguidev1connect.RouteGuideServiceGetFeatureProcedure, routeGuide.GetFeature, h)
	keywordsV1 := keywords.NewHandler(cfg.MaxKeywordTextBytes)
	h = s.mount(keywordsv1connect.NewKeywordsServiceHandler(keywordsV1, s.opts...))
	plainUnary(s, keywordsv1connect.KeywordsServiceGetKeywordsProcedure, keywordsV1.GetKeywords, h)
	summatorV1 := summator.NewHandler()
	h = s.mount(summatorv1connect.NewSummatorServiceHandler(summatorV1, s.opts...))
	plainUnary(s, summatorv1connect.SummatorServiceSumProcedure, summatorV1.Sum, h)

	// The tutorials' own procedure names, served by the same logic (thin
	// adapters), so the tutorials' clients and commands work unchanged.
	teamsLegacy := teams.NewLegacyHandler(store).WithLogger(cfg.Logger)
	h = s.mount(teamsconnect.NewTeamsHandler(teamsLegacy, s.opts...))
	plainUnary(s, teamsconnect.TeamsGetTeamProcedure, teamsLegacy.GetTeam, h)
	greeterLegacy := greeter.NewLegacyHandler()
	h = s.mount(helloworldconnect.NewGreeterHandler(greeterLegacy, s.opts...))
	plainUnary(s, helloworldconnect.GreeterSayHelloProcedure, greeterLegacy.SayHello, h)
	plainUnary(s, helloworldconnect.GreeterSayHelloAgainProcedure, greeterLegacy.SayHelloAgain, h)
	routeGuideLegacy := routeguide.NewLegacyHandler(routeGuide)
	h = s.mount(routeguideconnect.NewRouteGuideHandler(routeGuideLegacy, s.opts...))
	plainUnary(s, routeguideconnect.RouteGuideGetFeatureProcedure, routeGuideLegacy.GetFeature, h)
	keywordsLegacy := keywords.NewLegacyHandler(keywords.NewHandler(cfg.MaxKeywordTextBytes))
	h = s.mount(keywordsconnect.NewKeywordServiceHandler(keywordsLegacy, s.opts...))
	plainUnary(s, keywordsconnect.KeywordServiceGetKeywordsProcedure, keywordsLegacy.GetKeywords, h)
	summatorLegacy := summator.NewLegacyHandler()
	h = s.mount(summatorconnect.NewSummatorHandler(summatorLegacy, s.opts...))
	plainUnary(s, summatorconnect.SummatorSumProcedure, summatorLegacy.Sum, h)
	for _, m := range cfg.Mounts {
		s.mount(m(s.opts...))
	}

	// Health and reflection answer for every service served, themselves
	// included.
	all := append(slices.Clone(s.Services), health.ServiceName,
		reflection.ServiceV1, reflection.ServiceV1Alpha)
	s.Health = health.NewChecker(append(slices.Clone(all), HealthLiveness, HealthReadiness)...)
	s.mount(health.NewHandler(s.Health, s.opts...))
	s.mount(reflection.NewHandlerV1(all, s.opts...))
	s.mount(reflection.NewHandlerV1Alpha(all, s.opts...))

	s.mountConsole()
	s.Procedures = proceduresOf(s.Services)
	s.procedures, s.methods = indexProcedures(s.Procedures, s.services)
	s.takesGet = map[string]bool{}
	s.isUnary = map[string]bool{}
	s.unaryTimeout = cfg.UnaryTimeout
	for _, p := range s.Procedures {
		s.isUnary[p.Path] = p.Unary
		if p.Unary && noSideEffects(p.Path) {
			s.takesGet[p.Path] = true
		}
	}
	s.served = "this server serves " + strings.Join(slices.Sorted(slices.Values(s.Services)), ", ")
	s.errors = connect.NewErrorWriter(s.opts...)
	tel.ServeProcedures(paths(s.Procedures, false))
	s.Handler = forBrowsers(http.HandlerFunc(s.route), cfg.CORSOrigins)
	s.Handler = withClientAddr(s.Handler, cfg.TrustedProxies)
	// Outermost: HTTP/1.1 (and net/http's HTTP/2) calls are recorded as
	// the client sent them (its peer the connection's until withClientAddr
	// finds the trusted proxies' client); internal/h2's streams record
	// themselves.
	s.Handler = outcome.Observe(s.Handler, tel)
	return s
}

// route sends a procedure's request straight to its handler: an RPC path
// is "/pkg.Service/Method", and a map lookup finds its internal/grpcunary
// handler, or another its service's, where ServeMux's pattern matching
// cost ~4% of a unary call. A call of a method or service not served is
// answered in its protocol (unknownProcedure). Everything else goes
// through the ServeMux.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	p := outcome.ProcedurePath(r)
	if r.Method == http.MethodGet && s.takesGet[p] && strings.Contains(r.URL.RawQuery, "base64=1") && s.badBase64Query(w, r) {
		return
	}
	if unary, ok := s.isUnary[p]; ok {
		var cancel context.CancelFunc
		if r, cancel = s.limitBody(w, r, unary); cancel != nil {
			defer cancel()
		}
		if !unary {
			answerFirst(w, r)
		}
	}
	if h, ok := s.unary[p]; ok {
		h.ServeHTTP(w, r)
		return
	}
	if h, ok := s.procedures[p]; ok {
		h.ServeHTTP(w, r)
		return
	}
	service, method := splitProcedure(p)
	if service == "" {
		if _, ok := s.methods[p+"/"]; ok {
			service = p + "/" // a listed service's path without its slash
		}
	}
	_, listed := s.methods[service]
	if h, ok := s.services[service]; ok && !listed {
		h.ServeHTTP(w, r) // a service whose methods are not listed
		return
	}
	// A listed service's paths are all procedures (the ServeMux would
	// redirect an unclean one, "/pkg.Service//Method", to another
	// procedure); any other path is one where the ServeMux serves no page.
	if (listed || !isPage(r)) && s.unknownProcedure(w, r, service, method, listed) {
		return
	}
	s.mux.ServeHTTP(w, r)
}

// splitProcedure splits a path "/pkg.Service/Method" into the service's
// path ("/pkg.Service/") and the method's name (all that follows, which
// may hold more slashes); both are empty for a path with no service.
func splitProcedure(p string) (service, method string) {
	if len(p) > 1 {
		if i := strings.IndexByte(p[1:], '/'); i > 0 {
			return p[:i+2], p[i+2:]
		}
	}
	return "", ""
}

// mount serves a service's handler at the path connect generated for it
// ("/pkg.Service/") and records the service's name. It returns h.
func (s *Server) mount(path string, h http.Handler) http.Handler {
	s.mux.Handle(path, h)
	if s.services == nil {
		s.services = map[string]http.Handler{}
	}
	s.services[path] = h
	s.Services = append(s.Services, strings.Trim(path, "/"))
	return h
}

// plainUnary serves procedure's plain unary calls with impl, the method its
// service's connect handler next was built from, through internal/grpcunary
// (unless Config.ConnectOnly); next answers the rest.
func plainUnary[Req, Res any](s *Server, procedure string, impl func(context.Context, *connect.Request[Req]) (*connect.Response[Res], error), next http.Handler) {
	if s.unaryOpts != nil {
		opts := *s.unaryOpts
		opts.Get = noSideEffects(procedure) // as its generated handler takes GETs
		s.unary[procedure] = grpcunary.New(procedure, impl, next, opts)
		if opts.Get {
			s.unaryGet = append(s.unaryGet, procedure)
		}
	}
}
