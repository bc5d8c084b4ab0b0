package summator

import (
	"errors"
	"math"
	"testing"

	"connectrpc.com/connect"
)

func TestSum(t *testing.T) {
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	tests := []struct {
		a, b float32
		want float32
		err  error
		code connect.Code
	}{
		{5, 3, 8, nil, 0},
		{0.1, 0.2, 0.3, nil, 0}, // float32: 0.1f + 0.2f rounds to 0.3f exactly
		{-1.5, 1.5, 0, nil, 0},
		{math.MaxFloat32, -math.MaxFloat32, 0, nil, 0},
		{nan, 1, 0, ErrNotFinite, connect.CodeInvalidArgument},
		{1, inf, 0, ErrNotFinite, connect.CodeInvalidArgument},
		{-inf, 1, 0, ErrNotFinite, connect.CodeInvalidArgument},
		{math.MaxFloat32, math.MaxFloat32, 0, ErrOverflow, connect.CodeOutOfRange},
		{-math.MaxFloat32, -math.MaxFloat32, 0, ErrOverflow, connect.CodeOutOfRange},
	}
	for _, tt := range tests {
		got, err := Sum(tt.a, tt.b)
		if !errors.Is(err, tt.err) || got != tt.want {
			t.Errorf("Sum(%v, %v) = %v, %v; want %v, %v", tt.a, tt.b, got, err, tt.want, tt.err)
		}
		_, err = Add(tt.a, tt.b)
		if tt.err != nil && connect.CodeOf(err) != tt.code {
			t.Errorf("Add(%v, %v) code = %v, want %v", tt.a, tt.b, connect.CodeOf(err), tt.code)
		}
	}
}
