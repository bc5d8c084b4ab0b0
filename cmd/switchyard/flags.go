package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// flagSet is switchyard's command line. Every flag is declared through one
// of its helpers (Int, Duration, Choice, String, Level), and each helper
// takes the flag's valid values, so no flag can be added without them: -h
// shows them, parse rejects anything else naming the flag and its range,
// and TestEveryFlagHasARange fails on a flag declared on the underlying
// flag.FlagSet directly.
type flagSet struct {
	fs *flag.FlagSet
	// valid holds each flag's valid values, in words (as -h shows them).
	valid map[string]string
	// ranges holds the intRange or durationRange of numeric flags.
	ranges map[string]any
	// checks validate the parsed values, in declaration order.
	checks []func() error
}

func newFlagSet(name string) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// parse reports errors itself, once; the flag package would print each
	// one with the whole usage, and main printed it again.
	fs.SetOutput(io.Discard)
	return &flagSet{fs: fs, valid: map[string]string{}, ranges: map[string]any{}}
}

// intRange is an Int flag's valid values: min..max, and 0 when zero says
// what 0 means ("the default, 4 MiB", "off").
type intRange struct {
	min, max int
	zero     string
	unit     string // "bytes", "" for a count
}

func (r intRange) String() string {
	s := fmt.Sprintf("%d..%d", r.min, r.max)
	if r.unit != "" {
		s += " " + r.unit
	}
	if r.zero != "" {
		s += "; 0 = " + r.zero
	}
	return s
}

// Int declares an int flag valid in r.
func (f *flagSet) Int(p *int, name string, value int, r intRange, usage string) {
	f.fs.IntVar(p, name, value, usage+" ("+r.String()+")")
	f.ranges[name] = r
	f.add(name, r.String(), func() error {
		if v := *p; (v == 0 && r.zero != "") || (v >= r.min && v <= r.max) {
			return nil
		}
		return fmt.Errorf("-%s %d is out of range: valid is %s", name, *p, r)
	})
}

// durationRange is a Duration flag's valid values, as intRange.
type durationRange struct {
	min, max time.Duration
	zero     string
}

func (r durationRange) String() string {
	s := shortDuration(r.min) + ".." + shortDuration(r.max)
	if r.zero != "" {
		s += "; 0 = " + r.zero
	}
	return s
}

// shortDuration writes 24h for 24h0m0s and 0 for 0s.
func shortDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Duration declares a time.Duration flag valid in r.
func (f *flagSet) Duration(p *time.Duration, name string, value time.Duration, r durationRange, usage string) {
	f.fs.DurationVar(p, name, value, usage+" ("+r.String()+")")
	f.ranges[name] = r
	f.add(name, r.String(), func() error {
		if v := *p; (v == 0 && r.zero != "") || (v >= r.min && v <= r.max) {
			return nil
		}
		return fmt.Errorf("-%s %v is out of range: valid is %s", name, *p, r)
	})
}

// Choice declares a string flag that takes one of choices.
func (f *flagSet) Choice(p *string, name, value string, choices []string, usage string) {
	valid := strings.Join(choices, " or ")
	f.fs.StringVar(p, name, value, usage+" ("+valid+")")
	f.add(name, valid, func() error {
		if slices.Contains(choices, *p) {
			return nil
		}
		return fmt.Errorf("-%s %q is not valid: use %s", name, *p, valid)
	})
}

// String declares a free-form string flag; valid says what it takes, and
// check (nil when any value is accepted here, e.g. a path that is opened
// later with its own error) rejects a malformed value.
func (f *flagSet) String(p *string, name, value, valid string, check func(string) error, usage string) {
	f.fs.StringVar(p, name, value, usage+" ("+valid+")")
	f.add(name, valid, func() error {
		if check == nil {
			return nil
		}
		if err := check(*p); err != nil {
			return fmt.Errorf("-%s %q: %w (valid: %s)", name, *p, err, valid)
		}
		return nil
	})
}

