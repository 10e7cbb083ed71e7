// Package proto holds the bcx API definitions and their generated Go code.
package proto_test

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedCodeIsFresh regenerates the Go code with the pinned tools into
// a temporary directory and fails if it differs from what is committed, and
// runs buf lint. Run `go tool -modfile=tools/go.mod buf generate` to fix.
func TestGeneratedCodeIsFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping code generation in -short mode")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("skipping: no go command on PATH to run buf")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	buf := func(args ...string) {
		t.Helper()
		cmd := exec.Command(goBin, append([]string{"tool", "-modfile=tools/go.mod", "buf"}, args...)...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("buf %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	buf("lint")
	out := t.TempDir()
	buf("generate", "-o", out)

	committed := map[string][]byte{}
	_ = filepath.WalkDir(filepath.Join(root, "proto"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".pb.go") {
			rel, _ := filepath.Rel(root, path)
			committed[rel], _ = os.ReadFile(path)
		}
		return nil
	})
	generated := 0
	_ = filepath.WalkDir(out, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(path, ".pb.go") {
			return nil
		}
		generated++
		rel, _ := filepath.Rel(out, path)
		fresh, _ := os.ReadFile(path)
		old, ok := committed[rel]
		switch {
		case !ok:
			t.Errorf("%s is generated but not committed", rel)
		case !bytes.Equal(old, fresh):
			t.Errorf("%s is stale: regenerate with `go tool -modfile=tools/go.mod buf generate`", rel)
		}
		delete(committed, rel)
		return nil
	})
	for rel := range committed {
		t.Errorf("%s is committed but no longer generated", rel)
	}
	if generated == 0 {
		t.Fatal("buf generated nothing")
	}
}
