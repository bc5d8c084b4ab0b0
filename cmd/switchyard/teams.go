package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/switchyard/switchyard/services/routeguide"
	"github.com/switchyard/switchyard/services/teams"
	"github.com/switchyard/switchyard/services/teams/sqlstore"
)

// openTeams opens the team directory: PostgreSQL when a DSN is given (flag,
// then SWITCHYARD_POSTGRES_DSN), else SQLite in the data directory. With
// PostgreSQL, RouteChat notes are kept there too, shared by the replicas;
// with SQLite notes is nil and they stay in this process's memory. Unless
// -team-cache-entries is 0, GetTeam is served by a teams.Cache on the
// store's change feed. lost is closed once the store refuses every call
// until a restart (sqlstore.Store.Lost).
func openTeams(o options, logger *slog.Logger) (store teams.Store, notes routeguide.NoteStore, lost <-chan struct{}, err error) {
	s, notes, err := openStore(o, logger)
	if err != nil {
		return nil, nil, nil, err
	}
	if o.teamCacheEntries == 0 {
		return s, notes, s.Lost(), nil
	}
	return teams.NewCache(s, o.teamCacheEntries, logger), notes, s.Lost(), nil
}

func openStore(o options, logger *slog.Logger) (store *sqlstore.Store, notes routeguide.NoteStore, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := []sqlstore.Option{sqlstore.WithLogger(logger), sqlstore.WithFeedInterval(o.teamFeedInterval)}
	dsn, from := o.postgresDSN, "-postgres-dsn"
	if dsn == "" {
		dsn, from = strings.TrimSpace(os.Getenv("SWITCHYARD_POSTGRES_DSN")), "SWITCHYARD_POSTGRES_DSN"
	}
	if dsn != "" && o.dataDir != "" {
		logger.Warn("-data-dir is not used: the teams are in PostgreSQL", "dsn_from", from, "data_dir", o.dataDir)
	}
	if from == "-postgres-dsn" && dsnHasPassword(dsn) {
		logger.Warn("-postgres-dsn holds a password, which the process list and /debug/pprof/cmdline show to whoever reads them: " +
			"give the DSN in SWITCHYARD_POSTGRES_DSN instead, or the password in PGPASSFILE")
	}
	if dsn != "" {
		// The error names the DSN's source, as SQLite's names -data-dir:
		// with both set the flag wins, and a person must know which to fix.
		s, err := sqlstore.OpenPostgres(ctx, dsn, opts...)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", from, err)
		}
		shared, err := s.RouteNotes(o.notesPerLocation, o.noteLocations)
		if err != nil {
			_ = s.Close()
			return nil, nil, fmt.Errorf("%s: %w", from, err)
		}
		logger.Info("teams and RouteChat notes in PostgreSQL", append([]any{"dsn_from", from}, schemaAttrs(ctx, s, o)...)...)
		return s, shared, nil
	}
	dir, which := o.dataDir, "-data-dir"
	if dir == "" {
		var err error
		if dir, err = sqlstore.DefaultDataDir(); err != nil {
			return nil, nil, err
		}
		which = "the default data directory (-data-dir chooses another)"
	}
	s, err := sqlstore.OpenSQLite(ctx, dir, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", which, err)
	}
	logger.Info("teams in SQLite; RouteChat notes in this process's memory", append([]any{"dir", dir}, schemaAttrs(ctx, s, o)...)...)
	return s, nil, nil
}

// passwordKey finds a password in a libpq key=value DSN.
var passwordKey = regexp.MustCompile(`(^|\s)password\s*=`)

// dsnHasPassword reports whether the PostgreSQL DSN (a postgres:// URL or
// libpq key=value pairs) carries a password itself, rather than leaving it
// to PGPASSWORD or PGPASSFILE. A URL's parts are found by hand: net/url
// refuses URLs pgx takes (several hosts, "[::1]:5432,[::2]:5432"), and a
// DSN that parses nowhere still shows its password to ps.
func dsnHasPassword(dsn string) bool {
	rest, isURL := strings.CutPrefix(dsn, "postgres://")
	if !isURL {
		rest, isURL = strings.CutPrefix(dsn, "postgresql://")
	}
	if !isURL {
		return passwordKey.MatchString(dsn)
	}
	authority, query := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority = rest[:i]
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		query = rest[i+1:]
	}
	if at := strings.LastIndexByte(authority, '@'); at >= 0 && strings.Contains(authority[:at], ":") {
		return true
	}
	values, _ := url.ParseQuery(query) // what parses of it
	return values.Has("password")
}

// logChanges writes every change the team feed delivers to a subscriber,
// at debug level, until ctx ends: what a cache on the feed would see.
func logChanges(ctx context.Context, feed *teams.Feed, logger *slog.Logger) {
	if !logger.Enabled(ctx, slog.LevelDebug) {
		return
	}
	sub := feed.Subscribe()
	go func() {
		defer sub.Close()
		for {
			c, err := sub.Next(ctx)
			if err != nil {
				return
			}
			logger.Debug("team change", "key", c.Key, "all", c.All, "live", c.Live, "known", c.Known, "found", c.Found, "local", c.Local)
		}
	}()
}

// schemaAttrs are the start line's schema versions: the database's, this
// build's, and the one it migrated from when this start migrated it (0:
// it made the database); then the team cache's bound.
func schemaAttrs(ctx context.Context, s *sqlstore.Store, o options) []any {
	attrs := []any{"schema_version", schemaVersion(ctx, s), "build_schema_version", sqlstore.LatestVersion()}
	if from, ok := s.MigratedFrom(); ok {
		attrs = append(attrs, "migrated_from", from)
	}
	return append(attrs, "team_cache_entries", o.teamCacheEntries)
}

// schemaVersion is the database's schema version, which is above this
// build's own during a rolling upgrade.
func schemaVersion(ctx context.Context, s *sqlstore.Store) int {
	v, err := s.SchemaVersion(ctx)
	if err != nil {
		return sqlstore.LatestVersion()
	}
	return v
}
