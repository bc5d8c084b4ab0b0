package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/switchyard/switchyard/services/teams"
)

// migration is one versioned step of the schema. Versions are applied in
// order, each once, and recorded in schema_migrations. Never edit a released
// migration: add the next one.
//
// Rolling upgrades: replicas are replaced one at a time, so the binary of
// the previous release keeps serving on the schema a newer one migrated.
// Each migration therefore declares minCompatible, the oldest schema
// version whose binary still serves correctly once the migration is
// applied (additive steps — a new table, a trigger, a nullable column —
// keep the previous one; a step that renames or drops what an older
// binary reads must not, and is best split over two releases). It is
// recorded with the migration, and a binary refuses a database only when
// the highest recorded minimum is above the newest schema it knows.
type migration struct {
	version int
	name    string
	// minCompatible is the oldest schema version whose binary can serve
	// after this migration (at most version).
	minCompatible int
	sqlite        []string
	postgres      []string
	// both runs after the dialect's statements, in either database.
	both []string
	// args are the arguments of each statement in both, by index.
	args [][]any
}

// migrations is the schema's history.
var migrations = []migration{
	{
		version:       1,
		name:          "create teams",
		minCompatible: 1,
		sqlite: []string{`CREATE TABLE teams (
			city_key TEXT PRIMARY KEY,
			city     TEXT NOT NULL,
			nickname TEXT NOT NULL,
			rev      INTEGER NOT NULL
		) WITHOUT ROWID`},
		postgres: []string{`CREATE TABLE teams (
			city_key TEXT COLLATE "C" PRIMARY KEY,
			city     TEXT NOT NULL,
			nickname TEXT NOT NULL,
			rev      BIGINT NOT NULL
		)`},
	},
	// Binaries of schema 1 and 2 refused any newer schema, so nothing
	// older than 2 can serve after it.
	seedMigration(2, 2, "seed the tutorial teams", teams.TutorialTeams),
	{
		// The change feed's sources, as triggers so that every writer —
		// this binary, the previous one during a rolling upgrade, an
		// operator's psql or sqlite3 — reports its changes. Additive:
		// a schema-2 binary serves on, its writes reported too.
		version:       3,
		name:          "report team changes",
		minCompatible: 2,
		sqlite: []string{
			`CREATE TABLE team_changes (
				id       INTEGER PRIMARY KEY AUTOINCREMENT,
				city_key TEXT NOT NULL
			)`,
			sqliteChangeTrigger("team_changes_insert", "INSERT", "NEW", false),
			sqliteChangeTrigger("team_changes_update", "UPDATE", "NEW", false),
			sqliteChangeTrigger("team_changes_update_old", "UPDATE OF city_key", "OLD", false),
			sqliteChangeTrigger("team_changes_delete", "DELETE", "OLD", false),
		},
		postgres: []string{
			// Payload: the key, under the 8000-byte limit of NOTIFY;
			// empty (everything) for a key too long or a TRUNCATE.
			// OR REPLACE, and IF NOT EXISTS in 4: a dump of schema 2 or
			// 3 restored with pg_restore --clean drops what it holds
			// (teams, its triggers, schema_migrations) and leaves what
			// later migrations made, which migrating it again meets.
			`CREATE OR REPLACE FUNCTION switchyard_teams_notify() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN
				IF TG_OP = 'TRUNCATE' THEN
					PERFORM pg_notify('` + TeamsChannel + `', '');
					RETURN NULL;
				END IF;
` + pgNotifyKeys + `				RETURN NULL;
			END
			$$`,
			`CREATE TRIGGER teams_notify AFTER INSERT OR UPDATE OR DELETE ON teams
				FOR EACH ROW EXECUTE FUNCTION switchyard_teams_notify()`,
			`CREATE TRIGGER teams_notify_truncate AFTER TRUNCATE ON teams
				FOR EACH STATEMENT EXECUTE FUNCTION switchyard_teams_notify()`,
		},
	},
	{
		// RouteChat notes shared by replicas (notes.go). New tables only:
		// a schema-2 or -3 binary serves on, with its notes in memory.
		// SQLite keeps notes per process and gets nothing.
		version:       4,
		name:          "route notes",
		minCompatible: 2,
		postgres: []string{
			`CREATE SEQUENCE IF NOT EXISTS route_notes_id_seq`,
			`CREATE TABLE IF NOT EXISTS route_note_locations (
				latitude  INTEGER NOT NULL,
				longitude INTEGER NOT NULL,
				last_note BIGINT NOT NULL,
				PRIMARY KEY (latitude, longitude)
			)`,
			`CREATE INDEX IF NOT EXISTS route_note_locations_by_last_note ON route_note_locations (last_note)`,
			`CREATE TABLE IF NOT EXISTS route_notes (
				id        BIGINT PRIMARY KEY,
				latitude  INTEGER NOT NULL,
				longitude INTEGER NOT NULL,
				message   TEXT NOT NULL,
				FOREIGN KEY (latitude, longitude) REFERENCES route_note_locations ON DELETE CASCADE
			)`,
			`CREATE INDEX IF NOT EXISTS route_notes_at ON route_notes (latitude, longitude, id)`,
		},
	},
	{
		// The change feed carries the state each write left (the team,
		// or none), so that a cache keeps what it holds when a change
		// only repeats it — the echo of its own write — instead of
		// reading the store again. SQLite's log gains the state's
		// columns (NULL found: a row logged before, state unknown) and
		// its triggers fill them. PostgreSQL notifies the state on a
		// channel of its own, beside the key on the old one, which
		// binaries of schema 3 and 4 follow: additive.
		version:       5,
		name:          "report the state each team change left",
		minCompatible: 2,
		sqlite: []string{
			`ALTER TABLE team_changes ADD COLUMN found INTEGER`,
			`ALTER TABLE team_changes ADD COLUMN city TEXT`,
			`ALTER TABLE team_changes ADD COLUMN nickname TEXT`,
			`DROP TRIGGER team_changes_insert`,
			`DROP TRIGGER team_changes_update`,
			`DROP TRIGGER team_changes_update_old`,
			`DROP TRIGGER team_changes_delete`,
			sqliteChangeTrigger("team_changes_insert", "INSERT", "NEW", true),
			sqliteChangeTrigger("team_changes_update", "UPDATE", "NEW", true),
			sqliteChangeTrigger("team_changes_update_old", "UPDATE OF city_key", "OLD", true),
			sqliteChangeTrigger("team_changes_delete", "DELETE", "OLD", true),
		},
		postgres: []string{
			// The state channel's payload is a JSON object: key, found,
			// and city and nickname when found; empty (everything) when
			// it would not fit NOTIFY's 8000 bytes.
			`CREATE OR REPLACE FUNCTION switchyard_teams_notify() RETURNS trigger LANGUAGE plpgsql AS $$
			DECLARE
				state text;
			BEGIN
				IF TG_OP = 'TRUNCATE' THEN
					PERFORM pg_notify('` + TeamsChannel + `', '');
					PERFORM pg_notify('` + TeamStatesChannel + `', '');
					RETURN NULL;
				END IF;
` + pgNotifyKeys + `				IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND NEW.city_key <> OLD.city_key) THEN
					state := json_build_object('key', OLD.city_key, 'found', false)::text;
					PERFORM pg_notify('` + TeamStatesChannel + `', CASE WHEN octet_length(state) < 7900 THEN state ELSE '' END);
				END IF;
				IF TG_OP IN ('INSERT', 'UPDATE') THEN
					state := json_build_object('key', NEW.city_key, 'found', true, 'city', NEW.city, 'nickname', NEW.nickname)::text;
					PERFORM pg_notify('` + TeamStatesChannel + `', CASE WHEN octet_length(state) < 7900 THEN state ELSE '' END);
				END IF;
				RETURN NULL;
			END
			$$`,
		},
	},
}

