//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// readmeSection is the README section whose commands this test runs.
const readmeSection = "## Calling it"

// readmeExample is one ```sh block of the README and, when a ```text block
// follows it, the output it must print.
type readmeExample struct {
	heading string // the ### heading it is under
	script  string
	want    string
	hasWant bool
}

// readmeExamples parses the fenced blocks of readmeSection.
func readmeExamples(t *testing.T) []readmeExample {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		examples []readmeExample
		in       bool   // inside readmeSection
		fence    string // "sh" or "text" while inside a fenced block
		heading  string
		block    []string
		lastSh   = -1 // index of the ```sh block a ```text block may belong to
	)
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		line := lines.Text()
		switch {
		case fence != "" && line == "```":
			text := strings.Join(block, "\n")
			if fence == "sh" {
				examples = append(examples, readmeExample{heading: heading, script: text})
				lastSh = len(examples) - 1
			} else if fence == "text" && lastSh >= 0 {
				examples[lastSh].want, examples[lastSh].hasWant = text, true
				lastSh = -1
			}
			fence, block = "", nil
		case fence != "":
			block = append(block, line)
		case strings.HasPrefix(line, "## "):
			in = line == readmeSection
		case !in:
		case strings.HasPrefix(line, "### "):
			heading, lastSh = strings.TrimPrefix(line, "### "), -1
		case line == "```sh" || line == "```text":
			fence = strings.TrimPrefix(line, "```")
		case strings.HasPrefix(line, "```"):
			fence, lastSh = "other", -1
		case strings.TrimSpace(line) != "":
			lastSh = -1 // prose between a command and a block: not its output
		}
	}
	if err := lines.Err(); err != nil {
		t.Fatal(err)
	}
	return examples
}

// TestREADME runs the README's commands verbatim against the server, with
// only localhost:50051 replaced by the server's address, and compares their
// output with the README's output blocks.
func TestREADME(t *testing.T) {
	examples := readmeExamples(t)
	covered := map[string]int{}
	for i, ex := range examples {
		covered[ex.heading]++
		first, _, _ := strings.Cut(ex.script, "\n")
		name := ex.heading + "/" + strings.TrimPrefix(first, "go tool -modfile=")
		t.Run(name, func(t *testing.T) {
			if !strings.Contains(ex.script, "localhost:50051") {
				t.Fatalf("README block %d does not call localhost:50051:\n%s", i+1, ex.script)
			}
			if strings.Contains(ex.script, "curl ") && !strings.Contains(ex.script, "buf curl") {
				need(t, "curl")
			}
			script := strings.ReplaceAll(ex.script, "localhost:50051", addr)
			res := run(t, "", "bash", "-e", "-o", "pipefail", "-c", script)
			if res.exitCode != 0 {
				t.Fatalf("README block failed with exit status %d:\n%s\nstdout:\n%s\nstderr:\n%s", res.exitCode, script, res.stdout, res.stderr)
			}
			if ex.hasWant && !sameOutput(res.stdout, ex.want) {
				t.Errorf("README block\n%s\nprinted\n%s\nbut the README shows\n%s", script, res.stdout, ex.want)
			}
		})
	}
	// The sections the README promises must keep their commands.
	for _, h := range []string{"grpcurl", "buf curl", "curl", "Go SDK", "The tutorials' clients"} {
		if covered[h] == 0 {
			t.Errorf("README %q has no ### %s block with commands", readmeSection, h)
		}
	}
}

// sameOutput compares JSON output (one or more values, as the tools print
// messages) by value, since protobuf's JSON encoders vary white space on
// purpose, and other output as text.
func sameOutput(got, want string) bool {
	g, gErr := decodeJSONValues(got)
	w, wErr := decodeJSONValues(want)
	if gErr == nil && wErr == nil {
		return reflect.DeepEqual(g, w)
	}
	return normalize(got) == normalize(want)
}

func decodeJSONValues(s string) ([]any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	var values []any
	for {
		var v any
		if err := dec.Decode(&v); errors.Is(err, io.EOF) {
			if len(values) == 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return values, nil
		} else if err != nil {
			return nil, err
		}
		values = append(values, v)
	}
}

// normalize drops trailing white space of lines and of the whole text.
func normalize(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n "), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t\r")
	}
	return strings.Join(lines, "\n")
}

// Outputs are compared by JSON value where both sides are JSON, since
// protobuf's JSON encoders vary their white space on purpose, and as text
// otherwise.
func TestSameOutput(t *testing.T) {
	for _, tc := range []struct {
		got, want string
		same      bool
	}{
		{`{"city":"Chicago", "nickname":"Jackals"}`, `{"city":"Chicago","nickname":"Jackals"}`, true},
		{"{\n  \"value\": 8\n}\n", `{"value":8}`, true},
		{`{"a":1}{"a":2}`, "{\"a\":1}\n{\"a\":2}", true},
		{`{"city":"Chicago","nickname":"Jackals"}`, `{"city":"Chicago","nickname":"Wheels"}`, false},
		{`{"a":1}`, `{"a":1}{"a":1}`, false},
		{`{"a":1}`, `{"a":"1"}`, false},
		{"Keywords: [like it much]  \n", "Keywords: [like it much]", true},
		{"5 + 3 = 8", "5 + 3 = 9", false},
	} {
		if got := sameOutput(tc.got, tc.want); got != tc.same {
			t.Errorf("sameOutput(%q, %q) = %v, want %v", tc.got, tc.want, got, tc.same)
		}
	}
}
