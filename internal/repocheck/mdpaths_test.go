package repocheck

import (
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every repository path a Markdown document names must exist, so the docs
// cannot cite a file that was renamed or never written (SECURITY.md once
// cited cmd/switchyard/process_test.go).
//
// What counts as a path:
//
//   - a link or image target ([text](target)) without a URL scheme or a
//     leading "#", "/" or "~", resolved against the document's directory
//     (as Markdown does), its #fragment dropped;
//   - inside code (`spans` and fenced blocks), every word that has a "/"
//     and whose first element is a top-level entry of the repository
//     (cmd/..., internal/..., web/..., tools/go.mod, ./cmd/x, and the path
//     after a -flag=; a Go import path of this module, such as
//     github.com/switchyard/switchyard/gen/teams/v1, names gen/teams/v1),
//     resolved against the repository root. Words naming
//     protobuf procedures (teams.v1.TeamsService/GetTeam), MIME types, URLs
//     and home-directory paths do not start with a top-level entry and are
//     left alone, as are single names without a "/".
//
// A path with a placeholder (<svc>, $VAR, ...) is a template and is skipped;
// one with "*" must match at least one path, and "{a,b}" is expanded.
// A path exists when git tracks it (as a file or as a directory holding
// tracked files) or when .gitignore ignores it (a build output such as
// bin/switchyard, which a fresh clone has only after a build).

// modulePath is the main module's path (go.mod).
const modulePath = "github.com/switchyard/switchyard"

var (
	linkRE   = regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	spanRE   = regexp.MustCompile("`+([^`]+)`+")
	schemeRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
	braceRE  = regexp.MustCompile(`\{([^{}]*)\}`)
)

// tree is the repository as a fresh clone has it.
type tree struct {
	paths    map[string]bool // tracked files and every directory above one
	toplevel map[string]bool // first path elements
}

func loadTree(t *testing.T) tree {
	tr := tree{paths: map[string]bool{}, toplevel: map[string]bool{}}
	for _, f := range trackedFiles(t) {
		p := f.path
		tr.toplevel[strings.SplitN(p, "/", 2)[0]] = true
		for ; p != "."; p = path.Dir(p) {
			tr.paths[p] = true
		}
	}
	return tr
}

// reference is a path named by a document.
type reference struct {
	line int
	text string // as written
	path string // cleaned, relative to the repository root
}

// markdownReferences extracts the repository paths doc (at docPath,
// relative to the root) names; isTop says whether a first path element is a
// top-level entry.
func markdownReferences(docPath, doc string, isTop func(string) bool) []reference {
	var refs []reference
	inFence := false
	for i, line := range strings.Split(doc, "\n") {
		n := i + 1
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inFence = !inFence
			continue
		}
		if inFence {
			refs = append(refs, codeReferences(n, line, isTop)...)
			continue
		}
		for _, m := range linkRE.FindAllStringSubmatch(line, -1) {
			target := m[1]
			if schemeRE.MatchString(target) || strings.HasPrefix(target, "#") || strings.HasPrefix(target, "/") || strings.HasPrefix(target, "~") {
				continue
			}
			target, _, _ = strings.Cut(target, "#")
			refs = append(refs, reference{line: n, text: m[1], path: path.Join(path.Dir(docPath), target)})
		}
		for _, m := range spanRE.FindAllStringSubmatch(line, -1) {
			refs = append(refs, codeReferences(n, m[1], isTop)...)
		}
	}
	return refs
}

// codeReferences finds the paths among the words of a piece of code.
func codeReferences(line int, code string, isTop func(string) bool) []reference {
	var refs []reference
	// Commas separate nothing here: "{a,b}" is one word.
	words := strings.FieldsFunc(code, func(r rune) bool { return strings.ContainsRune(" \t`\"'();|&", r) })
	for _, w := range words {
		if i := strings.LastIndex(w, "="); i >= 0 && strings.HasPrefix(w, "-") {
			w = w[i+1:] // -modfile=tools/go.mod
		}
		w = strings.TrimRight(w, ".,:;")
		w = strings.TrimPrefix(w, "./")
		w = strings.TrimPrefix(w, modulePath+"/") // a Go import path of this module
		if !strings.Contains(w, "/") || strings.ContainsAny(w, "<>$%") {
			continue
		}
		first, _, _ := strings.Cut(w, "/")
		if !isTop(first) {
			continue
		}
		refs = append(refs, reference{line: line, text: w, path: path.Clean(w)})
	}
	return refs
}

