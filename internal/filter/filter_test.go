package filter

import (
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/store"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		name             string
		include, exclude []string
		key              string
		want             bool
	}{
		{"no rules", nil, nil, "a/b.txt", true},
		{"ext any depth", []string{"*.jpg"}, nil, "a/b/c.jpg", true},
		{"ext top", []string{"*.jpg"}, nil, "c.jpg", true},
		{"ext no match", []string{"*.jpg"}, nil, "c.jpeg", false},
		{"star stops at slash", []string{"/a*"}, nil, "ab/c", false},
		{"anchored ext top only", []string{"/*.jpg"}, nil, "c.jpg", true},
		{"anchored ext not deeper", []string{"/*.jpg"}, nil, "a/c.jpg", false},
		{"dir and star, any depth", []string{"b/*.jpg"}, nil, "a/b/c.jpg", true},
		{"dir and star, not two levels", []string{"b/*.jpg"}, nil, "b/x/c.jpg", false},
		{"doublestar crosses", []string{"b/**.jpg"}, nil, "b/x/c.jpg", true},
		{"anchored", []string{"/a/*.txt"}, nil, "a/x.txt", true},
		{"anchored deeper", []string{"/a/*.txt"}, nil, "z/a/x.txt", false},
		{"doublestar", []string{"/logs/**"}, nil, "logs/2024/01/x", true},
		{"dir pattern", nil, []string{"tmp/"}, "x/tmp/y/z", false},
		{"dir pattern sibling", nil, []string{"tmp/"}, "x/tmpy/z", true},
		{"exclude wins", []string{"*.txt"}, []string{"secret*"}, "d/secret.txt", false},
		{"question", []string{"/?.txt"}, nil, "a.txt", true},
		{"question not slash", []string{"/?a"}, nil, "/a", false},
		{"class", []string{"/[ab].txt"}, nil, "b.txt", true},
		{"negated class", []string{"/[!ab].txt"}, nil, "b.txt", false},
		{"braces", []string{"*.{jpg,png}"}, nil, "x.png", true},
		{"literal specials", []string{"/a+b (1).txt"}, nil, "a+b (1).txt", true},
		{"escaped star", []string{`/a\*`}, nil, "a*", true},
		{"escaped star literal only", []string{`/a\*`}, nil, "ab", false},
		{"unicode", []string{"*.日本"}, nil, "x/ファイル.日本", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := New(tt.include, tt.exclude)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Match(tt.key); got != tt.want {
				t.Fatalf("Match(%q) = %v, want %v", tt.key, got, tt.want)
			}
		})
	}
}

