// Package storetest is the one test suite every teams.Store must pass: the
// in-memory store, SQLite and PostgreSQL run the same cases.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/services/teams"
)

// Factory opens a new, empty-of-changes store seeded with the tutorial's
// teams. The store is closed by the suite.
type Factory func(t *testing.T) teams.Store

// Run runs every case against stores from open.
func Run(t *testing.T, open Factory) {
	t.Helper()
	cases := []struct {
		name string
		fn   func(t *testing.T, s teams.Store)
	}{
		{"Seeded", testSeeded},
		{"CityMatching", testCityMatching},
		{"PutCreatesAndUpdates", testPut},
		{"PutInvalid", testPutInvalid},
		{"Delete", testDelete},
		{"ListPagesAndPrefix", testList},
		{"ListOrderIsByteOrder", testListOrder},
		{"CanceledContext", testCanceled},
		{"ConcurrentWriters", testConcurrent},
		{"FeedReportsWrites", testFeed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			c.fn(t, s)
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func testSeeded(t *testing.T, s teams.Store) {
	all, more, err := s.List(ctx(t), teams.ListOptions{})
	if err != nil || more {
		t.Fatalf("List() more=%v err=%v", more, err)
	}
	want := slices.Clone(teams.TutorialTeams)
	slices.SortFunc(want, func(a, b teams.Team) int { return strings.Compare(teams.CityKey(a.City), teams.CityKey(b.City)) })
	if !slices.Equal(all, want) {
		t.Errorf("List() = %v\nwant the tutorial's teams by city %v", all, want)
	}
}

func testCityMatching(t *testing.T, s teams.Store) {
	for _, city := range []string{"New York", "new york", "  NEW YORK\t", "nEw YoRk "} {
		got, err := s.Get(ctx(t), city)
		if err != nil || got != (teams.Team{City: "New York", Nickname: "Metros"}) {
			t.Errorf("Get(%q) = %v, %v; want New York Metros", city, got, err)
		}
	}
	for _, city := range []string{"NewYork", "New  York", "York", "Miami"} {
		if got, err := s.Get(ctx(t), city); !errors.Is(err, teams.ErrNotFound) {
			t.Errorf("Get(%q) = %v, %v; want ErrNotFound", city, got, err)
		}
	}
}

func testPut(t *testing.T, s teams.Store) {
	c := ctx(t)
	stored, created, err := s.Put(c, teams.Team{City: " Miami ", Nickname: " Sharks "})
	if err != nil || !created || stored != (teams.Team{City: "Miami", Nickname: "Sharks"}) {
		t.Errorf("Put(Miami) = %v, created %v, %v; want trimmed and created", stored, created, err)
	}
	stored, created, err = s.Put(c, teams.Team{City: "MIAMI", Nickname: "Dolphins"})
	if err != nil || created || stored != (teams.Team{City: "Miami", Nickname: "Dolphins"}) {
		t.Errorf("Put(MIAMI) = %v, created %v, %v; want the city as first written, renamed", stored, created, err)
	}
	if got, err := s.Get(c, "miami"); err != nil || got.Nickname != "Dolphins" {
		t.Errorf("Get(miami) after update = %v, %v", got, err)
	}
	stored, created, err = s.Put(c, teams.Team{City: "chicago", Nickname: "Bears"})
	if err != nil || created || stored != (teams.Team{City: "Chicago", Nickname: "Bears"}) {
		t.Errorf("Put(chicago) over a seed team = %v, created %v, %v", stored, created, err)
	}
	unicode := teams.Team{City: "Zürich", Nickname: "Löwen"}
	if _, created, err := s.Put(c, unicode); err != nil || !created {
		t.Errorf("Put(%v) created %v, %v", unicode, created, err)
	}
	if got, err := s.Get(c, "ZÜRICH"); err != nil || got != unicode {
		t.Errorf("Get(ZÜRICH) = %v, %v; want %v", got, err, unicode)
	}
	long := teams.Team{City: strings.Repeat("é", teams.MaxNameLength), Nickname: strings.Repeat("n", teams.MaxNameLength)}
	if _, _, err := s.Put(c, long); err != nil {
		t.Errorf("Put of names at the length limit: %v", err)
	}
}

func testPutInvalid(t *testing.T, s teams.Store) {
	bad := []teams.Team{
		{City: "", Nickname: "x"},
		{City: "   ", Nickname: "x"},
		{City: "Miami", Nickname: ""},
		{City: strings.Repeat("a", teams.MaxNameLength+1), Nickname: "x"},
		{City: "Mia\x00mi", Nickname: "x"},
		{City: "Mia\xffmi", Nickname: "x"},
	}
	for _, tm := range bad {
		if _, _, err := s.Put(ctx(t), tm); !errors.Is(err, teams.ErrInvalid) {
			t.Errorf("Put(%q) error = %v, want ErrInvalid", tm, err)
		}
	}
	if all, _, err := s.List(ctx(t), teams.ListOptions{}); err != nil || len(all) != len(teams.TutorialTeams) {
		t.Errorf("after invalid puts List() has %d teams (%v), want %d", len(all), err, len(teams.TutorialTeams))
	}
}

func testDelete(t *testing.T, s teams.Store) {
	c := ctx(t)
	got, err := s.Delete(c, "  seattle ")
	if err != nil || got != (teams.Team{City: "Seattle", Nickname: "Orcas"}) {
		t.Errorf("Delete(seattle) = %v, %v", got, err)
	}
	if _, err := s.Get(c, "Seattle"); !errors.Is(err, teams.ErrNotFound) {
		t.Errorf("Get(Seattle) after delete: %v, want ErrNotFound", err)
	}
	if _, err := s.Delete(c, "Seattle"); !errors.Is(err, teams.ErrNotFound) {
		t.Errorf("second Delete(Seattle): %v, want ErrNotFound", err)
	}
	if _, err := s.Delete(c, "Atlantis"); !errors.Is(err, teams.ErrNotFound) {
		t.Errorf("Delete(Atlantis): %v, want ErrNotFound", err)
	}
	// A re-created city is new again.
	if _, created, err := s.Put(c, teams.Team{City: "seattle", Nickname: "Sounders"}); err != nil || !created {
		t.Errorf("Put(seattle) after delete: created %v, %v", created, err)
	}
}

func cities(ts []teams.Team) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.City
	}
	return out
}

func testList(t *testing.T, s teams.Store) {
	c := ctx(t)
	var pages [][]string
	after := ""
	for range 10 {
		page, more, err := s.List(c, teams.ListOptions{Limit: 3, After: after})
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, cities(page))
		if !more {
			break
		}
		after = teams.CityKey(page[len(page)-1].City)
	}
	want := [][]string{
		{"Arizona", "Boston", "Chicago"},
		{"Detroit", "Los Angeles", "Minneapolis"},
		{"New York", "Philadelphia", "San Francisco"},
		{"Seattle"},
	}
	if fmt.Sprint(pages) != fmt.Sprint(want) {
		t.Errorf("pages of 3 = %v, want %v", pages, want)
	}
	// A page that ends exactly at the end reports no more.
	if page, more, err := s.List(c, teams.ListOptions{Limit: 10}); err != nil || more || len(page) != 10 {
		t.Errorf("List(limit 10) = %d teams, more %v, %v", len(page), more, err)
	}
	for prefix, want := range map[string][]string{
		"S":        {"San Francisco", "Seattle"},
		"  san ":   {"San Francisco"},
		"new york": {"New York"},
		// Trailing white space is part of a prefix: a word ends there.
		"new york ":  nil,
		"  seattle ": nil,
		"x":          nil,
		"":           cities(mustList(t, s)),
	} {
		page, more, err := s.List(c, teams.ListOptions{Prefix: prefix})
		if err != nil || more || !slices.Equal(cities(page), want) {
			t.Errorf("List(prefix %q) = %v, more %v, %v; want %v", prefix, cities(page), more, err, want)
		}
	}
	page, more, err := s.List(c, teams.ListOptions{Prefix: "s", Limit: 1, After: "san francisco"})
	if err != nil || more || !slices.Equal(cities(page), []string{"Seattle"}) {
		t.Errorf("List(prefix s, after san francisco, limit 1) = %v, more %v, %v", cities(page), more, err)
	}
	// Characters that are wildcards in SQL LIKE are plain characters here.
	if _, _, err := s.Put(c, teams.Team{City: "S%_x", Nickname: "Wild"}); err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"%", "_", "s_"} {
		if page, _, err := s.List(c, teams.ListOptions{Prefix: prefix}); err != nil || len(page) != 0 {
			t.Errorf("List(prefix %q) = %v, %v; want nothing", prefix, cities(page), err)
		}
	}
	if page, _, err := s.List(c, teams.ListOptions{Prefix: "s%"}); err != nil || !slices.Equal(cities(page), []string{"S%_x"}) {
		t.Errorf("List(prefix s%%) = %v, %v; want [S%%_x]", cities(page), err)
	}
	// A prefix ending in the characters around a bound in code point
	// order: the last before the surrogates, the first after them, the
	// last there is.
	edge := []string{"Qq\uD7FF", "Qq\uD7FFx", "Qq\uE000", "Qq\U0010FFFF", "Qq\U0010FFFFz", "Qr"}
	for _, city := range edge {
		if _, _, err := s.Put(c, teams.Team{City: city, Nickname: "Edge"}); err != nil {
			t.Fatal(err)
		}
	}
	for prefix, want := range map[string][]string{
		"qq":             edge[:5],
		"qq\uD7FF":       edge[:2],
		"qq\uE000":       edge[2:3],
		"qq\U0010FFFF":   edge[3:5],
		"qq\U0010FFFFz":  edge[4:5],
		"q":              edge,
		"qr":             edge[5:],
		"qq\U0010FFFFzz": nil,
	} {
		if page, _, err := s.List(c, teams.ListOptions{Prefix: prefix}); err != nil || !slices.Equal(cities(page), want) {
			t.Errorf("List(prefix %+q) = %+q, %v; want %+q", prefix, cities(page), err, want)
		}
	}
}

