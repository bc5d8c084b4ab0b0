// Package summator adds two float32 numbers, as the Pip.Services gRPC
// tutorial's Summator does, and serves it as summator.v1.SummatorService.
//
// # Errors, per codec
//
// The summands are float32 (the tutorial's wire format), and the rule is the
// same in every protocol and codec:
//
//   - a summand that is not a finite float32 is INVALID_ARGUMENT: the
//     request is malformed;
//   - two finite summands whose float32 sum overflows (beyond
//     ±3.4028235e38) are OUT_OF_RANGE: the request is well formed, its
//     result does not fit.
//
// How a non-finite summand arrives depends on the codec:
//
//   - binary protobuf carries only float32 bits: NaN and ±Inf are checked
//     here (ErrNotFinite). A client cannot send 1e39: its own conversion to
//     float32 makes it +Inf first, which is then INVALID_ARGUMENT here.
//   - JSON carries any number, and NaN and ±Inf as the strings "NaN",
//     "Infinity" and "-Infinity". Those strings decode to NaN and ±Inf and
//     are checked here. A number beyond float32's range (1e39) does not
//     decode into a float field at all: the protobuf JSON decoder rejects
//     the request as INVALID_ARGUMENT naming the field and the value
//     ("invalid value for float field value1: 1e39"), before this package
//     sees it.
//
// So 1e39 + 1 is INVALID_ARGUMENT in both codecs, and 3e38 + 3e38
// OUT_OF_RANGE in both (handler_ext_test.go checks each case per codec).
package summator

import (
	"errors"
	"fmt"
	"math"

	"github.com/switchyard/switchyard/internal/errkind"
)

var (
	// ErrNotFinite is returned when a summand is NaN or infinite.
	ErrNotFinite = errors.New("summand is not a finite number")
	// ErrOverflow is returned when the sum does not fit in a float32.
	ErrOverflow = errors.New("sum overflows float32")
)

// Sum returns a + b in float32 arithmetic. The summands must be finite, and
// so must their sum.
func Sum(a, b float32) (float32, error) {
	for i, v := range [2]float32{a, b} {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, errkind.Errorf(ErrNotFinite, "value%d is %v, not a finite float32 number", i+1, v)
		}
	}
	sum := a + b
	if math.IsInf(float64(sum), 0) {
		return 0, fmt.Errorf("%v + %v exceeds the float32 range (±%v): %w", a, b, float32(math.MaxFloat32), ErrOverflow)
	}
	return sum, nil
}
