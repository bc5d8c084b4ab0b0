package check

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// repo returns a path in the repository (this module is deploy/check).
func repo(rel string) string { return filepath.Join("..", "..", rel) }

// switchyard builds the product's binary once.
func switchyard(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "switchyard-deploy-check-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "switchyard")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/switchyard")
		cmd.Dir = repo(".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

var flagLine = regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`)

// knownFlags are the flags `switchyard -h` lists.
func knownFlags(t *testing.T) map[string]bool {
	t.Helper()
	out, _ := exec.Command(switchyard(t), "-h").CombinedOutput() // -h exits non-zero
	flags := map[string]bool{}
	for _, m := range flagLine.FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	if len(flags) < 20 || !flags["addr"] {
		t.Fatalf("switchyard -h lists %d flags:\n%s", len(flags), out)
	}
	return flags
}

// checkFlags fails for any "-name" or "-name=value" in args that switchyard
// does not know, and returns args as name → value.
func checkFlags(t *testing.T, where string, args []string) map[string]string {
	t.Helper()
	known := knownFlags(t)
	got := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !known[name] {
			t.Errorf("%s passes -%s, which switchyard does not know", where, name)
		}
		if !hasValue && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			value = args[i+1]
			i++
		}
		got[name] = value
	}
	return got
}