func mustList(t *testing.T, s teams.Store) []teams.Team {
	t.Helper()
	all, _, err := s.List(ctx(t), teams.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// testListOrder checks that every store orders by the key's bytes, as page
// tokens (the last key of a page) assume.
func testListOrder(t *testing.T, s teams.Store) {
	for _, city := range []string{"Zürich", "zagreb", "Ålesund", "ABC", "abd", "a b", "Österreich"} {
		if _, _, err := s.Put(ctx(t), teams.Team{City: city, Nickname: "N"}); err != nil {
			t.Fatal(err)
		}
	}
	keys := make([]string, 0)
	for _, tm := range mustList(t, s) {
		keys = append(keys, teams.CityKey(tm.City))
	}
	if !slices.IsSorted(keys) {
		t.Errorf("List() keys are not in byte order: %q", keys)
	}
}

func testCanceled(t *testing.T, s teams.Store) {
	c, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Get(c, "Chicago"); err == nil {
		t.Error("Get with a canceled context succeeded")
	}
	if _, _, err := s.Put(c, teams.Team{City: "Miami", Nickname: "Sharks"}); err == nil {
		t.Error("Put with a canceled context succeeded")
	}
	if _, err := s.Get(ctx(t), "Miami"); !errors.Is(err, teams.ErrNotFound) {
		t.Errorf("a Put with a canceled context stored the team: %v", err)
	}
}

// testConcurrent writes from many goroutines and checks every acknowledged
// write is there.
func testConcurrent(t *testing.T, s teams.Store) {
	const workers, each = 8, 25
	c := ctx(t)
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				city := fmt.Sprintf("City %d-%d", w, i)
				if _, created, err := s.Put(c, teams.Team{City: city, Nickname: "first"}); err != nil || !created {
					errs <- fmt.Errorf("Put(%s): created %v, %v", city, created, err)
					continue
				}
				if _, _, err := s.Put(c, teams.Team{City: city, Nickname: "second"}); err != nil {
					errs <- fmt.Errorf("update %s: %v", city, err)
				}
				if _, err := s.Get(c, "chicago"); err != nil {
					errs <- fmt.Errorf("Get(chicago): %v", err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	all, _, err := s.List(c, teams.ListOptions{Prefix: "city "})
	if err != nil || len(all) != workers*each {
		t.Fatalf("List(prefix city) = %d teams, %v; want %d", len(all), err, workers*each)
	}
	for _, tm := range all {
		if tm.Nickname != "second" {
			t.Errorf("%s is %q, want the last write", tm.City, tm.Nickname)
		}
	}
}

// Changes waits for the changes of sub until want has been seen in order
// (other changes may come between), failing after teams.FeedBound.
func Changes(t testing.TB, sub *teams.Subscription, want ...teams.Change) {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), teams.FeedBound)
	defer cancel()
	var seen []teams.Change
	for len(want) > 0 {
		got, err := sub.Next(c)
		if err != nil {
			t.Fatalf("waiting for %+v: %v; saw %+v", want[0], err, seen)
		}
		seen = append(seen, got)
		if got == want[0] {
			want = want[1:]
		}
	}
}

// live is ch as a live feed delivers it.
func live(ch teams.Change) teams.Change {
	ch.Live = true
	return ch
}

// testFeed: a store with a change feed reports every write and delete,
// under the key's CityKey and with the state it left, within the bound,
// to every subscriber.
func testFeed(t *testing.T, s teams.Store) {
	w, ok := s.(teams.Watchable)
	if !ok {
		t.Fatalf("%T has no change feed (teams.Watchable)", s)
	}
	feed := w.Feed()
	deadline := time.Now().Add(10 * time.Second)
	for !feed.Live() {
		if time.Now().After(deadline) {
			t.Fatal("the feed of a freshly opened store is not live after 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A store may have subscribers of its own (a teams.Cache has one).
	others := feed.Stats().Subscribers
	a, b := feed.Subscribe(), feed.Subscribe()
	defer a.Close()
	defer b.Close()
	for _, sub := range []*teams.Subscription{a, b} {
		Changes(t, sub, teams.Change{All: true, Live: true})
	}
	c := ctx(t)
	if _, _, err := s.Put(c, teams.Team{City: "  Miami ", Nickname: "Sharks"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Put(c, teams.Team{City: "Chicago", Nickname: "Bears"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(c, "BOSTON"); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []*teams.Subscription{a, b} {
		Changes(t, sub, live(teams.Wrote("miami", teams.Team{City: "Miami", Nickname: "Sharks"}, true)),
			live(teams.Wrote("chicago", teams.Team{City: "Chicago", Nickname: "Bears"}, true)),
			live(teams.Wrote("boston", teams.Team{}, false)))
	}
	// A failed write changes nothing, and a closed subscription gets nothing.
	if _, err := s.Delete(c, "Atlantis"); !errors.Is(err, teams.ErrNotFound) {
		t.Fatalf("Delete(Atlantis) = %v", err)
	}
	b.Close()
	if _, err := b.Next(c); !errors.Is(err, teams.ErrFeedClosed) {
		t.Errorf("Next on a closed subscription = %v, want ErrFeedClosed", err)
	}
	if st := feed.Stats(); !st.Live || st.Subscribers != others+1 || st.Changes < 3 {
		t.Errorf("Stats = %+v; want live, %d subscriber(s), at least 3 changes", st, others+1)
	}
}
