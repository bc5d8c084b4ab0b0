# Prints what each failing test wrote, from `go test -v` output: the lines
# after a test's "=== RUN/CONT/NAME" header belong to it, up to the next
# header, and a package's "ok"/"FAIL" line ends its tests. The summary
# lines alone ("--- FAIL: TestX") say which test failed but not why; this
# keeps the why next to them in CI's log. At most the last 80 lines of each,
# and the first 80 of a panic's trace.
function keep(name, line) {
	n[name]++
	out[name, n[name]] = line
}
/^panic: / { panicking = 80 }
panicking > 0 {
	print
	panicking--
}
/^=== (RUN|CONT|NAME|PAUSE) / { cur = $3; next }
/^(ok|FAIL|\?)([ \t]|$)/ { delete n; delete out; cur = ""; panicking = 0; next }
/^ *--- FAIL: / {
	name = $3
	print
	from = n[name] > 80 ? n[name] - 79 : 1
	for (i = from; i <= n[name]; i++) print out[name, i]
	next
}
/^ *--- (PASS|SKIP): / { next }
cur != "" { keep(cur, $0) }
