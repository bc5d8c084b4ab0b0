package server_test

import (
	"slices"
	"testing"

	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/testserver"
)

// The tutorials' procedure names are mounted beside v1. Each one's behaviour
// is tested with its service (services/<svc>/handler_ext_test.go).

func TestLegacyNamesAreServed(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	for _, want := range []string{"Teams", "helloworld.Greeter", "routeguide.RouteGuide", "KeywordService", "Summator"} {
		if !slices.Contains(srv.Services, want) {
			t.Errorf("services %q: missing %s (health and reflection list what is mounted)", srv.Services, want)
		}
	}
}
