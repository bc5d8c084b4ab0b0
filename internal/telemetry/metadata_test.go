package telemetry

import (
	"net/http"
	"testing"
)

// A value written as an Authorization credential is not shown whatever
// its field's name: a client that sends the admin token under a name of
// its own (grpcurl -H "admin: Bearer ...") must not find it in the log.
func TestMetadataHidesCredentialValues(t *testing.T) {
	h := http.Header{
		"X-Admin":     {"Bearer s3cret-token"},
		"Admin":       {"  bearer s3cret-token"},
		"X-Basic":     {"BASIC czNjcmV0"},
		"X-Second":    {"fine", "Bearer s3cret-token"},
		"X-Client-Id": {"probe42"},
		"X-Note":      {"Bearer"}, // a word, not a credential
		"X-Bearer":    {"basically fine"},
	}
	want := map[string]string{
		"admin": redacted, "x-admin": redacted, "x-basic": redacted, "x-second": redacted,
		"x-client-id": "probe42", "x-note": "Bearer", "x-bearer": "basically fine",
	}
	md := metadataOf(h)
	if len(md) != len(want) {
		t.Fatalf("metadata %v; want %d fields", md, len(want))
	}
	for _, a := range md {
		if got := a.Value.String(); got != want[a.Key] {
			t.Errorf("metadata %s = %q, want %q", a.Key, got, want[a.Key])
		}
	}
}
