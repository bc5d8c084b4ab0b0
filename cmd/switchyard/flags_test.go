package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Every flag is declared with its valid values: a flag added on the
// underlying flag.FlagSet, without a range, fails here.
func TestEveryFlagHasARange(t *testing.T) {
	_, f := declareFlags()
	n := 0
	f.fs.VisitAll(func(fl *flag.Flag) {
		n++
		if f.valid[fl.Name] == "" {
			t.Errorf("-%s has no valid range: declare it with flagSet.Int, Duration, Choice, String or Level", fl.Name)
		}
		if !strings.Contains(fl.Usage, "(") {
			t.Errorf("-%s: -h does not show its valid values: %q", fl.Name, fl.Usage)
		}
	})
	if n < 30 {
		t.Errorf("only %d flags declared: the test is broken", n)
	}
}

// The defaults are valid.
func TestFlagDefaults(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatalf("no flags: %v", err)
	}
	if o.addr != ":50051" || o.readMaxBytes != 4<<20 || o.shutdownGrace != 15*time.Second {
		t.Errorf("defaults: %+v", o)
	}
}

// The whole table: every numeric flag accepts its bounds, rejects the
// values just outside them with an error naming the flag and its range,
// and takes 0 exactly when -h says what 0 means.
// companions are the flags a flag needs to take effect, given with it
// where a test sets it alone.
var companions = map[string][]string{"max-connection-age-grace": {"-max-connection-age", "1h"}}

func TestFlagRanges(t *testing.T) {
	_, f := declareFlags()
	if len(f.ranges) < 20 {
		t.Fatalf("only %d numeric flags: the test is broken", len(f.ranges))
	}
	for name, r := range f.ranges {
		var ok, bad []string
		var zeroOK bool
		var valid string
		switch r := r.(type) {
		case intRange:
			ok = []string{fmt.Sprint(r.min), fmt.Sprint(r.max)}
			bad = []string{fmt.Sprint(r.min - 1), fmt.Sprint(r.max + 1), "-1"}
			zeroOK, valid = r.zero != "" || r.min <= 0, r.String()
		case durationRange:
			ok = []string{r.min.String(), r.max.String()}
			bad = []string{(r.max + time.Millisecond).String(), "-1s"}
			if r.min > 0 {
				bad = append(bad, (r.min - time.Nanosecond).String())
			}
			zeroOK, valid = r.zero != "" || r.min <= 0, r.String()
		default:
			t.Fatalf("-%s: unknown range type %T", name, r)
		}
		if zeroOK {
			ok = append(ok, "0")
		} else {
			bad = append(bad, "0")
		}
		if !strings.Contains(f.fs.Lookup(name).Usage, valid) {
			t.Errorf("-h of -%s does not show %q: %q", name, valid, f.fs.Lookup(name).Usage)
		}
		for _, v := range ok {
			if _, err := parseFlags(append([]string{"-" + name, v}, companions[name]...), io.Discard); err != nil {
				t.Errorf("-%s %s: %v, want it accepted", name, v, err)
			}
		}
		for _, v := range bad {
			if v == "0" && zeroOK {
				continue
			}
			_, err := parseFlags([]string{"-" + name, v}, io.Discard)
			if err == nil || !strings.Contains(err.Error(), "-"+name+" ") || !strings.Contains(err.Error(), valid) {
				t.Errorf("-%s %s: error %v, want one naming -%s and its range %q", name, v, err, name, valid)
			}
		}
	}
}

// The limits a new user once set without a word of warning.
func TestFlagsFromTheIssue(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-read-max-bytes", "-1"}, "-read-max-bytes -1 is out of range: valid is 1..2147483647 bytes; 0 = the default"},
		{[]string{"-max-connections", "-3"}, "-max-connections -3 is out of range: valid is 1..1048576"},
		{[]string{"-keyword-max-bytes", "-5"}, "-keyword-max-bytes -5 is out of range"},
		{[]string{"-http2-max-concurrent-streams", "0"}, "-http2-max-concurrent-streams 0 is out of range: valid is 1..2147483647"},
		{[]string{"-http2-max-read-frame-size", "1000"}, "valid is 16384..16777215 bytes"},
		{[]string{"-log-format", "yaml"}, `-log-format "yaml" is not valid: use text or json`},
		{[]string{"-http2-server", "nghttp2"}, `use switchyard or net/http`},
		{[]string{"-addr", "50051"}, `-addr "50051": not HOST:PORT`},
		{[]string{"-addr", ":65536"}, `port "65536" is not a number in 0..65535`},
		{[]string{"-cors-origins", "app.example.com"}, `"app.example.com" is not an origin`},
		{[]string{"-cors-origins", "https://app.example.com/path"}, `is not an origin`},
		{[]string{"-log-level", "loud"}, `-log-level "loud" does not parse: valid is debug, info, warn or error`},
		{[]string{"extra"}, `unexpected arguments ["extra"]`},
		{[]string{"-max-connection-age-grace", "10s"}, "-max-connection-age-grace does nothing without -max-connection-age"},
	} {
		_, err := parseFlags(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.args, err, tc.want)
		}
	}
	for _, args := range [][]string{
		{"-addr", "127.0.0.1:0"}, {"-addr", "[::1]:8080"}, {"-addr", ":8081"},
		{"-cors-origins", "https://*.example.com, http://localhost:8080"}, {"-cors-origins", ""},
		{"-log-level", "debug"}, {"-drain-delay", "0"}, {"-shutdown-grace", "0"},
	} {
		if _, err := parseFlags(args, io.Discard); err != nil {
			t.Errorf("%q: %v, want it accepted", args, err)
		}
	}
}

