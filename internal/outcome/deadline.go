package outcome

import (
	"strconv"
	"time"
)

// ParseGRPCTimeout reads a Grpc-Timeout as connect-go does; an unbounded
// one (more hours than a time.Duration holds) is none (0, true). A zero
// timeout has passed already, and connect-go answers it: ok is false.
func ParseGRPCTimeout(s string) (time.Duration, bool) {
	if len(s) < 2 || len(s) > 9 {
		return 0, false
	}
	var unit time.Duration
	switch s[len(s)-1] {
	case 'n':
		unit = time.Nanosecond
	case 'u':
		unit = time.Microsecond
	case 'm':
		unit = time.Millisecond
	case 'S':
		unit = time.Second
	case 'M':
		unit = time.Minute
	case 'H':
		unit = time.Hour
	default:
		return 0, false
	}
	n, err := strconv.ParseInt(s[:len(s)-1], 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	if unit == time.Hour && n > int64((1<<63-1)/time.Hour) {
		return 0, true
	}
	if n == 0 {
		return 0, false
	}
	return time.Duration(n) * unit, true
}

// ParseConnectTimeout reads a Connect-Timeout-Ms by connect-go's rules: at
// most 10 digits, not negative. A zero timeout has passed already, and
// connect-go answers it: ok is false.
func ParseConnectTimeout(s string) (time.Duration, bool) {
	ms, err := strconv.ParseInt(s, 10, 64)
	if len(s) > 10 || err != nil || ms <= 0 {
		return 0, false
	}
	return time.Duration(ms) * time.Millisecond, true
}
