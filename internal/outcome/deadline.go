package outcome

import (
	"strconv"
	"time"
)

// The client's deadline, as its request header states it: a call that
// did not end with its status on the wire is recorded with the code its
// client reports, deadline_exceeded once that deadline has passed.

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
	if len(s) == 0 || len(s) > 10 { // no header: no parse, whose error allocates
		return 0, false
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms <= 0 {
		return 0, false
	}
	return time.Duration(ms) * time.Millisecond, true
}

// maxDeadlineSlack bounds deadlineSlack.
const maxDeadlineSlack = 50 * time.Millisecond

// deadlineSlack is how long before the deadline the server reckons a call
// may end and still be taken to have ended at its client's deadline. The
// server counts the timeout from when it read the request's headers; the
// client counted it from before it sent them (over a new connection,
// before it dialled), so its deadline comes first by that much. A tenth of
// the timeout, at most maxDeadlineSlack: a short timeout is seldom sent
// over a new connection, and a call cancelled well before it is no
// timeout.
func deadlineSlack(timeout time.Duration) time.Duration {
	return min(timeout/10, maxDeadlineSlack)
}

// deadlinePassed reports whether the call's client had set a deadline (in
// its protocol's header) that had passed at now. Only a call that did not
// end sent asks, so the header is parsed only then.
func (r *Record) deadlinePassed(now time.Time) bool {
	var timeout time.Duration
	var ok bool
	switch r.Protocol {
	case ProtocolGRPC, ProtocolGRPCWeb:
		if v := r.Header["Grpc-Timeout"]; len(v) > 0 {
			timeout, ok = ParseGRPCTimeout(v[0])
		}
	case ProtocolConnect:
		if v := r.Header["Connect-Timeout-Ms"]; len(v) > 0 {
			timeout, ok = ParseConnectTimeout(v[0])
		}
	}
	if !ok || timeout == 0 {
		return false
	}
	return now.Sub(r.Start) >= timeout-deadlineSlack(timeout)
}