// A value the flag package cannot parse at all is refused with the flag's
// valid values, as one out of range is: the flag package says only "parse
// error" (slog, for -log-level, "unknown name"), not what would do.
func TestFlagValuesThatDoNotParse(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-unary-timeout", "30"}, `-unary-timeout "30" does not parse: valid is 1ms..24h; 0 = the default`},
		{[]string{"-drain-delay", "soon"}, `-drain-delay "soon" does not parse: valid is 1ms..1h; 0 = off`},
		{[]string{"-read-max-bytes", "4MiB"}, `-read-max-bytes "4MiB" does not parse: valid is 1..2147483647 bytes; 0 = the default`},
		{[]string{"-max-connections", "99999999999999999999"}, `-max-connections "99999999999999999999" does not parse: valid is 1..1048576`},
		{[]string{"-log-level", "loud"}, `-log-level "loud" does not parse: valid is debug, info, warn or error`},
		// A flag given last, without its value.
		{[]string{"-unary-timeout"}, `-unary-timeout needs a value: valid is 1ms..24h; 0 = the default`},
		// A value that holds another flag's name is still this flag's.
		{[]string{"-unary-timeout", "x for flag -addr: "}, `-unary-timeout "x for flag -addr: " does not parse: valid is 1ms..24h`},
	} {
		_, err := parseFlags(tc.args, io.Discard)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.args, err, tc.want)
		}
	}
}

// -tls-cert without -tls-key, or the other way round, says which one is
// missing.
func TestTLSFlagsNameTheOneMissing(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-tls-cert", "cert.pem"}, "-tls-cert cert.pem needs -tls-key, the file of its private key: give both for TLS, or neither for cleartext h2c"},
		{[]string{"-tls-key", "key.pem"}, "-tls-key key.pem needs -tls-cert, the file of its certificate: give both for TLS, or neither for cleartext h2c"},
	} {
		if _, err := parseFlags(tc.args, io.Discard); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.args, err, tc.want)
		}
	}
}

// -h writes the usage, every flag with its valid values, and is not an
// error.
func TestHelpFlag(t *testing.T) {
	var out bytes.Buffer
	_, err := parseFlags([]string{"-h"}, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v, want flag.ErrHelp", err)
	}
	_, f := declareFlags()
	f.fs.VisitAll(func(fl *flag.Flag) {
		if !strings.Contains(out.String(), "-"+fl.Name+" ") || !strings.Contains(out.String(), f.valid[fl.Name]) {
			t.Errorf("-h does not show -%s with %q", fl.Name, f.valid[fl.Name])
		}
	})
	// Each placeholder names what to give, not the flag package's
	// "value", and a default is shown as it would be typed.
	if strings.Contains(out.String(), " value\n") {
		t.Errorf("-h shows a flag whose value is named only \"value\":\n%s", out.String())
	}
	if !strings.Contains(out.String(), "-log-level level\n") || !strings.Contains(out.String(), "(default info)") {
		t.Errorf("-h does not show -log-level as \"-log-level level\" with \"(default info)\":\n%s", out.String())
	}
}

// The binary: -h exits 0 with the usage on stdout; a bad command line exits
// 2 and says what is wrong once, on stderr.
func TestCommandLineOfTheBinary(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args       []string
		code       int
		wantStdout string
		wantStderr string
	}{
		{[]string{"-h"}, 0, "-read-max-bytes int", ""},
		{[]string{"-help"}, 0, "Usage: switchyard [flags]", ""},
		{[]string{"-no-such-flag"}, 2, "", "flag provided but not defined: -no-such-flag"},
		{[]string{"-read-max-bytes", "-1"}, 2, "", "-read-max-bytes -1 is out of range"},
		{[]string{"-unary-timeout", "30"}, 2, "", `-unary-timeout "30" does not parse: valid is 1ms..24h`},
		{[]string{"-max-connections", "-3", "-keyword-max-bytes", "-5"}, 2, "", "-max-connections -3 is out of range"},
	} {
		cmd := exec.Command(switchyardBinary(t), tc.args...)
		cmd.Env = hermeticEnv(t)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code {
			t.Errorf("%q: exit status %d, want %d\nstderr: %s", tc.args, code, tc.code, stderr.String())
		}
		if tc.wantStdout != "" && !strings.Contains(stdout.String(), tc.wantStdout) {
			t.Errorf("%q: stdout lacks %q:\n%s", tc.args, tc.wantStdout, stdout.String())
		}
		if tc.wantStderr == "" && stderr.Len() > 0 {
			t.Errorf("%q: stderr %q, want nothing", tc.args, stderr.String())
		}
		if tc.wantStderr != "" {
			if n := strings.Count(stderr.String(), tc.wantStderr); n != 1 {
				t.Errorf("%q: stderr says %q %d times, want once:\n%s", tc.args, tc.wantStderr, n, stderr.String())
			}
			if strings.Contains(stderr.String(), "-write-byte-timeout") {
				t.Errorf("%q: stderr repeats the whole usage:\n%s", tc.args, stderr.String())
			}
		}
	}
}
