//go:build !linux

package main

// releaseStartupPages is Linux's (residency_linux.go); elsewhere the
// kernel's own paging is left alone.
func releaseStartupPages(trim bool) (int, error) { return 0, nil }
