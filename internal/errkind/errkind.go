// Package errkind makes errors whose message is written for a person and
// which errors.Is a sentinel of their kind: fmt.Errorf("...: %w", ErrKind)
// would append the sentinel's own text ("...: invalid team") to a message
// that already says what is wrong and what to do.
package errkind

import "fmt"

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
