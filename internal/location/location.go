// Package location parses and validates the SRC and DST arguments of ferry
// commands: "s3://bucket[/prefix]", "remote:bucket[/prefix]" for a named
// remote of the configuration file, or a local path. It knows nothing about
// endpoints or credentials; those come from flags and the remote's
// configuration.
package location

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"unicode/utf8"
)

// Kind tells which store a location opens.
type Kind int

const (
	// Local is a directory on this machine.
	Local Kind = iota
	// S3 is a bucket (and optional prefix) on an S3-compatible endpoint.
	S3
)

// MaxKeyLen is S3's limit on the length of a key in bytes.
const MaxKeyLen = 1024

// Location is a parsed SRC or DST argument.
type Location struct {
	Kind Kind
	// Bucket and Prefix are set for S3. Prefix is "" or ends in "/": a
	// location names a "directory" of keys.
	Bucket string
	Prefix string
	// Path is the absolute, cleaned path of a Local location.
	Path string
	// Remote is the name of the configured remote of an S3 location written
	// "remote:bucket/prefix"; "" for "s3://".
	Remote string
}

// String renders the location as a user would type it.
func (l Location) String() string {
	if l.Kind == S3 {
		if l.Remote != "" {
			return l.Remote + ":" + l.Bucket + "/" + l.Prefix
		}
		return "s3://" + l.Bucket + "/" + l.Prefix
	}
	return l.Path
}

// Canonical renders the location without a remote name: "s3://bucket/prefix"
// or the absolute path. It parses back to the same bucket, prefix or path
// without any config file (job specs store it).
func (l Location) Canonical() string {
	if l.Kind == S3 {
		return "s3://" + l.Bucket + "/" + l.Prefix
	}
	return l.Path
}

