package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"

	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
)

// A collector that refuses the spans is reported in the process's own log
// format, as one WARN line with the exporter's error: every line on stderr
// stays JSON under -log-format json.
func TestTraceExportFailureLogged(t *testing.T) {
	t.Parallel()
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no spans here", http.StatusBadRequest)
	}))
	defer collector.Close()
	p := startProcessEnv(t, []string{"OTEL_TRACES_EXPORTER=otlp", "OTEL_EXPORTER_OTLP_ENDPOINT=" + collector.URL, "OTEL_BSP_SCHEDULE_DELAY=50"})
	if _, err := p.client.GetTeam(t.Context(), connect.NewRequest(&teamsv1.GetTeamRequest{City: "Chicago"})); err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, "tracing error; spans may be lost")
	p.stop(t)
	for _, line := range strings.Split(strings.TrimSpace(p.logs()), "\n") {
		var rec struct {
			Level, Msg, Err string
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("a line on stderr is not JSON: %q", line)
			continue
		}
		if rec.Msg == "tracing error; spans may be lost" && (rec.Level != "WARN" || !strings.Contains(rec.Err, "400 Bad Request")) {
			t.Errorf("the export failure logged as %+v, want WARN with the collector's answer", rec)
		}
	}
}
