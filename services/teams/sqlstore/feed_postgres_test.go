package sqlstore

import (
	"testing"

	"github.com/switchyard/switchyard/services/teams"
)

// The state channel's payloads (migration 5's trigger): a key with its
// state is that Change; anything else — the empty payload of a TRUNCATE
// or of a state too long for NOTIFY, or a payload someone sent by hand —
// is no Change, and the listener reports everything changed.
func TestParseState(t *testing.T) {
	for _, tc := range []struct {
		payload string
		want    teams.Change
		ok      bool
	}{
		{`{"key" : "chicago", "found" : true, "city" : "Chicago", "nickname" : "Bears"}`,
			teams.Wrote("chicago", teams.Team{City: "Chicago", Nickname: "Bears"}, true), true},
		{`{"key" : "boston", "found" : false}`, teams.Wrote("boston", teams.Team{}, false), true},
		{``, teams.Change{}, false},
		{`chicago`, teams.Change{}, false},
		{`{"key" : "chicago"}`, teams.Change{}, false},
		{`{"found" : true, "city" : "Chicago"}`, teams.Change{}, false},
		{`{"key" : 7, "found" : true}`, teams.Change{}, false},
	} {
		got, ok := parseState(tc.payload)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseState(%q) = %+v, %v; want %+v, %v", tc.payload, got, ok, tc.want, tc.ok)
		}
	}
}
