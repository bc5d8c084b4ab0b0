package teams

import (
	"context"
	"errors"
	"strings"
	"testing"

	"connectrpc.com/connect"

	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
)

func TestCityKey(t *testing.T) {
	for in, want := range map[string]string{"Chicago": "chicago", "  New York\t": "new york", "SAN FRANCISCO": "san francisco"} {
		if got := CityKey(in); got != want {
			t.Errorf("CityKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// appendCityKey appends what CityKey returns, ASCII or not.
func FuzzAppendCityKey(f *testing.F) {
	for _, s := range []string{"Chicago", "  New York\t", "SAN FRANCISCO", "\v\fx\r\n", "  ", "", "São Paulo", "x\u00a0", "\u0085Rome"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, city string) {
		if got := appendCityKey([]byte("prefix:"), city); string(got) != "prefix:"+CityKey(city) {
			t.Fatalf("appendCityKey(%q) = %q, want %q", city, got, "prefix:"+CityKey(city))
		}
	})
}

func TestValidate(t *testing.T) {
	ok := []Team{{"Chicago", "Jackals"}, {strings.Repeat("é", MaxNameLength), "x"}}
	bad := []Team{{"", "x"}, {"  ", "x"}, {"Chicago", ""}, {strings.Repeat("a", MaxNameLength+1), "x"}, {"Chi\xffcago", "x"}, {"Chi\x00cago", "x"}, {"Chicago", "Jack\nals"}}
	for _, tm := range ok {
		if err := tm.Validate(); err != nil {
			t.Errorf("%q: %v", tm, err)
		}
	}
	for _, tm := range bad {
		if err := tm.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: error %v, want ErrInvalid", tm, err)
		}
	}
}

// An empty field's message suggests a value of that field: a nickname is
// not a city.
func TestEmptyNameMessage(t *testing.T) {
	for _, tc := range []struct {
		team Team
		want string
	}{
		{Team{"", "Jackals"}, `city is empty: give one, such as "Chicago"`},
		{Team{"Chicago", " "}, `nickname is empty: give one, such as "Jackals"`},
	} {
		if err := tc.team.Validate(); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Validate(%q) = %v, want %q", tc.team, err, tc.want)
		}
	}
}

func TestMemStore(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore(TutorialTeams)
	if tm, err := s.Get(ctx, " chicago "); err != nil || tm != (Team{"Chicago", "Jackals"}) {
		t.Errorf("Get(chicago) = %v, %v", tm, err)
	}
	if _, err := s.Get(ctx, "Miami"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(Miami) error = %v", err)
	}
	stored, created, err := s.Put(ctx, Team{" Miami ", " Sharks "})
	if err != nil || !created || stored != (Team{"Miami", "Sharks"}) {
		t.Errorf("Put(Miami) = %v, %v, %v", stored, created, err)
	}
	stored, created, err = s.Put(ctx, Team{"MIAMI", "Dolphins"})
	if err != nil || created || stored != (Team{"Miami", "Dolphins"}) {
		t.Errorf("Put(MIAMI) = %v, %v, %v; want the city as first written, renamed", stored, created, err)
	}
	all, more, err := s.List(ctx, ListOptions{})
	if err != nil || more || len(all) != 11 {
		t.Errorf("List() = %d teams, more %v, %v", len(all), more, err)
	}
	page, more, err := s.List(ctx, ListOptions{Limit: 2, After: "los angeles"})
	if err != nil || !more || len(page) != 2 || page[0].City != "Miami" || page[1].City != "Minneapolis" {
		t.Errorf("List(after los angeles, 2) = %v, %v, %v", page, more, err)
	}
	if del, err := s.Delete(ctx, "miami"); err != nil || del.Nickname != "Dolphins" {
		t.Errorf("Delete(miami) = %v, %v", del, err)
	}
	if _, err := s.Delete(ctx, "miami"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Delete(miami) error = %v", err)
	}
}

func TestWriteAuthorization(t *testing.T) {
	ctx := context.Background()
	put := func(h *Handler, auth string) error {
		req := connect.NewRequest(&teamsv1.PutTeamRequest{City: "Miami", Nickname: "Sharks"})
		if auth != "" {
			req.Header().Set("Authorization", auth)
		}
		_, err := h.PutTeam(ctx, req)
		return err
	}
	disabled := NewHandler(NewMemStore(nil), "")
	if err := put(disabled, "Bearer anything"); connect.CodeOf(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), "-admin-token-file") {
		t.Errorf("write with writes disabled: %v, want PERMISSION_DENIED saying how to enable writes", err)
	}
	h := NewHandler(NewMemStore(nil), "s3cret")
	for _, auth := range []string{"", "s3cret", "Bearer ", "Bearer wrong", "Basic s3cret", "Bearer s3cret2", "Bearers3cret", "Bearer\ts3cret"} {
		if err := put(h, auth); connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Errorf("Authorization %q: %v, want UNAUTHENTICATED", auth, err)
		}
	}
	// The scheme's name is case-insensitive (RFC 9110 section 11.1),
	// spaces may follow it, and white space around the value is not part
	// of it (section 5.5).
	for _, auth := range []string{"Bearer s3cret", "bearer s3cret", "BEARER  s3cret", "Bearer s3cret ", " Bearer s3cret", "Bearer s3cret\t"} {
		if err := put(h, auth); err != nil {
			t.Errorf("write with Authorization %q: %v", auth, err)
		}
	}
	// Authorization is a singleton field: with two, even both right, the
	// write is refused, whichever comes first.
	for _, auths := range [][]string{{"Bearer s3cret", "Bearer wrong"}, {"Bearer wrong", "Bearer s3cret"}, {"Bearer s3cret", "Bearer s3cret"}} {
		req := connect.NewRequest(&teamsv1.PutTeamRequest{City: "Miami", Nickname: "Sharks"})
		del := connect.NewRequest(&teamsv1.DeleteTeamRequest{City: "Miami"})
		for _, a := range auths {
			req.Header().Add("Authorization", a)
			del.Header().Add("Authorization", a)
		}
		if _, err := h.PutTeam(ctx, req); connect.CodeOf(err) != connect.CodeUnauthenticated || !strings.Contains(err.Error(), "2 Authorization fields") {
			t.Errorf("PutTeam with Authorization fields %q: %v, want UNAUTHENTICATED naming the two fields", auths, err)
		}
		if _, err := h.DeleteTeam(ctx, del); connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Errorf("DeleteTeam with Authorization fields %q: %v, want UNAUTHENTICATED", auths, err)
		}
	}
	_, err := h.DeleteTeam(ctx, connect.NewRequest(&teamsv1.DeleteTeamRequest{City: "Miami"}))
	if connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("DeleteTeam without token: %v", err)
	}
	req := connect.NewRequest(&teamsv1.DeleteTeamRequest{City: "Atlantis"})
	req.Header().Set("Authorization", "Bearer s3cret")
	if _, err := h.DeleteTeam(ctx, req); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("DeleteTeam(unknown) = %v, want NOT_FOUND", err)
	}
}
