package trust

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fleet.key")
	s, err := WriteKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode: %v %v", fi, err)
	}
	if _, err := WriteKeyFile(path); err == nil {
		t.Fatal("an existing key file was replaced")
	}
	r, err := ReadKeyFile(path)
	if err != nil || r.Public() != s.Public() {
		t.Fatalf("read back: %v", err)
	}
	// Group-readable (a Kubernetes Secret with defaultMode 0440) is fine,
	// readable by others is not.
	if err := os.Chmod(path, 0o440); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadKeyFile(path); err != nil {
		t.Errorf("mode 0440: %v", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadKeyFile(path); err == nil || !strings.Contains(err.Error(), "others can read") {
		t.Errorf("mode 0644: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(bad, []byte("nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadKeyFile(bad); err == nil || !strings.Contains(err.Error(), "not a ferry signing key") {
		t.Errorf("bad file: %v", err)
	}
}
