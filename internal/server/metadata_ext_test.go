package server_test

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	legacyteams "github.com/switchyard/switchyard/gen/legacy/teams"
	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/testserver"
)

// The tutorial's Teams server prints each call's metadata; here the call's
// log line carries it, from a grpc-go client calling the tutorial's name,
// whichever HTTP/2 server and unary path serve it, credentials named but
// not shown.
func TestCallMetadataLogged(t *testing.T) {
	t.Parallel()
	for _, cfg := range []struct {
		name        string
		connectOnly bool
		stdHTTP2    bool
	}{{"internal/h2, direct", false, false}, {"internal/h2, connect-go", true, false}, {"net/http", false, true}} {
		t.Run(cfg.name, func(t *testing.T) {
			t.Parallel()
			logs := &lockedBuffer{}
			srv := testserver.StartWith(t, server.Config{ConnectOnly: cfg.connectOnly, Logger: slog.New(slog.NewJSONHandler(logs, nil))},
				testserver.Options{HTTP: server.HTTPConfig{StdHTTP2: cfg.stdHTTP2}})
			conn := dialGRPC(t, srv)
			ctx := metadata.AppendToOutgoingContext(ctx(t), "x-client-id", "probe42", "authorization", "Bearer s3cret")
			res := new(legacyteams.TeamResponse)
			if err := conn.Invoke(ctx, "/Teams/GetTeam", &legacyteams.TeamRequest{City: "Chicago"}, res); err != nil || res.GetNickname() != "Jackals" {
				t.Fatalf("GetTeam: %v, %v", res, err)
			}
			var line struct {
				Metadata map[string]string `json:"metadata"`
			}
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				for _, l := range strings.Split(logs.String(), "\n") {
					if strings.Contains(l, `"procedure":"/Teams/GetTeam"`) {
						if err := json.Unmarshal([]byte(l), &line); err != nil {
							t.Fatal(err)
						}
					}
				}
				if line.Metadata != nil || time.Now().After(deadline) {
					break
				}
			}
			if line.Metadata["x-client-id"] != "probe42" || line.Metadata["authorization"] != "[redacted]" || len(line.Metadata) != 2 {
				t.Errorf("the call's metadata logged as %v, want x-client-id probe42 and authorization redacted, nothing else:\n%s", line.Metadata, logs)
			}
			if strings.Contains(logs.String(), "s3cret") {
				t.Errorf("the log shows the credential:\n%s", logs)
			}
		})
	}
}
