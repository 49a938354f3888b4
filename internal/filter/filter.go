// Package filter selects objects: by key with --include and --exclude globs
// and --files-from lists, by size with --min-size and --max-size, and by
// modification time with --max-age and --min-age (see [Spec]).
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
//
// An object is selected when its key is, it is listed in --files-from (when
// given), and its size and modification time are within the bounds. All
// bounds are inclusive, as in rclone.
package filter

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ferry-dev/ferry/internal/store"
)

// Spec is a filter as a job records it (package job embeds it in its
// spec, so a resumed job and every worker apply the same one). Ages are
// recorded as the absolute times they named when the job was created.
type Spec struct {
	Include []string `json:"include,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
	// MinSize and MaxSize bound the object size in bytes (inclusive); nil:
	// no bound.
	MinSize *int64 `json:"min_size,omitempty"`
	MaxSize *int64 `json:"max_size,omitempty"`
	// ModifiedAfter (from --max-age) and ModifiedBefore (from --min-age)
	// bound the modification time (inclusive); zero: no bound.
	ModifiedAfter  time.Time `json:"modified_after,omitzero"`
	ModifiedBefore time.Time `json:"modified_before,omitzero"`
	// FilesFrom, when not nil, selects only the keys it lists (an empty
	// list selects nothing).
	FilesFrom *KeyList `json:"files_from,omitempty"`
}

// KeyList is the list of keys of --files-from.
type KeyList struct {
	Keys []string `json:"keys"`
}

// Filter selects objects. The zero value (and nil) selects every object.
type Filter struct {
	include []*regexp.Regexp
	exclude []*regexp.Regexp

	minSize, maxSize int64
	hasMax           bool
	after, before    time.Time
	files            map[string]struct{} // nil: no --files-from
	sorted           []string            // the keys of files, sorted
}

// FromSpec compiles a filter spec.
func FromSpec(s Spec) (*Filter, error) {
	f, err := New(s.Include, s.Exclude)
	if err != nil {
		return nil, err
	}
	if s.MinSize != nil {
		if *s.MinSize < 0 {
			return nil, fmt.Errorf("--min-size %d: negative", *s.MinSize)
		}
		f.minSize = *s.MinSize
	}
	if s.MaxSize != nil {
		if *s.MaxSize < 0 {
			return nil, fmt.Errorf("--max-size %d: negative", *s.MaxSize)
		}
		f.maxSize, f.hasMax = *s.MaxSize, true
	}
	if f.hasMax && f.minSize > f.maxSize {
		return nil, fmt.Errorf("--min-size %d is more than --max-size %d: nothing would be selected", f.minSize, f.maxSize)
	}
	f.after, f.before = s.ModifiedAfter, s.ModifiedBefore
	if !f.after.IsZero() && !f.before.IsZero() && f.after.After(f.before) {
		return nil, fmt.Errorf("--max-age (modified after %s) and --min-age (modified before %s) exclude each other: nothing would be selected",
			f.after.UTC().Format(time.RFC3339), f.before.UTC().Format(time.RFC3339))
	}
	if s.FilesFrom != nil {
		f.files = make(map[string]struct{}, len(s.FilesFrom.Keys))
		for _, k := range s.FilesFrom.Keys {
			if err := CheckKey(k); err != nil {
				return nil, fmt.Errorf("--files-from: %w", err)
			}
			f.files[k] = struct{}{}
		}
		f.sorted = slices.Sorted(maps.Keys(f.files))
	}
	return f, nil
}

// MayMatchPrefix reports whether any key under prefix can be selected:
// false only when --files-from lists no key under it, so a lister need
// not list it at all.
func (f *Filter) MayMatchPrefix(prefix string) bool {
	if f == nil || f.files == nil {
		return true
	}
	i, _ := slices.BinarySearch(f.sorted, prefix)
	return i < len(f.sorted) && strings.HasPrefix(f.sorted[i], prefix)
}

// MatchObject reports whether the object o is selected: its key (see
// [Filter.Match]), its size and its modification time.
func (f *Filter) MatchObject(o store.Object) bool {
	if f == nil {
		return true
	}
	if o.Size < f.minSize || (f.hasMax && o.Size > f.maxSize) {
		return false
	}
	if !f.after.IsZero() && o.LastModified.Before(f.after) {
		return false
	}
	if !f.before.IsZero() && o.LastModified.After(f.before) {
		return false
	}
	return f.Match(o.Key)
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

// Match reports whether key is selected by the globs and --files-from
// (sizes and times are not looked at: see [Filter.MatchObject]).
func (f *Filter) Match(key string) bool {
	if f == nil {
		return true
	}
	if f.files != nil {
		if _, ok := f.files[key]; !ok {
			return false
		}
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

// Empty reports whether the filter selects every object.
func (f *Filter) Empty() bool {
	return f == nil || (len(f.include)+len(f.exclude) == 0 && f.files == nil &&
		f.minSize == 0 && !f.hasMax && f.after.IsZero() && f.before.IsZero())
}

// MaxKeyLen is the longest key a --files-from list may hold (S3's limit).
const MaxKeyLen = 1024

// CheckKey checks one key of a --files-from list: valid UTF-8, at most
// MaxKeyLen bytes, no NUL or other control character, no "." or ".."
// segment, not starting with "/".
func CheckKey(k string) error {
	switch {
	case k == "":
		return fmt.Errorf("empty key")
	case !utf8.ValidString(k):
		return fmt.Errorf("key %q is not valid UTF-8", k)
	case len(k) > MaxKeyLen:
		return fmt.Errorf("key %.40q... is %d bytes, more than %d", k, len(k), MaxKeyLen)
	case strings.HasPrefix(k, "/"):
		return fmt.Errorf("key %q starts with /", k)
	}
	for _, r := range k {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("key %q holds a control character", k)
		}
	}
	for seg := range strings.SplitSeq(k, "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("key %q has a %q segment: keys are relative to the source root and may not leave it", k, seg)
		}
	}
	return nil
}

// ReadKeys reads a --files-from list, rclone's format: one key per line,
// relative to the source root; leading and trailing white space is
// trimmed, blank lines and lines starting with "#" or ";" are ignored,
// and leading "/" characters are dropped. Every key must pass [CheckKey];
// the error names the first line that does not.
func ReadKeys(r io.Reader) ([]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var keys []string
	for line := 1; sc.Scan(); line++ {
		raw := sc.Bytes()
		if !utf8.Valid(raw) {
			return nil, fmt.Errorf("line %d: %q is not valid UTF-8", line, raw)
		}
		k := strings.TrimSpace(string(raw))
		if k == "" || k[0] == '#' || k[0] == ';' {
			continue
		}
		k = strings.TrimLeft(k, "/")
		if err := CheckKey(k); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	return keys, nil
}

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
