package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestListenToken(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	path, tok, err := listenToken(dir)
	if err != nil || len(tok) < 40 || !filepath.IsAbs(path) {
		t.Fatalf("listenToken = %q %q %v", path, tok, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode: %v %v", fi, err)
	}
	// The same token next time.
	if _, again, err := listenToken(dir); err != nil || again != tok {
		t.Fatalf("second listenToken = %q %v, want the first", again, err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, _, err := listenToken(dir); err == nil || !strings.Contains(err.Error(), "others can read") || strings.Contains(err.Error(), tok) {
		t.Fatalf("group-readable token file: %v", err)
	}
}
