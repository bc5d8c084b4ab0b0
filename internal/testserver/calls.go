package testserver

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"
)

// CallTimeout bounds each call a test makes through CallContext, so a
// server that hangs fails the test instead of stalling it.
const CallTimeout = 10 * time.Second

// CallContext is the context of one call in a test: it ends after
// CallTimeout or with the test.
func CallContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), CallTimeout)
	t.Cleanup(cancel)
	return ctx
}

// WantCode fails the test unless err is a connect error with code want.
func WantCode(t testing.TB, err error, want connect.Code) {
	t.Helper()
	if got := connect.CodeOf(err); err == nil || got != want {
		t.Fatalf("error = %v (code %v), want code %v", err, got, want)
	}
}

// ForEachProtocol runs test once per protocol of Protocols, as parallel
// subtests, so each case runs in gRPC, gRPC-Web and Connect (binary and
// JSON).
func ForEachProtocol(t *testing.T, test func(t *testing.T, p Protocol)) {
	t.Helper()
	for _, p := range Protocols() {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			test(t, p)
		})
	}
}
