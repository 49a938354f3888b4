package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func rec(i int) Record {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 6000, time.FixedZone("x", 3600))
	return Record{
		Job: "job-1", Key: fmt.Sprintf("dir/key-%03d", i), Size: int64(i * 100),
		SrcETag: `"abc"`, SrcVersion: "v1", CRC32C: "AAAAAA==", MD5: "d41d8cd98f00b204e9800998ecf8427e",
		DstETag: `"def"`, DstVersion: "v2", Outcome: Copied, Attempts: 1, Worker: "w1",
		Started: t0, Finished: t0.Add(time.Second),
	}
}

// writeLog writes n records to a new log and returns its path and lines.
func writeLog(t *testing.T, n int) (string, []string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		if err := l.Record(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, strings.SplitAfter(string(b), "\n")[:n]
}

func TestFormat(t *testing.T) {
	path, lines := writeLog(t, 2)
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatal(err)
	}
	if m["prev"] != Genesis || m["seq"] != 1.0 || m["outcome"] != "copied" || m["started"] != "2025-01-02T02:04:05.000006Z" {
		t.Fatalf("first line: %s", lines[0])
	}
	for _, k := range []string{"time", "job", "key", "size", "src_etag", "src_version", "crc32c", "md5", "dst_etag", "dst_version", "attempts", "worker", "finished"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %s in %s", k, lines[0])
		}
	}
	if tm, _ := time.Parse(time.RFC3339Nano, m["time"].(string)); time.Since(tm) > time.Minute || !strings.HasSuffix(m["time"].(string), "Z") {
		t.Errorf("time %v", m["time"])
	}
	if !strings.HasPrefix(lines[0], `{"prev":"`) {
		t.Errorf("prev is not first: %s", lines[0])
	}
	f, _ := os.Open(path)
	defer f.Close()
	n, last, err := Verify(f)
	if err != nil || n != 2 || last != hashLine([]byte(strings.TrimSuffix(lines[1], "\n"))) {
		t.Fatalf("Verify: %d %s %v", n, last, err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
}

func TestBadUTF8Key(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.jsonl")
	l, _ := Open(path)
	r := rec(1)
	r.Key = "bad\xffkey"
	if err := l.Record(r); err != nil {
		t.Fatal(err)
	}
	l.Close()
	b, _ := os.ReadFile(path)
	if !bytes.Contains(b, []byte(`"key_base64":"YmFk/2tleQ=="`)) {
		t.Fatalf("%s", b)
	}
}

func TestInvalidOutcome(t *testing.T) {
	l, _ := Open(filepath.Join(t.TempDir(), "a.jsonl"))
	defer l.Close()
	if err := l.Record(Record{Key: "k", Outcome: "done"}); err == nil {
		t.Fatal("accepted an invalid outcome")
	}
	if n, _ := l.Head(); n != 0 {
		t.Fatal("invalid record counted")
	}
}

func TestConcurrentAndResume(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.jsonl")
	l, err := OpenOptions(path, Options{SyncEvery: 7, SyncInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Open: %v", err)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 50 {
				r := rec(i)
				r.Worker = fmt.Sprint(w)
				if err := l.Record(r); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	time.Sleep(5 * time.Millisecond) // let the sync timer run
	n1, h1 := l.Head()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Record(rec(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Record after Close: %v", err)
	}
	// Resume: the chain continues.
	l, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if n, h := l.Head(); n != n1 || h != h1 || n != 400 {
		t.Fatalf("reopened head %d %s, want %d %s", n, h, n1, h1)
	}
	for i := range 3 {
		if err := l.Record(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	n2, h2 := l.Head()
	l.Close()
	f, _ := os.Open(path)
	defer f.Close()
	n, last, err := VerifyExpect(f, h2)
	if err != nil || n != 403 || n2 != 403 || last != h2 {
		t.Fatalf("Verify: %d %s %v", n, last, err)
	}
}

func TestOpenRefusesDamagedTail(t *testing.T) {
	path, lines := writeLog(t, 3)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")[:len(strings.Join(lines, ""))-10]), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "cut short") {
		t.Fatalf("got %v", err)
	}
	if err := os.WriteFile(path, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "not an audit record") {
		t.Fatalf("got %v", err)
	}
}

func TestVerifyDetects(t *testing.T) {
	_, lines := writeLog(t, 6)
	lastHash := hashLine([]byte(strings.TrimSuffix(lines[5], "\n")))
	edit := func(s string) string { return strings.Replace(s, `"size":`, `"size":1`, 1) }
	with := func(f func(l []string) []string) string {
		return strings.Join(f(append([]string(nil), lines...)), "")
	}
	for _, tc := range []struct {
		name     string
		log      string
		expect   string // --expect-last
		wantLine int64  // 0: valid
		wantMsg  string
	}{
		{"intact", with(func(l []string) []string { return l }), "", 0, ""},
		{"intact anchored", with(func(l []string) []string { return l }), lastHash, 0, ""},
		{"empty", "", "", 0, ""},
		{"edited line 3", with(func(l []string) []string { l[2] = edit(l[2]); return l }), "", 3, "edited"},
		{"edited line 1", with(func(l []string) []string { l[0] = edit(l[0]); return l }), "", 1, "edited"},
		{"edited prev of line 4", with(func(l []string) []string {
			l[3] = strings.Replace(l[3], `"prev":"`, `"prev":"0`, 1)
			return l
		}), "", 4, "edited"},
		{"edited last line unanchored", with(func(l []string) []string { l[5] = edit(l[5]); return l }), "", 0, ""},
		{"edited last line anchored", with(func(l []string) []string { l[5] = edit(l[5]); return l }), lastHash, 6, "last line"},
		{"removed line 2", with(func(l []string) []string { return append(l[:1], l[2:]...) }), "", 2, "seq is 3"},
		{"removed line 1", with(func(l []string) []string { return l[1:] }), "", 1, "seq is 2"},
		{"reordered 4 and 5", with(func(l []string) []string { l[3], l[4] = l[4], l[3]; return l }), "", 4, "seq is 5"},
		{"inserted copy of line 2 at 4", with(func(l []string) []string {
			return append(l[:3], append([]string{l[1]}, l[3:]...)...)
		}), "", 4, "seq is 2"},
		{"truncated mid-line", with(func(l []string) []string { l[4] = l[4][:20]; return l[:5] }), "", 5, "cut short"},
		{"truncated at a line unanchored", with(func(l []string) []string { return l[:4] }), "", 0, ""},
		{"truncated at a line anchored", with(func(l []string) []string { return l[:4] }), lastHash, 4, "removed"},
		{"truncated to nothing anchored", "", lastHash, 1, "empty"},
		{"bad JSON line 3", with(func(l []string) []string { l[2] = "{not json\n"; return l }), "", 3, "not valid JSON"},
		{"JSON array line 2", with(func(l []string) []string { l[1] = "[1,2]\n"; return l }), "", 2, "not a JSON object"},
		{"no prev line 2", with(func(l []string) []string { l[1] = `{"seq":2}` + "\n"; return l }), "", 2, "no \"prev\""},
		{"empty line 3", with(func(l []string) []string { l[2] = "\n"; return l }), "", 3, "empty line"},
		{"CRLF line 2", with(func(l []string) []string { l[1] = strings.TrimSuffix(l[1], "\n") + "\r\n"; return l }), "", 2, "edited"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, _, err := VerifyExpect(strings.NewReader(tc.log), tc.expect)
			if tc.wantLine == 0 {
				if err != nil {
					t.Fatalf("want ok, got %v", err)
				}
				return
			}
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("want a VerifyError for line %d, got %v (lines %d)", tc.wantLine, err, n)
			}
			if ve.Line != tc.wantLine || !strings.Contains(ve.Reason, tc.wantMsg) {
				t.Fatalf("got %q, want line %d containing %q", err, tc.wantLine, tc.wantMsg)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("not one line: %q", err)
			}
		})
	}
}

func TestVerifyLongLine(t *testing.T) {
	_, lines := writeLog(t, 1)
	log := lines[0] + strings.Repeat("x", MaxLineSize+10) + "\n"
	_, _, err := Verify(strings.NewReader(log))
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Line != 2 {
		t.Fatalf("got %v", err)
	}
}

func FuzzVerify(f *testing.F) {
	path := filepath.Join(f.TempDir(), "a.jsonl")
	l, _ := Open(path)
	for i := range 3 {
		_ = l.Record(rec(i))
	}
	l.Close()
	b, _ := os.ReadFile(path)
	f.Add(b, "")
	f.Add(b[:len(b)-3], "")
	f.Add([]byte("{}\n\n"), Genesis)
	f.Add([]byte(`{"prev":"`+Genesis+`","seq":1}`+"\n"), "")
	f.Fuzz(func(t *testing.T, data []byte, want string) {
		n, last, err := VerifyExpect(bytes.NewReader(data), want)
		var ve *VerifyError
		if err != nil && !errors.As(err, &ve) {
			t.Fatalf("not a VerifyError: %v", err)
		}
		if ve != nil && (ve.Line < 1 || ve.Line > n+1) {
			t.Fatalf("line %d after %d good lines", ve.Line, n)
		}
		if err == nil && (len(last) != 64 || int64(bytes.Count(data, []byte("\n"))) != n) {
			t.Fatalf("ok with %d lines, last %q", n, last)
		}
	})
}
