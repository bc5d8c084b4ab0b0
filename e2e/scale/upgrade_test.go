//go:build scale

package scale

import (
	"bytes"
	"database/sql"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/pgtest"
	"github.com/switchyard/switchyard/services/teams/sqlstore"
)

// Rolling upgrades: the binary of the previous schema keeps serving on a
// database this build migrated.
//
// Which binary is "previous": the parent of the commit that introduced
// the newest migration — the newest code that knows one schema less. (Not
// simply the newest commit with a lower schema by date: with merge commits
// that can be a sibling branch's commit that never had this history.) It
// is found in git and built from `git archive`. The binary must already
// follow the minimum-compatible-version rule, so that rule landed in a
// commit of its own before the first migration relying on it; if the
// branch that added them was squashed into one commit, the previous
// binary predates the rule and this test says so.

const migrationsFile = "services/teams/sqlstore/migrate.go"

// schemaVersionOf counts the migrations in a version of migrate.go: the
// elements of the composite literal assigned to `migrations` (versions are
// 1..n, one element each). 0 when there is none.
func schemaVersionOf(src []byte) (int, error) {
	f, err := parser.ParseFile(token.NewFileSet(), "migrate.go", src, 0)
	if err != nil {
		return 0, err
	}
	n := 0
	ast.Inspect(f, func(node ast.Node) bool {
		vs, ok := node.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || vs.Names[0].Name != "migrations" || len(vs.Values) != 1 {
			return true
		}
		if lit, ok := vs.Values[0].(*ast.CompositeLit); ok {
			n = len(lit.Elts)
		}
		return false
	})
	return n, nil
}

func git(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = repoRoot
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

func versionAt(t *testing.T, rev string) int {
	t.Helper()
	cmd := exec.Command("git", "show", rev+":"+migrationsFile)
	cmd.Dir = repoRoot
	src, err := cmd.Output()
	if err != nil {
		return 0 // no migrations file at rev
	}
	v, err := schemaVersionOf(src)
	if err != nil {
		t.Fatalf("%s at %s: %v", migrationsFile, rev, err)
	}
	return v
}

var previous struct {
	once    sync.Once
	commit  string
	version int
	binary  string
	err     string
}

// previousBinary builds (once) the binary of the previous schema and
// returns its path, commit and schema version.
func previousBinary(t *testing.T) (string, string, int) {
	t.Helper()
	previous.once.Do(func() { buildPrevious(t) })
	if previous.err != "" {
		t.Fatal(previous.err)
	}
	return previous.binary, previous.commit, previous.version
}

func buildPrevious(t *testing.T) {
	fail := func(format string, args ...any) { previous.err = fmt.Sprintf(format, args...) }
	current := sqlstore.LatestVersion()
	src, err := os.ReadFile(filepath.Join(repoRoot, migrationsFile))
	if err != nil {
		fail("%v", err)
		return
	}
	if v, err := schemaVersionOf(src); err != nil || v != current {
		fail("counting migrations in %s gives %d (%v), but the build's LatestVersion is %d: fix schemaVersionOf", migrationsFile, v, err, current)
		return
	}
	if git(t, "rev-parse", "--is-shallow-repository") == "true" {
		fail("this is a shallow clone: the rolling-upgrade test builds the previous schema's switchyard from git history; run `git fetch --unshallow` (CI clones in full)")
		return
	}
	// A migration added in the working tree, not committed yet: HEAD is
	// the previous binary.
	target := ""
	if versionAt(t, "HEAD") < current {
		target = "HEAD"
	} else {
		// Newest first, the commits that changed the migrations file; the
		// introducing commit is the last one at the current version.
		for _, c := range strings.Fields(git(t, "rev-list", "HEAD", "--", migrationsFile)) {
			if versionAt(t, c) < current {
				break
			}
			target = c + "^"
		}
	}
	if target == "" {
		fail("no commit introduces schema %d in the history of HEAD", current)
		return
	}
	commit := git(t, "rev-parse", "--short", target)
	v := versionAt(t, commit)
	if v == 0 || v >= current {
		fail("the commit before schema %d (%s) has schema %d: nothing older to upgrade from", current, commit, v)
		return
	}
	// Shared by the tests that use it: removed with scratch by TestMain.
	dir, err := os.MkdirTemp(scratch, "previous-")
	if err != nil {
		fail("%v", err)
		return
	}
	archive := exec.Command("sh", "-c", "git archive "+commit+" | tar -x -C "+dir)
	archive.Dir = repoRoot
	if out, err := archive.CombinedOutput(); err != nil {
		fail("git archive %s: %v\n%s", commit, err, out)
		return
	}
	bin := filepath.Join(dir, "switchyard-previous")
	build := exec.Command("go", "build", "-o", bin, "./cmd/switchyard")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		fail("building the previous schema's switchyard (%s): %v\n%s", commit, err, out)
		return
	}
	previous.binary, previous.commit, previous.version = bin, commit, v
}

// upgrade: this build migrates the database (and keeps serving); the
// previous schema's binary then serves on it beside this one: its writes
// are seen by this build within the bound (the triggers of the newer
// schema report them) and the other way round. Raising the recorded
// minimum makes the previous binary refuse, with what to do.
func upgrade(t *testing.T, env []string, args []string, setMinimum func(v int)) {
	prevBin, commit, prevVersion := previousBinary(t)
	t.Logf("previous schema: %d (commit %s); this build: %d", prevVersion, commit, sqlstore.LatestVersion())
	if sqlstore.MinCompatibleVersion() > prevVersion {
		t.Fatalf("schema %d declares itself incompatible with schema %d's binary: a rolling upgrade cannot run the two side by side", sqlstore.LatestVersion(), prevVersion)
	}
	current := start(t, "current", binary, env, args...)
	old := start(t, "previous", prevBin, env, args...)
	if strings.Contains(old.logs(), "newer than this switchyard knows") {
		t.Fatalf("the previous binary (%s) still has the old refusal rule: was the compatibility rule squashed into the same commit as the migration?", commit)
	}
	for _, pair := range [][2]*replica{{old, current}, {current, old}} {
		if err := put(ctxFor(t, 10*time.Second), pair[0].client, "Upgrade "+pair[0].name, "Rolling"); err != nil {
			t.Fatalf("%s: PutTeam: %v", pair[0].name, err)
		}
		acked := time.Now()
		seenWithin(t, pair[1].client, "Upgrade "+pair[0].name, "Rolling", time.Second)
		if pair[1] == current {
			// The previous binary's write reached this build's change
			// feed: the newer schema's triggers report every writer.
			current.waitChange(t, "upgrade previous", 1, acked)
		}
	}

	setMinimum(sqlstore.LatestVersion())
	cmd := exec.Command(prevBin, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "run a newer switchyard") {
		t.Errorf("the previous binary on a schema that requires %d: %v\n%s", sqlstore.LatestVersion(), err, out)
	}
}

func TestRollingUpgradeSQLite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	upgrade(t, nil, []string{"-data-dir", dir}, func(v int) {
		db, err := sql.Open("sqlite", filepath.Join(dir, sqlstore.SQLiteFile))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = db.Close() }()
		if _, err := db.Exec(`UPDATE schema_migrations SET min_compatible = ? WHERE version = ?`, v, v); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRollingUpgradePostgres(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	upgrade(t, []string{"SWITCHYARD_POSTGRES_DSN=" + dsn}, []string{"-data-dir", t.TempDir()}, func(v int) {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = db.Close() }()
		if _, err := db.Exec(`UPDATE schema_migrations SET min_compatible = $1 WHERE version = $1`, v); err != nil {
			t.Fatal(err)
		}
	})
}
