package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// localFiles lists the regular files under dir, relative, slash separated.
func localFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSingleObject: a source that names one object or file copies that
// object alone, with rclone's copyto naming: into a directory (trailing
// slash, bucket root, existing directory or prefix) under its own name,
// else under the exact name given. An object that is also a prefix is the
// object. Both directions, S3 to S3 and local to local; verified,
// re-runs copy nothing, and verify compares the one object.
func TestSingleObject(t *testing.T) {
	e := newEnv(t)
	src, dst := mkBucket(t, e.a), mkBucket(t, e.b)
	photo := randBytes(3000)
	put(t, e.a, src, "dir/photo.jpg", photo, nil)
	put(t, e.a, src, "dir/photo.jpg.bak", []byte("not me"), nil)
	put(t, e.a, src, "dir/other.jpg", []byte("nor me"), nil)
	put(t, e.a, src, "both", []byte("the object"), nil)
	put(t, e.a, src, "both/inner", []byte("below the prefix"), nil)
	put(t, e.b, dst, "existing/x", []byte("a directory"), nil)
	A, B := e.srcA(), e.dstB()

	// S3 object to local.
	dir := t.TempDir()
	copyOne := func(want int, args ...string) summary {
		t.Helper()
		return ferryJSON(t, want, append(append([]string{"copy"}, args...), A...)...)
	}
	if s := copyOne(0, "s3://"+src+"/dir/photo.jpg", dir); s.Copied != 1 {
		t.Fatalf("into a directory: copied %d", s.Copied)
	}
	if s := copyOne(0, "s3://"+src+"/dir/photo.jpg", filepath.Join(dir, "one")); s.Copied != 1 {
		t.Fatalf("exact name: copied %d", s.Copied)
	}
	copyOne(0, "s3://"+src+"/dir/photo.jpg", filepath.Join(dir, "new")+"/")
	copyOne(0, "s3://"+src+"/both", filepath.Join(dir, "b"))
	if got, want := strings.Join(localFiles(t, dir), ","), "b,new/photo.jpg,one,photo.jpg"; got != want {
		t.Fatalf("local files %q, want %q", got, want)
	}
	for _, f := range []string{"photo.jpg", "one", "new/photo.jpg"} {
		if b, _ := os.ReadFile(filepath.Join(dir, f)); !bytes.Equal(b, photo) {
			t.Fatalf("%s: content differs", f)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "b")); string(b) != "the object" {
		t.Fatalf("object-and-prefix copied %q, want the object", b)
	}
	// A re-run copies nothing; --error-on-no-transfer makes that exit 9.
	if s := copyOne(0, "s3://"+src+"/dir/photo.jpg", filepath.Join(dir, "one")); s.Copied != 0 || s.Skipped != 1 {
		t.Fatalf("re-run: copied %d skipped %d", s.Copied, s.Skipped)
	}
	copyOne(ExitNoTransfer, "s3://"+src+"/dir/photo.jpg", filepath.Join(dir, "one"), "--error-on-no-transfer")
	if v := ferryJSON(t, 0, append([]string{"verify", "s3://" + src + "/dir/photo.jpg", filepath.Join(dir, "one")}, A...)...); v.Raw["objects_identical"] != 1.0 || v.Raw["objects_listed"] != 1.0 {
		t.Fatalf("verify one object: %v", v.Raw)
	}

	// Local file to S3, and S3 to S3 across endpoints.
	file := filepath.Join(dir, "one")
	up := func(dstArg string, extra ...string) {
		t.Helper()
		s := ferryJSON(t, 0, append(append([]string{"copy", file, dstArg}, B...), extra...)...)
		if s.Copied != 1 {
			t.Fatalf("copy %s %s: copied %d", file, dstArg, s.Copied)
		}
	}
	up("s3://" + dst + "/up/renamed.bin")
	up("s3://" + dst)
	up("s3://" + dst + "/d/")
	up("s3://" + dst + "/existing")
	if s := ferryJSON(t, 0, append(append([]string{"copy", "s3://" + src + "/dir/photo.jpg", "s3://" + dst + "/copy.jpg"}, A...), B...)...); s.Copied != 1 {
		t.Fatalf("s3 to s3: copied %d", s.Copied)
	}
	want := "copy.jpg,d/one,existing/one,existing/x,one,up/renamed.bin"
	if got := strings.Join(keys(t, e.b, dst), ","); got != want {
		t.Fatalf("destination keys %q, want %q", got, want)
	}
	for _, k := range []string{"copy.jpg", "up/renamed.bin", "one"} {
		if b, _ := get(t, e.b, dst, k); !bytes.Equal(b, photo) {
			t.Fatalf("%s: content differs", k)
		}
	}

	// Local file to local file.
	out := filepath.Join(t.TempDir(), "copy.bin")
	if s := ferryJSON(t, 0, "copy", file, out); s.Copied != 1 {
		t.Fatalf("local to local: copied %d", s.Copied)
	}
	if b, _ := os.ReadFile(out); !bytes.Equal(b, photo) {
		t.Fatal("local to local: content differs")
	}

	// The same object as source and destination is refused.
	r := ferry(t, append(append([]string{"copy", "s3://" + src + "/dir/photo.jpg", "s3://" + src + "/dir/"}, A...), e.dstA()...)...)
	if r.code != ExitUsage || !strings.Contains(r.err, "same object") {
		t.Fatalf("same object: exit %d %s", r.code, r.err)
	}
}

// TestNothingMatched: a source that selects nothing warns in one line and
// exits 0, or 9 with --error-on-no-transfer.
func TestNothingMatched(t *testing.T) {
	e := newEnv(t)
	src := mkBucket(t, e.a)
	put(t, e.a, src, "dir/photo.jpg", []byte("x"), nil)
	dir := t.TempDir()
	args := append([]string{"copy", "s3://" + src + "/nokey", dir}, e.srcA()...)
	r := ferry(t, args...)
	if r.code != 0 || strings.Count(r.err, "nothing matched") != 1 || !strings.Contains(r.err, "s3://"+src+"/nokey/") {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.err)
	}
	r = ferry(t, append(args, "--error-on-no-transfer")...)
	if r.code != ExitNoTransfer || !strings.Contains(r.err, "nothing matched") {
		t.Fatalf("--error-on-no-transfer: exit %d, stderr:\n%s", r.code, r.err)
	}
	r = ferry(t, append([]string{"copy", "s3://" + src + "/dir", dir, "--include", "*.png", "--dry-run", "--error-on-no-transfer"}, e.srcA()...)...)
	if r.code != ExitNoTransfer || !strings.Contains(r.err, "--include/--exclude") {
		t.Fatalf("filtered dry run: exit %d, stderr:\n%s", r.code, r.err)
	}
	if fs := localFiles(t, dir); len(fs) != 0 {
		t.Fatalf("files written: %q", fs)
	}
}
