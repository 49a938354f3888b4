package storetest

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ferry-dev/ferry/internal/store"
)

// Options describe what a store cannot do; the zero value expects
// everything.
type Options struct {
	// NoMetadata: the store may drop content headers, user metadata and
	// tags (a file system without extended attributes).
	NoMetadata bool
	// NoETag: the store reports no ETags (local files).
	NoETag bool
	// ModTime: the store sets LastModified from PutInput.ModTime (local).
	ModTime bool
	// SkipPagination skips the test with more than 1000 keys.
	SkipPagination bool
}

// Run runs the suite. newStore returns an empty store for one subtest; it
// registers its own cleanup with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) store.Store, opts Options) {
	s := &suite{newStore: newStore, opts: opts}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"ListOrder", s.testListOrder},
		{"ListPrefixStartAfter", s.testListPrefixStartAfter},
		{"ListRandom", s.testListRandom},
		{"Pagination", s.testPagination},
		{"DirectoryMarker", s.testDirectoryMarker},
		{"PutStatOpen", s.testPutStatOpen},
		{"Ranges", s.testRanges},
		{"Metadata", s.testMetadata},
		{"ChecksumRejected", s.testChecksumRejected},
		{"Missing", s.testMissing},
		{"Delete", s.testDelete},
		{"Overwrite", s.testOverwrite},
		{"Empty", s.testEmpty},
		{"Multipart", s.testMultipart},
		{"MultipartAbort", s.testMultipartAbort},
		{"MultipartBadPart", s.testMultipartBadPart},
		{"ListBreak", s.testListBreak},
		{"ListCanceled", s.testListCanceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.fn)
	}
}

type suite struct {
	newStore func(t *testing.T) store.Store
	opts     Options
}

// CRC32C returns the base64 CRC32C of data, as PutInput.ChecksumCRC32C
// wants it.
func CRC32C(data []byte) string {
	c := crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, c))
}

// Put writes data at key with a CRC32C, failing the test on an error.
func Put(t *testing.T, s store.Store, key string, data []byte) store.PutResult {
	t.Helper()
	return PutInput(t, s, store.PutInput{Key: key}, data)
}

// PutInput writes data with in (Size and ChecksumCRC32C filled in), failing
// the test on an error.
func PutInput(t *testing.T, s store.Store, in store.PutInput, data []byte) store.PutResult {
	t.Helper()
	in.Size = int64(len(data))
	if in.ChecksumCRC32C == "" {
		in.ChecksumCRC32C = CRC32C(data)
	}
	res, err := s.Put(t.Context(), in, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Put(%q): %v", in.Key, err)
	}
	return res
}

// putMany writes the keys with short contents, concurrently.
func putMany(t *testing.T, s store.Store, keys []string) {
	t.Helper()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	ch := make(chan string)
	for range 8 {
		wg.Go(func() {
			for k := range ch {
				data := []byte(k)
				if strings.HasSuffix(k, "/") {
					data = nil
				}
				_, err := s.Put(t.Context(), store.PutInput{Key: k, Size: int64(len(data))}, bytes.NewReader(data))
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("Put(%q): %w", k, err))
					mu.Unlock()
				}
			}
		})
	}
	for _, k := range keys {
		ch <- k
	}
	close(ch)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// List returns the keys a listing yields, failing the test on an error.
func List(t *testing.T, s store.Store, opts store.ListOptions) []string {
	t.Helper()
	var keys []string
	for o, err := range s.List(t.Context(), opts) {
		if err != nil {
			t.Fatalf("List(%+v): %v", opts, err)
		}
		keys = append(keys, o.Key)
	}
	return keys
}

// expect returns the keys a listing with opts must yield from keys.
func expect(keys []string, opts store.ListOptions) []string {
	var want []string
	for _, k := range keys {
		if strings.HasPrefix(k, opts.Prefix) && k > opts.StartAfter {
			want = append(want, k)
		}
	}
	slices.Sort(want)
	return want
}

