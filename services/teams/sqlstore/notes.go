package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/switchyard/switchyard/services/routeguide"
	"github.com/switchyard/switchyard/services/teams"
)

// RouteNotes keeps RouteChat notes in PostgreSQL, so that every replica
// answers a note with the notes every replica kept at its location (pull,
// as grpc-go's route_guide: nothing is pushed to other streams). Bounds as
// the in-memory store's: at most perLocation notes at a location, the
// oldest evicted, and at most locations locations, the one written least
// recently evicted with its notes. Unlike the in-memory store it has no
// byte budget: a note's message is bounded before Add (RouteChat
// refuses one over -chat-note-max-bytes, whichever store keeps it), so the
// table holds at most perLocation × locations × that limit bytes of
// messages (100 × 10 000 × 4096 B ≈ 4.1 GB at the defaults).
//
// With SQLite, notes stay in each process's memory: processes sharing a
// data directory share teams, not notes.
type RouteNotes struct {
	db          *sql.DB
	perLocation int
	locations   int
	// timeout bounds each Add, as the store's calls (Store.boundContext).
	timeout time.Duration
}

var _ routeguide.NoteStore = (*RouteNotes)(nil)

// noteLocationsLockID serializes the eviction of whole locations between
// replicas ("route notes locs" in ASCII, truncated).
const noteLocationsLockID int64 = 0x726f757465206e6f

// ErrNoSharedNotes is returned by RouteNotes for a store that cannot share
// notes (SQLite).
var ErrNoSharedNotes = errors.New("RouteChat notes are shared only through PostgreSQL")

// RouteNotes returns s's note store with the given bounds (each at least
// 1). Only a PostgreSQL store has one.
func (s *Store) RouteNotes(perLocation, locations int) (*RouteNotes, error) {
	if s.dialect.name != postgres.name {
		return nil, ErrNoSharedNotes
	}
	return &RouteNotes{db: s.write, perLocation: max(perLocation, 1), locations: max(locations, 1), timeout: s.timeout}, nil
}

// Add implements routeguide.NoteStore in one transaction. The location's
// row is written first and stays locked until commit, so notes at one
// location are added one at a time across replicas: the bound holds and
// the new note is the last one returned.
//
// It is bounded as the store's calls are (pgTimeout): RouteChat's
// streams seldom have a deadline, and one on a replica cut off from
// PostgreSQL, or waiting for a lock another session holds, would
// otherwise wait for as long as TCP retransmits, about 15 minutes. Past
// the bound the note is unavailable (and, if its COMMIT went out, may
// have been kept).
func (r *RouteNotes) Add(callCtx context.Context, n routeguide.Note) (kept []routeguide.Note, err error) {
	ctx, cancel := bound(callCtx, r.timeout)
	defer cancel()
	committing := false
	defer func() {
		if boundOut(callCtx, ctx, err) {
			err = fmt.Errorf("route notes: %w: the database answered no note within %v", teams.ErrUnavailable, r.timeout)
		}
		if errors.Is(err, teams.ErrUnavailable) { // ctxErr's transient failures too
			err = fmt.Errorf("%w: %w", routeguide.ErrNotesUnavailable, err)
			if committing {
				err = fmt.Errorf("%w: %w", routeguide.ErrNoteMaybeKept, err)
			}
		}
	}()
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("route notes: %w", ctxErr(ctx, err))
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	lat, lng := n.Location.Latitude, n.Location.Longitude
	var (
		id       int64
		inserted bool
	)
	// xmax is 0 in a row this statement inserted, not in one it updated.
	// On conflict the note's id is drawn after the row is locked, so ids at
	// one location grow in the order their notes commit.
	if err := tx.QueryRowContext(ctx, `INSERT INTO route_note_locations (latitude, longitude, last_note)
		VALUES ($1, $2, nextval('route_notes_id_seq'))
		ON CONFLICT (latitude, longitude) DO UPDATE SET last_note = nextval('route_notes_id_seq')
		RETURNING last_note, xmax = 0`, lat, lng).Scan(&id, &inserted); err != nil {
		return nil, fmt.Errorf("route notes: %w", ctxErr(ctx, err))
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO route_notes (id, latitude, longitude, message) VALUES ($1, $2, $3, $4)`,
		id, lat, lng, n.Message); err != nil {
		return nil, fmt.Errorf("route notes: %w", ctxErr(ctx, err))
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM route_notes WHERE latitude = $1 AND longitude = $2 AND id <= (
		SELECT id FROM route_notes WHERE latitude = $1 AND longitude = $2 ORDER BY id DESC OFFSET $3 LIMIT 1)`,
		lat, lng, r.perLocation); err != nil {
		return nil, fmt.Errorf("route notes: evict: %w", ctxErr(ctx, err))
	}
	if inserted {
		// Only a new location can exceed the bound on locations; new
		// locations evict one at a time so that two cannot both count
		// themselves under it.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`SELECT pg_advisory_xact_lock(%d)`, noteLocationsLockID)); err != nil {
			return nil, fmt.Errorf("route notes: %w", ctxErr(ctx, err))
		}
		if err := r.evictLocations(ctx, tx, lat, lng); err != nil {
			return nil, fmt.Errorf("route notes: evict locations: %w", ctxErr(ctx, err))
		}
	}
	rows, err := tx.QueryContext(ctx, `SELECT message FROM route_notes WHERE latitude = $1 AND longitude = $2 ORDER BY id`, lat, lng)
	if err != nil {
		return nil, fmt.Errorf("route notes: %w", ctxErr(ctx, err))
	}
	for rows.Next() {
		note := routeguide.Note{Location: n.Location}
		if err := rows.Scan(&note.Message); err != nil {
			_ = rows.Close()
			return nil, fmt.Errorf("route notes: %w", err)
		}
		kept = append(kept, note)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("route notes: %w", ctxErr(ctx, err))
	}
	committing = true
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("route notes: %w", ctxErr(ctx, err))
	}
	return kept, nil
}

// evictLocations deletes the locations written least recently, with their
// notes, until at most r.locations are left. A location chosen for
// eviction that another replica writes meanwhile becomes the newest and is
// skipped, so the deletion repeats — each time with a fresh snapshot —
// until the count is within the bound.
func (r *RouteNotes) evictLocations(ctx context.Context, tx *sql.Tx, lat, lng int32) error {
	for range 16 {
		// Ids are drawn before commit, so another location can hold a
		// newer one than this; this location is never the one evicted.
		if _, err := tx.ExecContext(ctx, `DELETE FROM route_note_locations
			WHERE (latitude, longitude) <> ($1, $2) AND last_note <= (
				SELECT last_note FROM route_note_locations WHERE (latitude, longitude) <> ($1, $2)
				ORDER BY last_note DESC OFFSET $3 LIMIT 1)`, lat, lng, r.locations-1); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM route_note_locations`).Scan(&n); err != nil {
			return err
		}
		if n <= r.locations {
			return nil
		}
	}
	return nil
}

// Len returns how many locations and notes are kept.
func (r *RouteNotes) Len(ctx context.Context) (locations, notes int, err error) {
	err = r.db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM route_note_locations), (SELECT count(*) FROM route_notes)`).Scan(&locations, &notes)
	return locations, notes, err
}