// expand turns "{a,b}" into each alternative.
func expand(p string) []string {
	m := braceRE.FindStringSubmatchIndex(p)
	if m == nil {
		return []string{p}
	}
	var out []string
	for _, alt := range strings.Split(p[m[2]:m[3]], ",") {
		out = append(out, expand(p[:m[0]]+strings.TrimSpace(alt)+p[m[1]:])...)
	}
	return out
}

// exists reports whether p names something in tr (or a build output).
func (tr tree) exists(p string, ignoredPaths map[string]bool) bool {
	if strings.Contains(p, "*") {
		for q := range tr.paths {
			if ok, _ := path.Match(p, q); ok {
				return true
			}
		}
		return false
	}
	return tr.paths[p] || ignoredPaths[p]
}

func TestMarkdownPathsExist(t *testing.T) {
	root := repoRoot(t)
	tr := loadTree(t)
	var docs []string
	for _, f := range trackedFiles(t) {
		if strings.HasSuffix(f.path, ".md") {
			docs = append(docs, f.path)
		}
	}
	type found struct {
		doc string
		ref reference
	}
	var all []found
	var candidates []string
	for _, doc := range docs {
		data, err := os.ReadFile(filepath.Join(root, doc))
		if err != nil {
			t.Fatal(err)
		}
		for _, ref := range markdownReferences(doc, string(data), func(s string) bool { return tr.toplevel[s] }) {
			for _, p := range expand(ref.path) {
				all = append(all, found{doc, reference{ref.line, ref.text, p}})
				candidates = append(candidates, p)
			}
		}
	}
	if len(all) == 0 {
		t.Fatal("no paths found in any Markdown file: the test is broken")
	}
	ign := ignored(t, candidates)
	for _, f := range all {
		if !tr.exists(f.ref.path, ign) {
			t.Errorf("%s:%d names %s, which does not exist", f.doc, f.ref.line, f.ref.text)
		}
	}
	t.Logf("checked %d path references in %d Markdown files", len(all), len(docs))
}

func TestMarkdownReferences(t *testing.T) {
	isTop := func(s string) bool { return s == "cmd" || s == "tools" || s == "docs" || s == "internal" || s == "gen" }
	doc := strings.Join([]string{
		"See `cmd/switchyard/process_test.go` and [the soak](soak.md#run) or [site](https://x.example/cmd/a).",
		"Procedures like `teams.v1.TeamsService/GetTeam`, `application/grpc-web+proto`, `~/.local/share/switchyard`.",
		"Run `go tool -modfile=tools/go.mod grpcurl` or `go run ./cmd/teams-client -addr x`.",
		"Import `\"github.com/switchyard/switchyard/gen/teams/v1\"`, not `github.com/switchyard/switchyard v0.0.0`.",
		"Templates: `cmd/<svc>-client/`, `$XDG_DATA_HOME/switchyard`; a bare name `Makefile`.",
		"```sh",
		"cd internal/server && ls",
		"```",
		"Outside code internal/not/checked.go is prose.",
	}, "\n")
	var got []string
	for _, r := range markdownReferences("docs/x.md", doc, isTop) {
		got = append(got, r.path)
	}
	want := []string{"docs/soak.md", "cmd/switchyard/process_test.go", "tools/go.mod", "cmd/teams-client", "gen/teams/v1", "internal/server"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("references = %q, want %q", got, want)
	}
	if got := expand("internal/server/{h2_ext_test,tls_ext_test}.go"); strings.Join(got, " ") != "internal/server/h2_ext_test.go internal/server/tls_ext_test.go" {
		t.Errorf("expand = %q", got)
	}
}