func checkList(t *testing.T, s store.Store, keys []string, opts store.ListOptions) {
	t.Helper()
	got := List(t, s, opts)
	if want := expect(keys, opts); !slices.Equal(got, want) {
		t.Errorf("List(prefix %q, start after %q):\n got %q\nwant %q", opts.Prefix, opts.StartAfter, got, want)
	}
}

// longKey is a 1024-byte key of path segments of at most 200 bytes.
func longKey() string {
	var b strings.Builder
	for i := 0; b.Len() < 1024; i++ {
		if i > 0 {
			b.WriteByte('/')
		}
		n := min(200, 1024-b.Len())
		b.WriteString(strings.Repeat(string(rune('a'+i)), n))
	}
	return b.String()
}

// trickyKeys is a set of keys whose byte order differs from a sorted walk of
// directories, with characters that need escaping in URLs. No key is both an
// object and a "directory" of another key, so a file system holds them all.
var trickyKeys = []string{
	"a-b", "a.b", "a/b-c", "a/b.c", "a/b/c", "a/b0", "a0", "ab",
	"d-/x", "d./x", "d/x", "d0/x", "d-x", "d.x",
	"é", "e\u0301", "e", "f", "日本/語.txt", "日本-語", "日本0",
	"with space", "with space-/inside it",
	"plus+sign", "percent%20", "hash#tag", "question?mark", "amp&and", "equals=sign",
	"tab\there", "quote'\"", "colon:semi;", "tilde~", "brackets[]{}",
	"Z-upper", "z-lower",
	longKey(),
}

func (s *suite) testListOrder(t *testing.T) {
	st := s.newStore(t)
	putMany(t, st, trickyKeys)
	checkList(t, st, trickyKeys, store.ListOptions{})
	got := make(map[string]store.Object)
	for o, err := range st.List(t.Context(), store.ListOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		got[o.Key] = o
	}
	for _, k := range trickyKeys {
		if o := got[k]; o.Size != int64(len(k)) || o.LastModified.IsZero() {
			t.Errorf("listed %q with size %d, modified %v; want size %d and a time", k, o.Size, o.LastModified, len(k))
		}
	}
}

func (s *suite) testListPrefixStartAfter(t *testing.T) {
	st := s.newStore(t)
	keys := []string{"p", "ph", "phone", "photos-x", "photos.y", "photos/a", "photos/b/c", "photos/b/d", "photos0", "pi", "q"}
	putMany(t, st, keys)
	tests := []struct {
		name               string
		prefix, startAfter string
	}{
		{"all", "", ""},
		{"prefix mid-name", "ph", ""},
		{"prefix names a directory", "photos", ""},
		{"prefix ends in slash", "photos/", ""},
		{"prefix in a sub-directory", "photos/b", ""},
		{"prefix full key", "photos/a", ""},
		{"prefix nothing", "nothing", ""},
		{"prefix beyond a file", "phone/", ""},
		{"start after a key", "", "phone"},
		{"start after a directory", "", "photos/"},
		{"start after a directory name", "", "photos"},
		{"start after a key in a directory", "", "photos/a"},
		{"start after inside a directory", "", "photos/az"},
		{"start after the last key of a directory", "", "photos/b/d"},
		{"start after all", "", "z"},
		{"start after before all", "", "0"},
		{"prefix and start after", "photos/", "photos/b/c"},
		{"start after before the prefix", "photos/", "a"},
		{"start after beyond the prefix", "photos/", "q"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkList(t, st, keys, store.ListOptions{Prefix: tt.prefix, StartAfter: tt.startAfter})
		})
	}
}