// pgNotifyKeys is the part of switchyard_teams_notify (schema 3, kept by
// schema 5 for the binaries of schema 3 and 4) that notifies the keys a
// row's change touched on TeamsChannel: the key, under the 8000-byte
// limit of NOTIFY; empty (everything) for a key too long.
const pgNotifyKeys = `				IF TG_OP IN ('UPDATE', 'DELETE') THEN
					PERFORM pg_notify('` + TeamsChannel + `', CASE WHEN octet_length(OLD.city_key) < 7000 THEN OLD.city_key ELSE '' END);
				END IF;
				IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.city_key <> OLD.city_key) THEN
					PERFORM pg_notify('` + TeamsChannel + `', CASE WHEN octet_length(NEW.city_key) < 7000 THEN NEW.city_key ELSE '' END);
				END IF;
`

// sqliteChangeTrigger logs row.city_key in team_changes after op on teams,
// and prunes the log to its last changeLogKept rows (schema 3). With state
// (schema 5) it also logs the state the change left: the row after an
// insert or update (row NEW), none after a delete or for the old key of a
// rename (row OLD).
func sqliteChangeTrigger(name, op, row string, state bool) string {
	cond := ""
	if row == "OLD" && op != "DELETE" {
		cond = " WHEN OLD.city_key <> NEW.city_key"
	}
	columns, values := "city_key", row+".city_key"
	switch {
	case state && row == "NEW":
		columns, values = columns+", found, city, nickname", values+", 1, NEW.city, NEW.nickname"
	case state:
		columns, values = columns+", found, city, nickname", values+", 0, NULL, NULL"
	}
	return fmt.Sprintf(`CREATE TRIGGER %s AFTER %s ON teams%s BEGIN
		INSERT INTO team_changes (%s) VALUES (%s);
		DELETE FROM team_changes WHERE id <= (SELECT MAX(id) FROM team_changes) - %d;
	END`, name, op, cond, columns, values, changeLogKept)
}

