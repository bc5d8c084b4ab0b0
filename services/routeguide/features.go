// Package routeguide implements the gRPC RouteGuide example with grpc-go's
// semantics — a feature database, rectangle queries, route summaries and
// location notes — and serves it as routeguide.v1.RouteGuideService.
package routeguide

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"os"

	"github.com/switchyard/switchyard/internal/errkind"
)

// Point is a position in E7 degrees (degrees times 10^7).
type Point struct {
	Latitude  int32 `json:"latitude"`
	Longitude int32 `json:"longitude"`
}

// Feature is a place in the database; some features have no name.
type Feature struct {
	Name     string `json:"name"`
	Location Point  `json:"location"`
}

// Valid bounds of E7 coordinates.
const (
	MaxLatitude  = 90 * 1e7
	MaxLongitude = 180 * 1e7
)

// ErrOutOfRange is returned for a point outside ±90° latitude or ±180° longitude.
var ErrOutOfRange = errors.New("coordinate out of range")

// Validate reports whether p is a position on Earth.
func (p Point) Validate() error {
	if p.Latitude < -MaxLatitude || p.Latitude > MaxLatitude {
		return errkind.Errorf(ErrOutOfRange, "latitude %d is outside ±%d (±90 degrees in E7)", p.Latitude, int32(MaxLatitude))
	}
	if p.Longitude < -MaxLongitude || p.Longitude > MaxLongitude {
		return errkind.Errorf(ErrOutOfRange, "longitude %d is outside ±%d (±180 degrees in E7)", p.Longitude, int32(MaxLongitude))
	}
	return nil
}

// defaultDB is the grpc-go route_guide example's database: 100 features
// around New Jersey and New York, 64 of them named.
//
//go:embed data/route_guide_db.json
var defaultDB []byte

// DB is a read-only feature database. Its order is the file's order.
type DB struct {
	features []Feature
	// count is how many features stand at each point (grpc-go counts every
	// match in RecordRoute); first is the index of the first of them.
	count map[Point]int32
	first map[Point]int
}

// DefaultDB returns the embedded database.
func DefaultDB() *DB {
	db, err := ParseDB(defaultDB)
	if err != nil {
		panic("routeguide: embedded database is invalid: " + err.Error())
	}
	return db
}

// LoadDB reads a database file in the grpc-go example's JSON format; an empty
// path means the embedded default.
func LoadDB(path string) (*DB, error) {
	if path == "" {
		return DefaultDB(), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("route database: %w", err)
	}
	db, err := ParseDB(data)
	if err != nil {
		return nil, fmt.Errorf("route database %s: %w", path, err)
	}
	return db, nil
}

// ParseDB parses a JSON array of features and checks every location.
func ParseDB(data []byte) (*DB, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var features []Feature
	if err := dec.Decode(&features); err != nil {
		return nil, fmt.Errorf("parse features: %w", err)
	}
	db := &DB{
		features: features,
		count:    make(map[Point]int32, len(features)),
		first:    make(map[Point]int, len(features)),
	}
	for i, f := range features {
		if err := f.Location.Validate(); err != nil {
			return nil, fmt.Errorf("feature %d (%q): %w", i, f.Name, err)
		}
		if _, ok := db.first[f.Location]; !ok {
			db.first[f.Location] = i
		}
		db.count[f.Location]++
	}
	return db, nil
}

// Len is the number of features.
func (db *DB) Len() int { return len(db.features) }

// Features returns every feature in database order.
func (db *DB) Features() []Feature { return db.features }

// FeatureAt returns the first feature at p, or a nameless feature at p when
// the database has none there (the example's answer, not an error).
func (db *DB) FeatureAt(p Point) Feature {
	if i, ok := db.first[p]; ok {
		return db.features[i]
	}
	return Feature{Location: p}
}

// CountAt is the number of features at p.
func (db *DB) CountAt(p Point) int32 { return db.count[p] }

// Rect is a rectangle given by two opposite corners in any order.
type Rect struct{ Lo, Hi Point }

// Contains reports whether p lies inside r, bounds included.
func (r Rect) Contains(p Point) bool {
	left, right := min(r.Lo.Longitude, r.Hi.Longitude), max(r.Lo.Longitude, r.Hi.Longitude)
	bottom, top := min(r.Lo.Latitude, r.Hi.Latitude), max(r.Lo.Latitude, r.Hi.Latitude)
	return p.Longitude >= left && p.Longitude <= right && p.Latitude >= bottom && p.Latitude <= top
}

// Within yields the features inside r in database order.
func (db *DB) Within(r Rect) iter.Seq[Feature] {
	return func(yield func(Feature) bool) {
		for _, f := range db.features {
			if r.Contains(f.Location) && !yield(f) {
				return
			}
		}
	}
}
