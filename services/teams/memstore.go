package teams

import (
	"context"
	"slices"
	"strings"
	"sync"
)

// MemStore is a Store in memory, seeded with the tutorial's teams. Its
// content is lost when the process ends. Its feed is live until Close:
// nothing else can change its teams, so every write is reported before Put
// or Delete returns.
type MemStore struct {
	mu    sync.RWMutex
	teams map[string]Team // by CityKey
	feed  *Feed
}

var _ Watchable = (*MemStore)(nil)

// NewMemStore returns a store holding seed.
func NewMemStore(seed []Team) *MemStore {
	s := &MemStore{teams: make(map[string]Team, len(seed)), feed: NewFeed(true)}
	for _, t := range seed {
		s.teams[CityKey(t.City)] = t
	}
	return s
}

// Get implements Store.
func (s *MemStore) Get(ctx context.Context, city string) (Team, error) {
	if err := ctx.Err(); err != nil {
		return Team{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.teams[CityKey(city)]
	if !ok {
		return Team{}, ErrNotFound
	}
	return t, nil
}

// List implements Store.
func (s *MemStore) List(ctx context.Context, opts ListOptions) ([]Team, bool, error) {
	prefix := PrefixKey(opts.Prefix)
	s.mu.RLock()
	keys := make([]string, 0, len(s.teams))
	for k := range s.teams {
		if strings.HasPrefix(k, prefix) && (opts.After == "" || k > opts.After) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	more := opts.Limit > 0 && len(keys) > opts.Limit
	if more {
		keys = keys[:opts.Limit]
	}
	out := make([]Team, len(keys))
	for i, k := range keys {
		out[i] = s.teams[k]
	}
	s.mu.RUnlock()
	return out, more, ctx.Err()
}

// Put implements Store.
func (s *MemStore) Put(ctx context.Context, t Team) (Team, bool, error) {
	if err := ctx.Err(); err != nil {
		return Team{}, false, err
	}
	t = Team{City: strings.TrimSpace(t.City), Nickname: strings.TrimSpace(t.Nickname)}
	if err := t.Validate(); err != nil {
		return Team{}, false, err
	}
	key := CityKey(t.City)
	s.mu.Lock()
	old, exists := s.teams[key]
	if exists {
		t.City = old.City
	}
	s.teams[key] = t
	s.mu.Unlock()
	s.feed.ReportLocal(Wrote(key, t, true))
	return t, !exists, nil
}

// Delete implements Store.
func (s *MemStore) Delete(ctx context.Context, city string) (Team, error) {
	if err := ctx.Err(); err != nil {
		return Team{}, err
	}
	key := CityKey(city)
	s.mu.Lock()
	t, ok := s.teams[key]
	if !ok {
		s.mu.Unlock()
		return Team{}, ErrNotFound
	}
	delete(s.teams, key)
	s.mu.Unlock()
	s.feed.ReportLocal(Wrote(key, Team{}, false))
	return t, nil
}

// Feed implements Watchable.
func (s *MemStore) Feed() *Feed { return s.feed }

// Close implements Store; it closes the feed.
func (s *MemStore) Close() error {
	s.feed.Close()
	return nil
}