// seedMigration inserts seed once, when the database is created: a seed team
// deleted later stays deleted.
func seedMigration(version, minCompatible int, name string, seed []teams.Team) migration {
	m := migration{version: version, name: name, minCompatible: minCompatible}
	for _, t := range seed {
		m.both = append(m.both, `INSERT INTO teams (city_key, city, nickname, rev) VALUES (?, ?, ?, 1) ON CONFLICT (city_key) DO NOTHING`)
		m.args = append(m.args, []any{teams.CityKey(t.City), t.City, t.Nickname})
	}
	return m
}

// LatestVersion is the schema version this build migrates to.
func LatestVersion() int { return migrations[len(migrations)-1].version }

// migrate brings the schema up to date in one transaction, under the
// dialect's lock, so concurrent starters wait for each other and a failed
// step leaves the database as it was. It reports the schema version it
// found and whether it migrated from it (not when another starter had
// migrated the database first).
func migrate(ctx context.Context, db *sql.DB, d dialect) (from int, migrated bool, err error) {
	if upToDate(ctx, db) {
		return 0, false, nil
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, fmt.Errorf("migrate %s: %w", d.name, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if d.lockMigrations != "" {
		if _, err := tx.ExecContext(ctx, d.lockMigrations); err != nil {
			return 0, false, fmt.Errorf("migrate %s: lock: %w", d.name, err)
		}
	}
	if err := bootstrapMigrations(ctx, tx, d); err != nil {
		return 0, false, fmt.Errorf("migrate %s: %w", d.name, err)
	}
	current, required, err := schemaVersions(ctx, tx)
	if err != nil {
		return 0, false, fmt.Errorf("migrate %s: %w", d.name, err)
	}
	if required > LatestVersion() {
		return 0, false, fmt.Errorf("the %s database has schema version %d, which needs a switchyard that knows schema %d or newer; this one knows %d: run a newer switchyard",
			d.name, current, required, LatestVersion())
	}
	for _, m := range migrations {
		if m.version <= current {
			continue
		}
		for _, stmt := range d.ddl(m) {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return 0, false, fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
			}
		}
		for i, stmt := range m.both {
			if _, err := tx.ExecContext(ctx, d.q(stmt), m.args[i]...); err != nil {
				return 0, false, fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
			}
		}
		if _, err := tx.ExecContext(ctx, d.q(`INSERT INTO schema_migrations (version, name, applied_at, min_compatible) VALUES (?, ?, ?, ?)`),
			m.version, m.name, time.Now().UTC().Format(time.RFC3339), m.minCompatible); err != nil {
			return 0, false, fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, false, fmt.Errorf("migrate %s: %w", d.name, err)
	}
	return current, current < LatestVersion(), nil
}

// upToDate reports whether the database needs no migration: its schema
// is this version's, or a newer one this version may serve. It reads
// only, so that a replica starts against a database that refuses writes
// (a hot standby, or one made read-only for maintenance) and serves its
// reads. Anything else (no schema_migrations yet, one without
// min_compatible, a read that fails) is left to migrate's transaction,
// which says what is wrong.
func upToDate(ctx context.Context, db *sql.DB) bool {
	current, required, err := schemaVersions(ctx, db)
	return err == nil && current >= LatestVersion() && required <= LatestVersion()
}

// schemaVersions reads schema_migrations: the newest version applied, and
// the oldest schema a switchyard must know to serve the database (0 and 0
// when none is recorded).
func schemaVersions(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}) (current, required int, err error) {
	var c, r sql.NullInt64
	err = q.QueryRowContext(ctx, `SELECT MAX(version), MAX(COALESCE(min_compatible, version)) FROM schema_migrations`).Scan(&c, &r)
	return int(c.Int64), int(r.Int64), err
}

// bootstrapMigrations creates schema_migrations, or adds min_compatible to
// one created before rolling upgrades were supported. Rows without it are
// read as not compatible with anything older than their own version.
func bootstrapMigrations(ctx context.Context, tx *sql.Tx, d dialect) error {
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version        INTEGER PRIMARY KEY,
		name           TEXT NOT NULL,
		applied_at     TEXT NOT NULL,
		min_compatible INTEGER
	)`); err != nil {
		return err
	}
	var n int
	if err := tx.QueryRowContext(ctx, d.q(d.columnCount), "schema_migrations", "min_compatible").Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		if _, err := tx.ExecContext(ctx, `ALTER TABLE schema_migrations ADD COLUMN min_compatible INTEGER`); err != nil {
			return err
		}
	}
	return nil
}

// MinCompatibleVersion is the schema this build needs at least to serve a
// database migrated to the newest version it knows.
func MinCompatibleVersion() int {
	v := 0
	for _, m := range migrations {
		v = max(v, m.minCompatible)
	}
	return v
}