func TestBadPatterns(t *testing.T) {
	for _, p := range []string{"", "[abc", "{a,b", "a}", `a\`} {
		if _, err := New([]string{p}, nil); err == nil {
			t.Errorf("pattern %q: want error", p)
		}
	}
}

func FuzzCompile(f *testing.F) {
	for _, s := range []string{"*.jpg", "/a/**", "{a,b}", "[!x]", `\*`} {
		f.Add(s, "a/b.jpg")
	}
	f.Fuzz(func(t *testing.T, glob, key string) {
		re, err := Compile(glob)
		if err != nil {
			return
		}
		_ = re.MatchString(key)
	})
}

func TestMatchObject(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	i64 := func(n int64) *int64 { return &n }
	tests := []struct {
		name string
		spec Spec
		obj  store.Object
		want bool
	}{
		{"no bounds", Spec{}, store.Object{Key: "a", Size: 5, LastModified: t0}, true},
		{"min size below", Spec{MinSize: i64(10)}, store.Object{Key: "a", Size: 9}, false},
		{"min size equal", Spec{MinSize: i64(10)}, store.Object{Key: "a", Size: 10}, true},
		{"max size above", Spec{MaxSize: i64(10)}, store.Object{Key: "a", Size: 11}, false},
		{"max size equal", Spec{MaxSize: i64(10)}, store.Object{Key: "a", Size: 10}, true},
		{"max size zero selects empty", Spec{MaxSize: i64(0)}, store.Object{Key: "a", Size: 0}, true},
		{"max size zero excludes others", Spec{MaxSize: i64(0)}, store.Object{Key: "a", Size: 1}, false},
		{"modified after: older", Spec{ModifiedAfter: t0}, store.Object{Key: "a", LastModified: t0.Add(-time.Second)}, false},
		{"modified after: equal", Spec{ModifiedAfter: t0}, store.Object{Key: "a", LastModified: t0}, true},
		{"modified before: newer", Spec{ModifiedBefore: t0}, store.Object{Key: "a", LastModified: t0.Add(time.Second)}, false},
		{"modified before: older", Spec{ModifiedBefore: t0}, store.Object{Key: "a", LastModified: t0.Add(-time.Hour)}, true},
		{"files-from listed", Spec{FilesFrom: &KeyList{Keys: []string{"a/b", "c"}}}, store.Object{Key: "a/b"}, true},
		{"files-from not listed", Spec{FilesFrom: &KeyList{Keys: []string{"a/b", "c"}}}, store.Object{Key: "a"}, false},
		{"files-from empty selects nothing", Spec{FilesFrom: &KeyList{}}, store.Object{Key: "a"}, false},
		{"files-from and exclude", Spec{FilesFrom: &KeyList{Keys: []string{"x.tmp"}}, Exclude: []string{"*.tmp"}}, store.Object{Key: "x.tmp"}, false},
		{"glob and size", Spec{Include: []string{"*.jpg"}, MinSize: i64(2)}, store.Object{Key: "d/x.jpg", Size: 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := FromSpec(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.MatchObject(tt.obj); got != tt.want {
				t.Fatalf("MatchObject(%+v) = %v, want %v", tt.obj, got, tt.want)
			}
			if got := f.Empty(); got != (tt.name == "no bounds") {
				t.Fatalf("Empty() = %v", got)
			}
		})
	}
	var zero Filter
	if !zero.MatchObject(store.Object{Key: "a", Size: 1 << 40}) || !zero.Empty() {
		t.Fatal("the zero Filter must select everything")
	}
}

func TestFromSpecRefuses(t *testing.T) {
	i64 := func(n int64) *int64 { return &n }
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for name, s := range map[string]Spec{
		"min above max":     {MinSize: i64(10), MaxSize: i64(9)},
		"negative":          {MinSize: i64(-1)},
		"ages exclusive":    {ModifiedAfter: t0, ModifiedBefore: t0.Add(-time.Second)},
		"files-from dotdot": {FilesFrom: &KeyList{Keys: []string{"a/../b"}}},
	} {
		if _, err := FromSpec(s); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestReadKeys(t *testing.T) {
	in := "# a comment\n\n  a/b.txt  \r\n; another comment\n/c\n//d/e\nf/\n"
	keys, err := ReadKeys(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(keys, ","), "a/b.txt,c,d/e,f/"; got != want {
		t.Fatalf("keys = %s, want %s", got, want)
	}
	for name, in := range map[string]string{
		"dotdot":       "ok\n../etc/passwd\n",
		"dotdot inner": "a/../../b\n",
		"dot":          "a/./b\n",
		"invalid utf8": "ok\n\xff\xfe\n",
		"control":      "a\x01b\n",
		"too long":     strings.Repeat("k", MaxKeyLen+1) + "\n",
	} {
		_, err := ReadKeys(strings.NewReader(in))
		if err == nil || !strings.Contains(err.Error(), "line ") {
			t.Errorf("%s: err = %v, want one naming the line", name, err)
		}
	}
	if _, err := ReadKeys(strings.NewReader(strings.Repeat("x", 2<<20))); err == nil {
		t.Error("a 2 MiB line: no error")
	}
}

func TestMayMatchPrefix(t *testing.T) {
	f, err := FromSpec(Spec{FilesFrom: &KeyList{Keys: []string{"a/b/c", "d", "e/"}}})
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{"a/": true, "a/b/": true, "a/c/": false, "b/": false, "d": true, "e/": true, "z/": false, "": true} {
		if got := f.MayMatchPrefix(p); got != want {
			t.Errorf("MayMatchPrefix(%q) = %v, want %v", p, got, want)
		}
	}
	g, _ := New([]string{"*.jpg"}, nil)
	if !g.MayMatchPrefix("x/") || !(*Filter)(nil).MayMatchPrefix("x/") {
		t.Error("without --files-from every prefix may match")
	}
}
