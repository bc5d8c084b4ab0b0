package grpcunary

// ParseTimeout is parseTimeout, for the tests.
var ParseTimeout = parseTimeout
