package main

import (
	"io"
	"log/slog"
	"strings"
	"testing"
)

// A DSN whose password is in it, URL or key=value, is found; one that
// leaves the password to PGPASSWORD or PGPASSFILE is not.
func TestDSNHasPassword(t *testing.T) {
	for dsn, want := range map[string]bool{
		"postgres://alice:s3cret@db:5432/teams":                true,
		"postgresql://alice:@db/teams":                         true,
		"postgres://alice@db/teams?password=s3cret":            true,
		"host=db user=alice password=s3cret dbname=teams":      true,
		"password = 's3cret' host=db":                          true,
		"host=db\tpassword=s3cret":                             true,
		"postgres://alice@db:5432/teams?sslmode=require":       false,
		"postgres://db/teams":                                  false,
		"host=db user=alice dbname=teams":                      false,
		"host=db user=alice passfile=/run/pgpass dbname=teams": false,
		"host=db user=alice_password dbname=teams":             false,
		"postgres://alice:s3cret@[::1]:5432,[::2]:5432/teams":  true, // pgx takes it; net/url does not
		"postgres://alice:s3cret@[::1/teams (does not parse)":  true, // shown to ps all the same
		"postgres://alice@[::1]:5432,[::2]:5432/teams?x=1":     false,
		"postgres://alice@db/teams?application_name=a:b@c":     false,
	} {
		if got := dsnHasPassword(dsn); got != want {
			t.Errorf("dsnHasPassword(%q) = %v, want %v", dsn, got, want)
		}
	}
}

// The binary warns of a password given in -postgres-dsn, before it even
// tries the database (here one that refuses the connection), and never
// shows the password.
func TestPostgresDSNFlagPasswordWarned(t *testing.T) {
	t.Parallel()
	dsn := "postgres://alice:pw-in-the-flag@127.0.0.1:1/teams?connect_timeout=5"
	served, code, log := startOnce(t, nil, "-postgres-dsn", dsn)
	if served || code != 1 {
		t.Fatalf("served %v, exit status %d; want a failure to connect (1):\n%s", served, code, log)
	}
	if !strings.Contains(log, "level=WARN msg=\"-postgres-dsn holds a password") {
		t.Errorf("no WARN line about the password in -postgres-dsn:\n%s", log)
	}
	if strings.Contains(log, "pw-in-the-flag") {
		t.Errorf("the log shows the password:\n%s", log)
	}
	// The same DSN from the environment is what the warning advises.
	_, _, log = startOnce(t, []string{"SWITCHYARD_POSTGRES_DSN=" + dsn})
	if strings.Contains(log, "holds a password") || strings.Contains(log, "pw-in-the-flag") {
		t.Errorf("warned of, or showed, a password given in SWITCHYARD_POSTGRES_DSN:\n%s", log)
	}
}

// A PostgreSQL DSN that fails names where it came from, the flag or the
// variable, as a data directory's error names -data-dir: with both in
// use, the flag wins, and a person must know which one to fix.
func TestPostgresErrorNamesTheDSNsSource(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SWITCHYARD_POSTGRES_DSN", "mysql://from-the-variable")
	logger := slog.New(slog.DiscardHandler)
	if _, _, err := openStore(o, logger); err == nil || !strings.HasPrefix(err.Error(), "SWITCHYARD_POSTGRES_DSN: postgres: the DSN does not parse") {
		t.Errorf("a bad DSN in SWITCHYARD_POSTGRES_DSN: %v; want an error that starts by naming the variable", err)
	}
	o.postgresDSN = "mysql://from-the-flag"
	if _, _, err := openStore(o, logger); err == nil || !strings.HasPrefix(err.Error(), "-postgres-dsn: postgres: the DSN does not parse") {
		t.Errorf("a bad -postgres-dsn: %v; want an error that starts by naming the flag", err)
	}
}