// Level declares a slog.Level flag.
func (f *flagSet) Level(p *slog.Level, name string, value slog.Level, usage string) {
	const valid = "debug, info, warn or error"
	*p = value
	// -h shows "-log-level level ... (default info)", as it is typed
	// (usage names the `level`), where flag.TextVar would show "value"
	// and slog's "INFO".
	f.fs.Var(levelValue{p}, name, usage+" ("+valid+")")
	f.add(name, valid, nil) // Set already rejects anything else
}

// levelValue is a flag.Value of a slog.Level, spelled lower case.
type levelValue struct{ p *slog.Level }

func (v levelValue) String() string {
	if v.p == nil { // the flag package's zero value, for -h
		return ""
	}
	return strings.ToLower(v.p.String())
}

func (v levelValue) Set(s string) error { return v.p.UnmarshalText([]byte(s)) }

func (f *flagSet) add(name, valid string, check func() error) {
	f.valid[name] = valid
	if check != nil {
		f.checks = append(f.checks, check)
	}
}

// parse parses args and checks every flag's value. -h and -help return
// flag.ErrHelp after writing the usage to usage.
func (f *flagSet) parse(args []string, usage io.Writer) error {
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			f.printUsage(usage)
			return err
		}
		return f.explain(err)
	}
	if f.fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: switchyard takes only flags", f.fs.Args())
	}
	var errs []error
	for _, check := range f.checks {
		if err := check(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// explain rewrites the flag package's error for a value that does not
// parse, `invalid value "30" for flag -unary-timeout: parse error` (slog's
// "unknown name" for a level), or a flag given without one, to name the
// flag's valid values, as its range check does. Any other error is
// returned as it is.
func (f *flagSet) explain(err error) error {
	if name, ok := strings.CutPrefix(err.Error(), "flag needs an argument: -"); ok {
		if valid, known := f.valid[name]; known {
			return fmt.Errorf("-%s needs a value: valid is %s", name, valid)
		}
		return err
	}
	name, value, ok := badFlagValue(err)
	valid, known := f.valid[name]
	if !ok || !known {
		return err
	}
	return fmt.Errorf("-%s %s does not parse: valid is %s", name, value, valid)
}

// badFlagValue reads the flag package's error for a value that does not
// parse, `invalid value "30" for flag -unary-timeout: parse error`: the
// flag's name and the value, quoted.
func badFlagValue(err error) (name, value string, ok bool) {
	rest, ok := strings.CutPrefix(err.Error(), "invalid value ")
	if !ok {
		return "", "", false
	}
	value, qerr := strconv.QuotedPrefix(rest)
	if qerr != nil {
		return "", "", false
	}
	rest, ok = strings.CutPrefix(rest[len(value):], " for flag -")
	name, _, ok2 := strings.Cut(rest, ": ")
	return name, value, ok && ok2
}

func (f *flagSet) printUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s [flags]\n       %s healthcheck [flags]   (a gRPC health check of a running server; healthcheck -h)\n\nServes every Switchyard API on one port in gRPC, gRPC-Web and Connect.\nEach flag shows its valid values in parentheses.\n\n", f.fs.Name(), f.fs.Name())
	f.fs.SetOutput(w)
	f.fs.PrintDefaults()
	f.fs.SetOutput(io.Discard)
}

// Ranges shared by several flags. Sizes stop at protobuf's 2 GiB message
// limit, which also keeps them within int32 where the transport needs it.
var (
	sizeRange    = func(zero string) intRange { return intRange{min: 1, max: 1<<31 - 1, zero: zero, unit: "bytes"} }
	countRange   = func(zero string) intRange { return intRange{min: 1, max: 1<<31 - 1, zero: zero} }
	timeoutRange = func(zero string) durationRange {
		return durationRange{min: time.Millisecond, max: 24 * time.Hour, zero: zero}
	}
)

// checkAddr accepts HOST:PORT with a numeric port; an empty host listens on
// every interface.
func checkAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("not HOST:PORT")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number in 0..65535", port)
	}
	return nil
}

// checkOrigins accepts "*" and origins such as https://app.example.com or
// https://*.example.com (scheme and host, no path), comma-separated.
func checkOrigins(list string) error {
	for _, o := range splitOrigins(list) {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" {
			return fmt.Errorf("%q is not an origin such as https://app.example.com", o)
		}
	}
	return nil
}
