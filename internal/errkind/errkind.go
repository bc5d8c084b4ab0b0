// Package errkind makes errors whose message is written for a person and
// which errors.Is a sentinel of their kind: fmt.Errorf("...: %w", ErrKind)
// would append the sentinel's own text ("...: invalid team") to a message
// that already says what is wrong and what to do.
package errkind

import (
	"fmt"

	"connectrpc.com/connect"
)

type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// Errorf returns an error whose message is fmt.Sprintf(format, a...) and
// which errors.Is kind.
func Errorf(kind error, format string, a ...any) error {
	return &kindError{msg: fmt.Sprintf(format, a...), kind: kind}
}

// NotRetried marks e, an answer to a call that may have had its effect
// (a write that may have been made), as one gRPC clients must not retry:
// its trailers carry grpc-retry-pushback-ms -1, which a retry policy
// obeys (gRFC A6) even for a code it lists, such as UNAVAILABLE. A retry
// would make the effect twice, or answer as if the first had not been.
func NotRetried(e *connect.Error) *connect.Error {
	e.Meta().Set("Grpc-Retry-Pushback-Ms", "-1")
	return e
}
