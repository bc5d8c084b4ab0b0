// Package summator adds two float32 numbers, as the Pip.Services gRPC
// tutorial's Summator does, and serves it as summator.v1.SummatorService.
package summator

import (
	"errors"
	"fmt"
	"math"
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
			return 0, fmt.Errorf("value%d is %v: %w", i+1, v, ErrNotFinite)
		}
	}
	sum := a + b
	if math.IsInf(float64(sum), 0) {
		return 0, fmt.Errorf("%v + %v exceeds the float32 range (±%v): %w", a, b, float32(math.MaxFloat32), ErrOverflow)
	}
	return sum, nil
}
