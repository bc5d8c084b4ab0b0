package errkind

import (
	"errors"
	"testing"
)

func TestErrorf(t *testing.T) {
	kind := errors.New("invalid team")
	err := Errorf(kind, "city is empty: give one, such as %q", "Chicago")
	if got, want := err.Error(), `city is empty: give one, such as "Chicago"`; got != want {
		t.Errorf("message %q, want %q (without the kind's text)", got, want)
	}
	if !errors.Is(err, kind) || errors.Is(err, errors.New("invalid team")) {
		t.Errorf("errors.Is: the error is not of its kind only")
	}
}
