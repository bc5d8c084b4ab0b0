package sqlstore_test

import (
	"database/sql"
	"testing"

	"github.com/switchyard/switchyard/internal/pgtest"
	"github.com/switchyard/switchyard/services/teams"
	"github.com/switchyard/switchyard/services/teams/sqlstore"
	"github.com/switchyard/switchyard/services/teams/storetest"
)

// A dump taken at schema 2 (before an upgrade), restored with pg_restore
// --clean into the database the upgrade migrated, brings back teams and
// schema_migrations as they were; what later migrations made and the dump
// does not hold (switchyard_teams_notify, the RouteChat notes' tables)
// stays. The next start migrates again from 2: it stopped at migration 3,
// function "switchyard_teams_notify" already exists (42723), and no
// replica could start on the restored database.
func TestPostgresMigratesARestoredOlderDump(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	s := openPostgres(t, dsn)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	// What pg_restore --clean of the schema-2 dump does: it drops and
	// makes again the objects the dump holds.
	for _, q := range []string{
		`DROP TABLE teams, schema_migrations`,
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`,
		`INSERT INTO schema_migrations VALUES (1, 'create teams', ''), (2, 'seed the tutorial teams', '')`,
		`CREATE TABLE teams (city_key TEXT COLLATE "C" PRIMARY KEY, city TEXT NOT NULL, nickname TEXT NOT NULL, rev BIGINT NOT NULL)`,
		`INSERT INTO teams VALUES ('miami', 'Miami', 'Sharks', 1)`,
	} {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s, err = sqlstore.OpenPostgres(t.Context(), dsn)
	if err != nil {
		t.Fatalf("opening the restored schema-2 database: %v", err)
	}
	defer func() { _ = s.Close() }()
	if from, ok := s.MigratedFrom(); !ok || from != 2 {
		t.Errorf("MigratedFrom = %d, %v; want 2, true", from, ok)
	}
	if v, err := s.SchemaVersion(t.Context()); err != nil || v != sqlstore.LatestVersion() {
		t.Errorf("SchemaVersion = %d, %v; want %d", v, err, sqlstore.LatestVersion())
	}
	if got, err := s.Get(t.Context(), "Miami"); err != nil || got.Nickname != "Sharks" {
		t.Errorf("the restored team: %+v, %v", got, err)
	}
	// The triggers are back: another session's write reaches the feed.
	waitLive(t, s.Feed())
	sub := s.Feed().Subscribe()
	defer sub.Close()
	storetest.Changes(t, sub, teams.Change{All: true, Live: true})
	if _, err := db.ExecContext(t.Context(), `UPDATE teams SET nickname = 'Dolphins' WHERE city_key = 'miami'`); err != nil {
		t.Fatal(err)
	}
	storetest.Changes(t, sub, live(teams.Wrote("miami", teams.Team{City: "Miami", Nickname: "Dolphins"}, true)))
}
