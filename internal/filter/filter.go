// Package filter selects keys with --include and --exclude globs, with
// rclone's rules.
//
// Glob syntax, matched against keys relative to the location:
//
//	glob     matches
//	*        any run of characters except "/"
//	**       any run of characters, "/" included
//	?        one character except "/"
//	[abc]    one character of a class ([!abc] or [^abc] negates)
//	{a,b}    either alternative
//	\x       the character x literally
//
// "*" never crosses a "/", but a pattern that does not start with "/" is
// matched against the end of the key, from the start of any path segment:
// "*.jpg" matches "c.jpg" and "a/b/c.jpg" (each a whole last segment), and
// "b/*.jpg" matches "a/b/c.jpg" but not "b/x/c.jpg". A pattern starting
// with "/" is anchored at the location's root: "/*.jpg" matches "c.jpg" only
// at the top level. A pattern ending with "/" matches everything below such a
// directory ("tmp/" matches "x/tmp/y"). A key is selected when it matches at
// least one include (or there are none) and no exclude.
package filter

import (
	"fmt"
	"regexp"
	"strings"
)

// Filter selects keys. The zero value (and nil) selects every key.
type Filter struct {
	include []*regexp.Regexp
	exclude []*regexp.Regexp
}

// New compiles include and exclude globs.
func New(include, exclude []string) (*Filter, error) {
	f := &Filter{}
	for _, p := range include {
		re, err := Compile(p)
		if err != nil {
			return nil, fmt.Errorf("--include %q: %w", p, err)
		}
		f.include = append(f.include, re)
	}
	for _, p := range exclude {
		re, err := Compile(p)
		if err != nil {
			return nil, fmt.Errorf("--exclude %q: %w", p, err)
		}
		f.exclude = append(f.exclude, re)
	}
	return f, nil
}

// Match reports whether key is selected.
func (f *Filter) Match(key string) bool {
	if f == nil {
		return true
	}
	if len(f.include) > 0 {
		ok := false
		for _, re := range f.include {
			if re.MatchString(key) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, re := range f.exclude {
		if re.MatchString(key) {
			return false
		}
	}
	return true
}

// Empty reports whether the filter selects every key.
func (f *Filter) Empty() bool { return f == nil || len(f.include)+len(f.exclude) == 0 }

// Compile turns one glob into a regular expression over whole keys.
func Compile(glob string) (*regexp.Regexp, error) {
	if glob == "" {
		return nil, fmt.Errorf("empty pattern")
	}
	var b strings.Builder
	if strings.HasPrefix(glob, "/") {
		b.WriteString(`^`)
		glob = glob[1:]
	} else {
		b.WriteString(`^(?:.*/)?`)
	}
	dir := strings.HasSuffix(glob, "/")
	depth := 0 // inside {...}
	for i := 0; i < len(glob); i++ {
		c := glob[i]
		switch c {
		case '*':
			if i+1 < len(glob) && glob[i+1] == '*' {
				b.WriteString(`.*`)
				i++
			} else {
				b.WriteString(`[^/]*`)
			}
		case '?':
			b.WriteString(`[^/]`)
		case '[':
			end := strings.IndexByte(glob[i+1:], ']')
			if end < 0 {
				return nil, fmt.Errorf("unterminated character class")
			}
			if end == 0 { // "[]...]": a literal ] first
				next := strings.IndexByte(glob[i+2:], ']')
				if next < 0 {
					return nil, fmt.Errorf("unterminated character class")
				}
				end = next + 1
			}
			class := glob[i+1 : i+1+end]
			i += end + 1
			b.WriteByte('[')
			if class[0] == '!' || class[0] == '^' {
				b.WriteByte('^')
				class = class[1:]
			}
			b.WriteString(strings.ReplaceAll(strings.ReplaceAll(class, `\`, `\\`), "[", `\[`))
			b.WriteByte(']')
		case '{':
			depth++
			b.WriteString(`(?:`)
		case '}':
			if depth == 0 {
				return nil, fmt.Errorf("unmatched }")
			}
			depth--
			b.WriteString(`)`)
		case ',':
			if depth > 0 {
				b.WriteString(`|`)
			} else {
				b.WriteString(`,`)
			}
		case '\\':
			if i+1 >= len(glob) {
				return nil, fmt.Errorf("trailing backslash")
			}
			i++
			b.WriteString(regexp.QuoteMeta(glob[i : i+1]))
		default:
			b.WriteString(regexp.QuoteMeta(glob[i : i+1]))
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("unmatched {")
	}
	if dir {
		b.WriteString(`.*`)
	}
	b.WriteString(`$`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("invalid pattern: %w", err)
	}
	return re, nil
}