// randomKeys returns n random keys over a small alphabet, none of which is
// the "directory" of another (so file systems can hold them all).
func randomKeys(r *rand.Rand, n int) []string {
	alphabet := []string{"a", "b", "-", ".", "/", "é", "0"}
	var keys []string
	seen := map[string]bool{}
	dirs := map[string]bool{}
	for len(keys) < n {
		var b strings.Builder
		for range 1 + r.IntN(8) {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		k := b.String()
		if !validPathKey(k) || seen[k] || dirs[k] {
			continue
		}
		segs := strings.Split(k, "/")
		ok := true
		for i := 1; i < len(segs); i++ {
			if seen[strings.Join(segs[:i], "/")] {
				ok = false
			}
		}
		if !ok {
			continue
		}
		seen[k] = true
		for i := 1; i < len(segs); i++ {
			dirs[strings.Join(segs[:i], "/")] = true
		}
		keys = append(keys, k)
	}
	return keys
}

// validPathKey reports whether k is a file path a local store accepts.
func validPathKey(k string) bool {
	for seg := range strings.SplitSeq(k, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

func (s *suite) testListRandom(t *testing.T) {
	st := s.newStore(t)
	r := rand.New(rand.NewPCG(1, 2))
	keys := randomKeys(r, 150)
	putMany(t, st, keys)
	checkList(t, st, keys, store.ListOptions{})
	probes := append(randomKeys(r, 40), "", "/", "a/", "é/", "a-", "a.")
	for i, p := range probes {
		opts := store.ListOptions{StartAfter: p}
		if i%2 == 1 {
			opts = store.ListOptions{Prefix: p}
		}
		if i%3 == 2 {
			cut := len(p) / 2
			for cut > 0 && !utf8.RuneStart(p[cut]) {
				cut--
			}
			opts = store.ListOptions{Prefix: p[:cut], StartAfter: p}
		}
		checkList(t, st, keys, opts)
	}
}

func (s *suite) testPagination(t *testing.T) {
	if s.opts.SkipPagination {
		t.Skip("Options.SkipPagination")
	}
	st := s.newStore(t)
	var keys []string
	for i := range 1105 {
		keys = append(keys, fmt.Sprintf("d%d/k%04d", i%3, i))
	}
	putMany(t, st, keys)
	checkList(t, st, keys, store.ListOptions{})
	checkList(t, st, keys, store.ListOptions{Prefix: "d1/"})
	checkList(t, st, keys, store.ListOptions{StartAfter: "d0/k0999"})
	checkList(t, st, keys, store.ListOptions{Prefix: "d2/k0", StartAfter: "d2/k0500"})
}

func (s *suite) testDirectoryMarker(t *testing.T) {
	st := s.newStore(t)
	res := PutInput(t, st, store.PutInput{Key: "photos/"}, nil)
	if !s.opts.NoETag && res.ETag != md5hex(nil) {
		t.Errorf("Put marker: ETag %q, want %q", res.ETag, md5hex(nil))
	}
	keys := []string{"photos/"}
	for _, opts := range []store.ListOptions{{}, {Prefix: "photos/"}, {Prefix: "photos"}, {Prefix: "ph"}, {StartAfter: "photos"}, {StartAfter: "photos/"}, {Prefix: "photos/a"}} {
		checkList(t, st, keys, opts)
	}
	a, err := st.Stat(t.Context(), "photos/")
	if err != nil {
		t.Fatalf("Stat marker: %v", err)
	}
	if a.Key != "photos/" || a.Size != 0 {
		t.Errorf("Stat marker: key %q size %d, want photos/ and 0", a.Key, a.Size)
	}
	if _, err := st.Stat(t.Context(), "photos"); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("Stat(photos) = %v, want ErrNotExist", err)
	}
	if got := read(t, st, "photos/", 0, -1); len(got) != 0 {
		t.Errorf("Open marker: %d bytes", len(got))
	}
	PutInput(t, st, store.PutInput{Key: "photos/sub/"}, nil)
	PutInput(t, st, store.PutInput{Key: "photos-x"}, []byte("x"))
	// A store of files cannot tell "photos/" from a directory with
	// objects: only the empty marker is required to be listed.
	got := List(t, st, store.ListOptions{})
	if !slices.Contains(got, "photos/sub/") || !slices.Contains(got, "photos-x") || !slices.IsSorted(got) {
		t.Errorf("List = %q, want sorted with photos/sub/ and photos-x", got)
	}
	if err := st.Delete(t.Context(), "photos/sub/"); err != nil {
		t.Fatalf("Delete marker: %v", err)
	}
	if _, err := st.Stat(t.Context(), "photos/sub/"); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("Stat of deleted marker = %v, want ErrNotExist", err)
	}
}

func md5hex(data []byte) string {
	sum := md5.Sum(data)
	return hex.EncodeToString(sum[:])
}

// randomData returns n pseudo-random bytes.
func randomData(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// read reads key from offset, failing the test on an error.
func read(t *testing.T, st store.Store, key string, offset, length int64) []byte {
	t.Helper()
	rc, _, err := st.Open(t.Context(), key, offset, length)
	if err != nil {
		t.Fatalf("Open(%q, %d, %d): %v", key, offset, length, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return data
}

func (s *suite) testPutStatOpen(t *testing.T) {
	st := s.newStore(t)
	data := randomData(1, 10000)
	start := time.Now()
	in := store.PutInput{Key: "dir/sub/file.bin"}
	if s.opts.ModTime {
		in.ModTime = time.Date(2020, 2, 3, 4, 5, 6, 0, time.UTC)
	}
	res := PutInput(t, st, in, data)
	if res.ChecksumCRC32C != "" && res.ChecksumCRC32C != CRC32C(data) {
		t.Errorf("Put: CRC32C %q, want %q", res.ChecksumCRC32C, CRC32C(data))
	}
	if !s.opts.NoETag && res.ETag != md5hex(data) {
		t.Errorf("Put: ETag %q, want %q", res.ETag, md5hex(data))
	}
	a, err := st.Stat(t.Context(), in.Key)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if a.Key != in.Key || a.Size != int64(len(data)) || a.Metadata == nil {
		t.Errorf("Stat = key %q size %d metadata %v, want %q, %d, non-nil", a.Key, a.Size, a.Metadata, in.Key, len(data))
	}
	if a.ETag != res.ETag {
		t.Errorf("Stat: ETag %q, Put said %q", a.ETag, res.ETag)
	}
	if a.ChecksumCRC32C != "" && a.ChecksumCRC32C != CRC32C(data) {
		t.Errorf("Stat: CRC32C %q, want %q", a.ChecksumCRC32C, CRC32C(data))
	}
	switch {
	case s.opts.ModTime:
		if !a.LastModified.Equal(in.ModTime) {
			t.Errorf("Stat: LastModified %v, want ModTime %v", a.LastModified, in.ModTime)
		}
	case a.LastModified.Before(start.Add(-time.Hour)) || a.LastModified.After(time.Now().Add(time.Hour)):
		t.Errorf("Stat: LastModified %v, want about %v", a.LastModified, start)
	}
	objs := 0
	for o, err := range st.List(t.Context(), store.ListOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		objs++
		if o.Key != a.Key || o.Size != a.Size || o.ETag != a.ETag || !o.LastModified.Equal(a.LastModified) {
			t.Errorf("List: %+v, Stat: %+v", o, a.Object)
		}
	}
	if objs != 1 {
		t.Errorf("List: %d objects, want 1", objs)
	}
	rc, oa, err := st.Open(t.Context(), in.Key, 0, -1)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("Open: read %d bytes (err %v), want the %d written", len(got), err, len(data))
	}
	if oa.Size != a.Size || oa.ETag != a.ETag || oa.Key != a.Key {
		t.Errorf("Open attrs %+v, Stat %+v", oa.Object, a.Object)
	}
}

func (s *suite) testRanges(t *testing.T) {
	st := s.newStore(t)
	data := randomData(2, 4096)
	Put(t, st, "r", data)
	n := int64(len(data))
	tests := []struct {
		name           string
		offset, length int64
		want           []byte
	}{
		{"whole", 0, -1, data},
		{"whole by length", 0, n, data},
		{"first byte", 0, 1, data[:1]},
		{"middle", 100, 50, data[100:150]},
		{"last byte", n - 1, 1, data[n-1:]},
		{"to the end", 1000, -1, data[1000:]},
		{"length beyond the end", 4000, 1000, data[4000:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, a, err := st.Open(t.Context(), "r", tt.offset, tt.length)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("read %d bytes, want %d (data differs: %v)", len(got), len(tt.want), len(got) == len(tt.want))
			}
			if a.Size != n {
				t.Errorf("attrs size %d, want the whole object's %d", a.Size, n)
			}
		})
	}
}

// fullInput is a PutInput with every header, metadata and tags.
func fullInput(key string) store.PutInput {
	return store.PutInput{
		Key:                key,
		ContentType:        "text/plain; charset=utf-8",
		ContentEncoding:    "x-ferry-test",
		ContentDisposition: `attachment; filename="a b.txt"`,
		ContentLanguage:    "en-GB",
		CacheControl:       "max-age=60",
		Expires:            "Wed, 21 Oct 2037 07:28:00 GMT",
		Metadata:           map[string]string{"color": "blue", "x-y": "z z"},
		Tags:               map[string]string{"env": "test", "team": "a b"},
	}
}

// checkAttrs compares the headers, metadata and tag count of a with in.
func checkAttrs(t *testing.T, what string, a store.Attrs, in store.PutInput) {
	t.Helper()
	type headers struct{ Type, Encoding, Disposition, Language, Cache, Expires string }
	got := headers{a.ContentType, a.ContentEncoding, a.ContentDisposition, a.ContentLanguage, a.CacheControl, a.Expires}
	want := headers{in.ContentType, in.ContentEncoding, in.ContentDisposition, in.ContentLanguage, in.CacheControl, in.Expires}
	if got != want {
		t.Errorf("%s: headers %+v, want %+v", what, got, want)
	}
	wantMeta := in.Metadata
	if wantMeta == nil {
		wantMeta = map[string]string{}
	}
	if !maps.Equal(a.Metadata, wantMeta) {
		t.Errorf("%s: metadata %v, want %v", what, a.Metadata, wantMeta)
	}
	if a.TagCount != len(in.Tags) {
		t.Errorf("%s: tag count %d, want %d", what, a.TagCount, len(in.Tags))
	}
}

func (s *suite) testMetadata(t *testing.T) {
	if s.opts.NoMetadata {
		t.Skip("Options.NoMetadata")
	}
	st := s.newStore(t)
	in := fullInput("meta/file.txt")
	PutInput(t, st, in, []byte("hello"))
	a, err := st.Stat(t.Context(), in.Key)
	if err != nil {
		t.Fatal(err)
	}
	checkAttrs(t, "Stat", a, in)
	rc, oa, err := st.Open(t.Context(), in.Key, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	checkAttrs(t, "Open", oa, in)
	tags, err := st.Tags(t.Context(), in.Key)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(tags, in.Tags) {
		t.Errorf("Tags = %v, want %v", tags, in.Tags)
	}

	// Nothing set: empty, non-nil.
	Put(t, st, "meta/plain", []byte("x"))
	a, err = st.Stat(t.Context(), "meta/plain")
	if err != nil {
		t.Fatal(err)
	}
	if a.Metadata == nil || len(a.Metadata) != 0 || a.TagCount != 0 {
		t.Errorf("Stat of plain object: metadata %v, tag count %d; want empty, 0", a.Metadata, a.TagCount)
	}
	tags, err = st.Tags(t.Context(), "meta/plain")
	if err != nil || tags == nil || len(tags) != 0 {
		t.Errorf("Tags of plain object = %v, %v; want empty non-nil map", tags, err)
	}
}

func (s *suite) testChecksumRejected(t *testing.T) {
	data := []byte("the right bytes")
	wrongMD5 := md5.Sum([]byte("other bytes"))
	tests := []struct {
		name string
		in   store.PutInput
	}{
		{"CRC32C", store.PutInput{ChecksumCRC32C: CRC32C([]byte("other bytes"))}},
		{"ContentMD5", store.PutInput{ContentMD5: base64.StdEncoding.EncodeToString(wrongMD5[:])}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := s.newStore(t)
			old := []byte("old content")
			Put(t, st, "exists", old)
			for _, key := range []string{"new", "exists", "dir/new"} {
				in := tt.in
				in.Key, in.Size = key, int64(len(data))
				_, err := st.Put(t.Context(), in, bytes.NewReader(data))
				if !errors.Is(err, store.ErrChecksum) {
					t.Errorf("Put(%q) with a wrong checksum = %v, want ErrChecksum", key, err)
				}
			}
			if got := List(t, st, store.ListOptions{}); !slices.Equal(got, []string{"exists"}) {
				t.Errorf("List after rejected puts = %q, want [exists]", got)
			}
			if _, err := st.Stat(t.Context(), "new"); !errors.Is(err, store.ErrNotExist) {
				t.Errorf("Stat(new) = %v, want ErrNotExist", err)
			}
			if got := read(t, st, "exists", 0, -1); !bytes.Equal(got, old) {
				t.Errorf("rejected overwrite changed the object to %q", got)
			}
		})
	}
}

func (s *suite) testMissing(t *testing.T) {
	st := s.newStore(t)
	Put(t, st, "present/file", []byte("x"))
	for _, key := range []string{"missing", "present/missing", "missing/deeper/key"} {
		if _, err := st.Stat(t.Context(), key); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("Stat(%q) = %v, want ErrNotExist", key, err)
		}
		if rc, _, err := st.Open(t.Context(), key, 0, -1); !errors.Is(err, store.ErrNotExist) {
			if rc != nil {
				rc.Close()
			}
			t.Errorf("Open(%q) = %v, want ErrNotExist", key, err)
		}
		if _, err := st.Tags(t.Context(), key); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("Tags(%q) = %v, want ErrNotExist", key, err)
		}
	}
	if _, err := st.Stat(t.Context(), "present"); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("Stat of a key's directory = %v, want ErrNotExist", err)
	}
}