var (
	schemeRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*)://`)
	remoteRE = regexp.MustCompile(`^([a-z][a-z0-9_-]*):`)
	// remoteLikeRE is what a user may have meant as a remote name.
	remoteLikeRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9_-]*):`)
)

// UndefinedRemoteError is the error for "name:rest" when no remote called
// name is defined: a typo or a missing configuration, never silently a
// local directory "./name:rest".
type UndefinedRemoteError struct {
	Arg  string
	Name string
}

func (e *UndefinedRemoteError) Error() string {
	return fmt.Sprintf("location %q: no remote named %q is defined (for a local path, write ./%s)", e.Arg, e.Name, e.Arg)
}

// Parse parses a location argument. Errors are one line naming the input and
// what is wrong with it.
func Parse(arg string) (Location, error) { return ParseWith(arg, nil) }

// ParseWith is [Parse] that also accepts "remote:bucket[/prefix]" when
// isRemote(remote) reports that the remote is defined (isRemote nil: none
// is). The name must match ^[a-z][a-z0-9_-]*$. An argument that starts like
// a remote ("name:", a letter then letters, digits, '-' or '_') but names
// none is an [*UndefinedRemoteError], not a local path: "minio:dst" with no
// remote "minio" is a mistake, like in rclone. Paths that do not start that
// way stay local ("./a:b", "/x/a:b", "2024:notes"), and so does a drive
// letter on Windows ("C:\data").
func ParseWith(arg string, isRemote func(name string) bool) (Location, error) {
	if arg == "" {
		return Location{}, fmt.Errorf("empty location: want s3://bucket[/prefix] or a local path")
	}
	if strings.ContainsRune(arg, 0) {
		return Location{}, fmt.Errorf("location %q: contains a NUL byte", arg)
	}
	if !utf8.ValidString(arg) {
		return Location{}, fmt.Errorf("location %q: not valid UTF-8", arg)
	}
	if r := remoteRE.FindStringSubmatch(arg); r != nil && isRemote != nil && isRemote(r[1]) {
		l, err := parseBucket(arg, arg[len(r[0]):], r[1]+":bucket[/prefix]")
		if err != nil {
			return Location{}, err
		}
		l.Remote = r[1]
		return l, nil
	}
	m := schemeRE.FindStringSubmatch(arg)
	if r := remoteLikeRE.FindStringSubmatch(arg); m == nil && r != nil && !(runtime.GOOS == "windows" && len(r[1]) == 1) {
		return Location{}, &UndefinedRemoteError{Arg: arg, Name: r[1]}
	}
	if m == nil {
		abs, err := filepath.Abs(arg)
		if err != nil {
			return Location{}, fmt.Errorf("location %q: %w", arg, err)
		}
		return Location{Kind: Local, Path: abs}, nil
	}
	scheme := strings.ToLower(m[1])
	if scheme != "s3" {
		return Location{}, fmt.Errorf("location %q: unknown scheme %q (want s3://bucket[/prefix] or a local path)", arg, m[1])
	}
	return parseBucket(arg, arg[len(m[0]):], "s3://bucket[/prefix]")
}

// parseBucket parses rest, the "bucket[/prefix]" part of arg; want is the
// syntax named in errors.
func parseBucket(arg, rest, want string) (Location, error) {
	bucket, prefix, _ := strings.Cut(rest, "/")
	if strings.Contains(bucket, "@") {
		return Location{}, fmt.Errorf("location %q: credentials are not accepted in a location; use --src-profile/--dst-profile, the AWS environment or ferry's secret store", redactUserinfo(arg))
	}
	if bucket == "" {
		return Location{}, fmt.Errorf("location %q: missing bucket name (want %s)", arg, want)
	}
	if err := ValidateBucket(bucket); err != nil {
		return Location{}, fmt.Errorf("location %q: %w", arg, err)
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	if len(prefix) > MaxKeyLen {
		return Location{}, fmt.Errorf("location %q: prefix is %d bytes, longer than the %d-byte key limit", arg, len(prefix), MaxKeyLen)
	}
	if strings.Contains(prefix, "//") {
		return Location{}, fmt.Errorf("location %q: prefix has an empty path segment (\"//\")", arg)
	}
	return Location{Kind: S3, Bucket: bucket, Prefix: prefix}, nil
}

func redactUserinfo(arg string) string {
	i, sep := strings.Index(arg, "://"), 3
	if i < 0 {
		i, sep = strings.Index(arg, ":"), 1
	}
	j := strings.LastIndex(arg, "@")
	if i < 0 || j < i {
		return arg
	}
	return arg[:i+sep] + "REDACTED" + arg[j:]
}

// ValidateBucket checks a bucket name against the S3 general purpose bucket
// naming rules.
func ValidateBucket(name string) error {
	n := len(name)
	if n < 3 || n > 63 {
		return fmt.Errorf("invalid bucket name %q: must be 3 to 63 characters long, has %d", name, n)
	}
	for i := 0; i < n; i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return fmt.Errorf("invalid bucket name %q: only lowercase letters, digits, dots and hyphens are allowed (found %q)", name, string(rune(c)))
		}
	}
	if !isAlnum(name[0]) || !isAlnum(name[n-1]) {
		return fmt.Errorf("invalid bucket name %q: must begin and end with a letter or digit", name)
	}
	if strings.Contains(name, "..") {
		return fmt.Errorf("invalid bucket name %q: must not contain two adjacent dots", name)
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return fmt.Errorf("invalid bucket name %q: must not be formatted as an IP address", name)
	}
	for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(name, p) {
			return fmt.Errorf("invalid bucket name %q: must not start with %q", name, p)
		}
	}
	for _, s := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
		if strings.HasSuffix(name, s) {
			return fmt.Errorf("invalid bucket name %q: must not end with %q", name, s)
		}
	}
	return nil
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// Overlaps reports whether a and b are the same location or one is inside
// the other, so that copying between them would read what it writes.
// sameService tells whether two S3 locations are on the same endpoint.
// Local paths are compared after resolving symlinks of their existing parts.
func Overlaps(a, b Location, sameService bool) bool {
	if a.Kind != b.Kind {
		return false
	}
	if a.Kind == S3 {
		if !sameService || a.Bucket != b.Bucket {
			return false
		}
		return strings.HasPrefix(a.Prefix, b.Prefix) || strings.HasPrefix(b.Prefix, a.Prefix)
	}
	pa, pb := resolve(a.Path), resolve(b.Path)
	return within(pa, pb) || within(pb, pa)
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	if p == dir {
		return true
	}
	if !strings.HasSuffix(dir, string(filepath.Separator)) {
		dir += string(filepath.Separator)
	}
	return strings.HasPrefix(p, dir)
}

// resolve follows symlinks in the longest existing ancestor of p.
func resolve(p string) string {
	rest := ""
	for cur := p; ; {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(r, rest)
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return p
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}
