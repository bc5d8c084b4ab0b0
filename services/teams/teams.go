// Package teams is the directory of fictitious sports teams, one per city,
// from the Teams gRPC tutorial. It serves teams.v1.TeamsService.
package teams

import (
	"context"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/switchyard/switchyard/internal/errkind"
)

// Team is a directory entry.
type Team struct {
	City     string
	Nickname string
}

// TutorialTeams are the ten teams of the tutorial, the directory's seed.
var TutorialTeams = []Team{
	{"Chicago", "Jackals"},
	{"Detroit", "Wheels"},
	{"Minneapolis", "Nordics"},
	{"New York", "Metros"},
	{"Arizona", "Roadrunners"},
	{"San Francisco", "Stingers"},
	{"Seattle", "Orcas"},
	{"Los Angeles", "Pumas"},
	{"Philadelphia", "Foxes"},
	{"Boston", "Revolutionaries"},
}

// MaxNameLength bounds city and nickname, in characters.
const MaxNameLength = 100

var (
	// ErrNotFound is returned when no team plays in the city.
	ErrNotFound = errors.New("no team plays in this city")
	// ErrInvalid is returned for a malformed city or nickname.
	ErrInvalid = errors.New("invalid team")
	// ErrUnavailable is wrapped around a store's failure that a retry may
	// get past: its database busy (another writer holds SQLite's lock past
	// the wait), unreachable or shutting down, or the store closing.
	ErrUnavailable = errors.New("the team store is unavailable for now")
	// ErrMaybeMade is wrapped, with ErrUnavailable, around a write's
	// failure when the write may have been made all the same: the store
	// lost its database's answer to the commit and could not learn the
	// outcome, or its database did not answer the write in time.
	ErrMaybeMade = errors.New("the write may have been made")
	// ErrStoreLost is wrapped, with ErrUnavailable, around every call of a
	// store that no longer reaches the database a new start of the process
	// would open (SQLite's file deleted or replaced under it): only a
	// restart gets past it.
	ErrStoreLost = errors.New("the team store lost its database: restart the process")
	// ErrStorageFull is wrapped around a write that failed, and was not
	// made, because its database's storage is full (SQLite's file system,
	// PostgreSQL's disk): writes fail until space is freed, reads go on.
	ErrStorageFull = errors.New("the team store's storage is full")
)

// ListOptions select a page of ListTeams.
type ListOptions struct {
	// Limit is the most teams to return; 0 means no limit.
	Limit int
	// After returns only cities that sort after this key (see CityKey).
	After string
	// Prefix keeps only cities whose key starts with PrefixKey(Prefix).
	Prefix string
}

// Store holds the directory. Cities are matched by CityKey: case and
// surrounding spaces do not matter, the city is stored as first written.
type Store interface {
	// Get returns the team of city, or ErrNotFound.
	Get(ctx context.Context, city string) (Team, error)
	// List returns teams ordered by CityKey; more reports whether teams
	// beyond the limit exist.
	List(ctx context.Context, opts ListOptions) (teams []Team, more bool, err error)
	// Put creates or renames the team of t.City; created is true for a new city.
	Put(ctx context.Context, t Team) (stored Team, created bool, err error)
	// Delete removes the team of city and returns it, or ErrNotFound.
	Delete(ctx context.Context, city string) (Team, error)
	// Close releases the store's resources.
	Close() error
}

// CityKey is the form in which cities are compared: trimmed of surrounding
// white space and case-folded, so "  new york " finds "New York".
func CityKey(city string) string {
	return strings.ToLower(strings.TrimSpace(city))
}

// PrefixKey is the key a city's key must start with to match prefix: in
// lower case, without leading white space (no city key has any), but
// with its trailing white space, which says where a word ends: "new york "
// matches New York City, not New York.
func PrefixKey(prefix string) string {
	return strings.ToLower(strings.TrimLeftFunc(prefix, unicode.IsSpace))
}

// appendCityKey appends CityKey(city) to b. An ASCII city's key is
// built in b without an allocation, so a map lookup by string(b), which
// does not allocate either, costs a cache hit no key; other cities take
// CityKey.
func appendCityKey(b []byte, city string) []byte {
	for i := 0; i < len(city); i++ {
		if city[i] >= utf8.RuneSelf {
			return append(b, CityKey(city)...)
		}
	}
	city = strings.TrimSpace(city)
	for i := 0; i < len(city); i++ {
		c := city[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

// ValidateCity checks a city as given by a caller.
func ValidateCity(city string) error {
	return validateName("city", city)
}

// Validate checks both fields of a team.
func (t Team) Validate() error {
	if err := validateName("city", t.City); err != nil {
		return err
	}
	return validateName("nickname", t.Nickname)
}

// nameExample is a valid value of each field, for the message that asks
// for one.
var nameExample = map[string]string{"city": "Chicago", "nickname": "Jackals"}

func validateName(field, v string) error {
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		return errkind.Errorf(ErrInvalid, "%s is empty: give one, such as %q", field, nameExample[field])
	case !utf8.ValidString(v):
		return errkind.Errorf(ErrInvalid, "%s is not valid UTF-8", field)
	case strings.IndexFunc(v, unicode.IsControl) >= 0:
		return errkind.Errorf(ErrInvalid, "%s contains a control character", field)
	case utf8.RuneCountInString(v) > MaxNameLength:
		return errkind.Errorf(ErrInvalid, "%s is %d characters long, the limit is %d", field, utf8.RuneCountInString(v), MaxNameLength)
	}
	return nil
}
