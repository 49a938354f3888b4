package filter

import "testing"

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
