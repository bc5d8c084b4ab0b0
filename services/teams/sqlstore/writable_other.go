//go:build !unix

package sqlstore

// checkWritable leaves the checks to SQLite where access(2) does not exist.
func checkWritable(string) error { return nil }