func (s *suite) testDelete(t *testing.T) {
	st := s.newStore(t)
	if err := st.Delete(t.Context(), "never/was"); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
	Put(t, st, "a/b", []byte("x"))
	Put(t, st, "a/c", []byte("y"))
	for i := range 2 {
		if err := st.Delete(t.Context(), "a/b"); err != nil {
			t.Errorf("Delete #%d: %v", i+1, err)
		}
	}
	if _, err := st.Stat(t.Context(), "a/b"); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("Stat after Delete = %v, want ErrNotExist", err)
	}
	if got := List(t, st, store.ListOptions{}); !slices.Equal(got, []string{"a/c"}) {
		t.Errorf("List after Delete = %q, want [a/c]", got)
	}
}

func (s *suite) testOverwrite(t *testing.T) {
	st := s.newStore(t)
	in := fullInput("k")
	PutInput(t, st, in, randomData(3, 5000))
	data := []byte("shorter")
	PutInput(t, st, store.PutInput{Key: "k", ContentType: "application/x-new"}, data)
	if got := read(t, st, "k", 0, -1); !bytes.Equal(got, data) {
		t.Errorf("after overwrite read %q, want %q", got, data)
	}
	a, err := st.Stat(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	if a.Size != int64(len(data)) {
		t.Errorf("Stat size %d, want %d", a.Size, len(data))
	}
	if !s.opts.NoMetadata {
		checkAttrs(t, "Stat after overwrite", a, store.PutInput{ContentType: "application/x-new"})
	}
	if got := List(t, st, store.ListOptions{}); !slices.Equal(got, []string{"k"}) {
		t.Errorf("List = %q, want [k]", got)
	}
}

func (s *suite) testEmpty(t *testing.T) {
	st := s.newStore(t)
	res := Put(t, st, "empty", nil)
	if !s.opts.NoETag && res.ETag != md5hex(nil) {
		t.Errorf("ETag %q, want %q", res.ETag, md5hex(nil))
	}
	a, err := st.Stat(t.Context(), "empty")
	if err != nil {
		t.Fatal(err)
	}
	if a.Size != 0 {
		t.Errorf("size %d", a.Size)
	}
	if got := read(t, st, "empty", 0, -1); len(got) != 0 {
		t.Errorf("read %d bytes", len(got))
	}
	if got := List(t, st, store.ListOptions{}); !slices.Equal(got, []string{"empty"}) {
		t.Errorf("List = %q", got)
	}
}

// multipart returns st as a store.Multipart or skips the test.
func multipart(t *testing.T, st store.Store) store.Multipart {
	t.Helper()
	mp, ok := st.(store.Multipart)
	if !ok {
		t.Skipf("%T does not implement store.Multipart", st)
	}
	return mp
}

// partSize is the smallest part size S3 accepts.
const partSize = 5 << 20

func (s *suite) testMultipart(t *testing.T) {
	st := s.newStore(t)
	mp := multipart(t, st)
	ctx := t.Context()
	data := randomData(4, 2*partSize+1234)
	in := fullInput("multi/part.bin")
	if s.opts.NoMetadata {
		in = store.PutInput{Key: in.Key}
	}
	in.Size, in.PartSize = int64(len(data)), partSize
	id, err := mp.CreateMultipart(ctx, in)
	if err != nil {
		t.Fatalf("CreateMultipart: %v", err)
	}
	parts := make([]store.Part, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for _, n := range []int32{3, 1, 2} {
		start := int64(n-1) * partSize
		b := data[start:min(start+partSize, int64(len(data)))]
		wg.Go(func() {
			parts[n-1], errs[n-1] = mp.UploadPart(ctx, in.Key, id, n, bytes.NewReader(b), int64(len(b)), CRC32C(b))
		})
		if n == 3 {
			wg.Wait() // the last part first
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		mp.AbortMultipart(ctx, in.Key, id)
		t.Fatalf("UploadPart: %v", err)
	}
	for i, p := range parts {
		if p.Number != int32(i+1) {
			t.Errorf("part %d has number %d", i+1, p.Number)
		}
	}
	if _, err := st.Stat(ctx, in.Key); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("Stat before CompleteMultipart = %v, want ErrNotExist", err)
	}
	if got := List(t, st, store.ListOptions{}); len(got) != 0 {
		t.Errorf("List before CompleteMultipart = %q, want nothing", got)
	}
	res, err := mp.CompleteMultipart(ctx, in.Key, id, parts)
	if err != nil {
		mp.AbortMultipart(ctx, in.Key, id)
		t.Fatalf("CompleteMultipart: %v", err)
	}
	if !s.opts.NoETag && !strings.HasSuffix(res.ETag, "-3") {
		t.Errorf("ETag %q, want one ending in -3", res.ETag)
	}
	if got := read(t, st, in.Key, 0, -1); !bytes.Equal(got, data) {
		t.Errorf("read %d bytes, differing from the %d uploaded", len(got), len(data))
	}
	a, err := st.Stat(ctx, in.Key)
	if err != nil {
		t.Fatal(err)
	}
	if a.Size != int64(len(data)) || a.ETag != res.ETag {
		t.Errorf("Stat: size %d ETag %q, want %d %q", a.Size, a.ETag, len(data), res.ETag)
	}
	if !s.opts.NoMetadata {
		checkAttrs(t, "Stat", a, in)
	}
	if got := List(t, st, store.ListOptions{}); !slices.Equal(got, []string{in.Key}) {
		t.Errorf("List = %q, want [%s]", got, in.Key)
	}
}

func (s *suite) testMultipartAbort(t *testing.T) {
	st := s.newStore(t)
	mp := multipart(t, st)
	ctx := t.Context()
	in := store.PutInput{Key: "aborted/obj", Size: partSize + 10, PartSize: partSize}
	id, err := mp.CreateMultipart(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	b := randomData(5, partSize)
	if _, err := mp.UploadPart(ctx, in.Key, id, 1, bytes.NewReader(b), int64(len(b)), CRC32C(b)); err != nil {
		t.Fatal(err)
	}
	if err := mp.AbortMultipart(ctx, in.Key, id); err != nil {
		t.Fatalf("AbortMultipart: %v", err)
	}
	if _, err := st.Stat(ctx, in.Key); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("Stat after abort = %v, want ErrNotExist", err)
	}
	if got := List(t, st, store.ListOptions{}); len(got) != 0 {
		t.Errorf("List after abort = %q, want nothing", got)
	}
}

func (s *suite) testMultipartBadPart(t *testing.T) {
	st := s.newStore(t)
	mp := multipart(t, st)
	ctx := t.Context()
	in := store.PutInput{Key: "bad", Size: 100, PartSize: partSize}
	id, err := mp.CreateMultipart(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mp.AbortMultipart(context.Background(), in.Key, id) })
	b := randomData(6, 100)
	_, err = mp.UploadPart(ctx, in.Key, id, 1, bytes.NewReader(b), int64(len(b)), CRC32C([]byte("other")))
	if !errors.Is(err, store.ErrChecksum) {
		t.Errorf("UploadPart with a wrong CRC32C = %v, want ErrChecksum", err)
	}
	// The upload goes on: the part can be sent again.
	p, err := mp.UploadPart(ctx, in.Key, id, 1, bytes.NewReader(b), int64(len(b)), CRC32C(b))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mp.CompleteMultipart(ctx, in.Key, id, []store.Part{p}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, st, in.Key, 0, -1); !bytes.Equal(got, b) {
		t.Errorf("read %q, want the re-sent part", got)
	}
}

func (s *suite) testListBreak(t *testing.T) {
	st := s.newStore(t)
	keys := []string{"a", "b", "c/d", "c/e", "f"}
	putMany(t, st, keys)
	List(t, st, store.ListOptions{}) // let a client set up its connections
	before := runtime.NumGoroutine()
	for _, stopAt := range []int{1, 2, 3} {
		n := 0
		for _, err := range st.List(t.Context(), store.ListOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			n++
			if n == stopAt {
				break
			}
		}
		if n != stopAt {
			t.Errorf("stopped at %d, want %d", n, stopAt)
		}
	}
	// Goroutines may take a moment to exit.
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Errorf("%d goroutines after stopped listings, %d before", after, before)
	}
}

func (s *suite) testListCanceled(t *testing.T) {
	st := s.newStore(t)
	var keys []string
	for i := range 1050 {
		keys = append(keys, fmt.Sprintf("k/%04d", i))
	}
	putMany(t, st, keys)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	n := 0
	var last error
	for _, err := range st.List(ctx, store.ListOptions{}) {
		n++
		last = err
	}
	if n != 1 || !errors.Is(last, context.Canceled) {
		t.Errorf("List with a canceled context: %d pairs, last error %v; want one, context.Canceled", n, last)
	}

	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	n, last = 0, nil
	for _, err := range st.List(ctx, store.ListOptions{}) {
		if err != nil {
			last = err
			continue
		}
		n++
		if n == 1 {
			cancel()
		}
	}
	if n >= len(keys) || !errors.Is(last, context.Canceled) {
		t.Errorf("List canceled after the first key: %d keys, last error %v; want fewer than %d and context.Canceled", n, last, len(keys))
	}
}
