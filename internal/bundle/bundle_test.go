package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/klauspost/compress/zstd"
)

type testObj struct {
	obj  Object
	body []byte
}

func sampleObjects() []testObj {
	return []testObj{
		{Object{Key: "a.json", ETag: "etag-a", Created: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), ContentType: "application/json",
			CacheControl: "max-age=60", Metadata: map[string]string{"owner": "ops"}, Tags: map[string]string{"team": "x"}}, []byte(strings.Repeat(`{"level":"info","msg":"hello"}`, 50))},
		{Object{Key: "dir/"}, nil},
		{Object{Key: "empty"}, []byte{}},
		{Object{Key: "with space/ünïcödé 日本.txt", ContentEncoding: "gzip"}, []byte("unicode body")},
	}
}

func build(t *testing.T, objs []testObj, level int) ([]byte, Manifest) {
	t.Helper()
	b, err := NewBuilder(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, o := range objs {
		o.obj.Size = int64(len(o.body))
		if err := b.Add(o.obj, bytes.NewReader(o.body)); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	m, err := b.WriteTo(context.Background(), &buf, WriteOptions{ID: "b1", Job: "j1", Created: time.Now(), Level: level})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), m
}

func TestRoundTrip(t *testing.T) {
	for _, level := range []int{LevelStore, LevelFastest, LevelDefault, LevelBetter, LevelBest} {
		objs := sampleObjects()
		raw, m := build(t, objs, level)
		if level == 0 && m.Compression != CompressionNone || level > 0 && m.Compression != CompressionZstd {
			t.Fatalf("level %d: compression %q", level, m.Compression)
		}
		rd, err := NewReader(bytes.NewReader(raw), ReadOptions{})
		if err != nil {
			t.Fatalf("level %d: %v", level, err)
		}
		if got := rd.Manifest(); got.ID != "b1" || got.Job != "j1" || len(got.Objects) != len(objs) || got.Level != level {
			t.Fatalf("manifest %+v", got)
		}
		for i := 0; ; i++ {
			o, body, err := rd.Next()
			if errors.Is(err, io.EOF) {
				if i != len(objs) {
					t.Fatalf("EOF after %d objects", i)
				}
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(body)
			if err != nil {
				t.Fatal(err)
			}
			want := objs[i]
			if o.Key != want.obj.Key || !bytes.Equal(b, want.body) || o.ContentType != want.obj.ContentType ||
				o.ContentEncoding != want.obj.ContentEncoding || o.CacheControl != want.obj.CacheControl || o.ETag != want.obj.ETag ||
				!o.Created.Equal(want.obj.Created) || len(o.Metadata) != len(want.obj.Metadata) || len(o.Tags) != len(want.obj.Tags) {
				t.Fatalf("object %d: %+v %q, want %+v", i, o, b, want.obj)
			}
			sum := sha256.Sum256(want.body)
			if o.SHA256 != hex.EncodeToString(sum[:]) {
				t.Fatalf("%s: sha256 %s", o.Key, o.SHA256)
			}
		}
		rd.Close()
		if _, err := Verify(bytes.NewReader(raw), ReadOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestNextDrainsUnread: objects the caller does not read are still checked.
func TestNextDrainsUnread(t *testing.T) {
	raw, _ := build(t, sampleObjects(), LevelFastest)
	rd, err := NewReader(bytes.NewReader(raw), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	n := 0
	for {
		_, _, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 4 {
		t.Fatalf("%d objects", n)
	}
}

func TestBuilderRefusesUnsafeKeys(t *testing.T) {
	b, err := NewBuilder(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, k := range []string{"", "../x", "a/../b", "/abs", "a/./b", "a//b", "nul\x00", "back\\slash", "ctl\n"} {
		if err := b.Add(Object{Key: k, Size: 1}, strings.NewReader("x")); err == nil {
			t.Errorf("key %q accepted", k)
		}
	}
	if err := b.Add(Object{Key: "short", Size: 5}, strings.NewReader("abc")); err == nil {
		t.Error("short body accepted")
	}
	if err := b.Add(Object{Key: "long", Size: 1}, strings.NewReader("abc")); err == nil {
		t.Error("long body accepted")
	}
	if err := b.Add(Object{Key: "ok", Size: 3}, strings.NewReader("abc")); err != nil {
		t.Fatal(err)
	}
	if err := b.Add(Object{Key: "ok", Size: 3}, strings.NewReader("abc")); err == nil {
		t.Error("duplicate accepted")
	}
	if b.Len() != 1 || b.DataBytes() != 3 {
		t.Fatalf("len %d bytes %d", b.Len(), b.DataBytes())
	}
}

// entry is one raw tar entry of a hand-made archive.
type entry struct {
	name string
	typ  byte
	link string
	body []byte
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// craft writes a tar archive from a manifest and raw entries, compressed
// with zstd when z.
func craft(t *testing.T, m Manifest, entries []entry, z bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.Writer = &buf
	var enc *zstd.Encoder
	if z {
		var err error
		enc, err = zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w = enc
	}
	tw := tar.NewWriter(w)
	mb, err := EncodeManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	all := append([]entry{{name: ManifestName, typ: tar.TypeReg, body: mb}}, entries...)
	for _, e := range all {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Size: int64(len(e.body)), Mode: 0o644, Format: tar.FormatPAX}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write(e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if enc != nil {
		if err := enc.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func goodManifest(keys []string, bodies [][]byte, z bool) Manifest {
	m := Manifest{Format: Format, Version: Version, ID: "x", Compression: CompressionNone}
	if z {
		m.Compression, m.Level = CompressionZstd, 2
	}
	var all []byte
	for i, k := range keys {
		m.Objects = append(m.Objects, Object{Key: k, Size: int64(len(bodies[i])), SHA256: sum(bodies[i])})
		m.DataBytes += int64(len(bodies[i]))
		all = append(all, bodies[i]...)
	}
	m.DataSHA256 = sum(all)
	return m
}

// TestTampered: every kind of tampering is refused with ErrCorrupt, by
// Verify, before any object is handed out where the manifest is at fault.
func TestTampered(t *testing.T) {
	a, b := []byte("alpha"), []byte("bravo")
	reg := func(i int, _ string, body []byte) entry {
		return entry{name: EntryName(i), typ: tar.TypeReg, body: body}
	}
	cases := []struct {
		name    string
		build   func(z bool) []byte
		wantMsg string
	}{
		{"dotdot key in manifest", func(z bool) []byte {
			m := goodManifest([]string{"../evil", "b"}, [][]byte{a, b}, z)
			return craft(t, m, []entry{reg(0, "../evil", a), reg(1, "b", b)}, z)
		}, `".." in path`},
		{"nested dotdot key", func(z bool) []byte {
			m := goodManifest([]string{"x/../../evil"}, [][]byte{a}, z)
			return craft(t, m, []entry{reg(0, "x/../../evil", a)}, z)
		}, `".." in path`},
		{"absolute key", func(z bool) []byte {
			m := goodManifest([]string{"/etc/passwd"}, [][]byte{a}, z)
			return craft(t, m, []entry{reg(0, "/etc/passwd", a)}, z)
		}, "absolute"},
		{"entry named by a key", func(z bool) []byte {
			m := goodManifest([]string{"a"}, [][]byte{a}, z)
			return craft(t, m, []entry{{name: ObjectsPrefix + "a", typ: tar.TypeReg, body: a}}, z)
		}, "not an object entry"},
		{"entry name with dotdot", func(z bool) []byte {
			m := goodManifest([]string{"a"}, [][]byte{a}, z)
			return craft(t, m, []entry{{name: ObjectsPrefix + "../a", typ: tar.TypeReg, body: a}}, z)
		}, "not an object entry"},
		{"absolute entry name", func(z bool) []byte {
			m := goodManifest([]string{"a"}, [][]byte{a}, z)
			return craft(t, m, []entry{{name: "/tmp/a", typ: tar.TypeReg, body: a}}, z)
		}, "outside"},
		{"entries out of order", func(z bool) []byte {
			m := goodManifest([]string{"a", "b"}, [][]byte{a, b}, z)
			e0, e1 := reg(1, "a", a), reg(0, "b", b)
			return craft(t, m, []entry{e0, e1}, z)
		}, "was due"},
		{"symlink entry", func(z bool) []byte {
			m := goodManifest([]string{"a"}, [][]byte{nil}, z)
			return craft(t, m, []entry{{name: EntryName(0), typ: tar.TypeSymlink, link: "/etc/passwd"}}, z)
		}, "not a regular file"},
		{"hard link entry", func(z bool) []byte {
			m := goodManifest([]string{"a"}, [][]byte{nil}, z)
			return craft(t, m, []entry{{name: EntryName(0), typ: tar.TypeLink, link: ManifestName}}, z)
		}, "not a regular file"},
		{"directory entry", func(z bool) []byte {
			m := goodManifest([]string{"d/"}, [][]byte{nil}, z)
			return craft(t, m, []entry{{name: EntryName(0) + "/", typ: tar.TypeDir}}, z)
		}, "not a regular file"},
		{"key not in the tar", func(z bool) []byte {
			m := goodManifest([]string{"a", "b"}, [][]byte{a, b}, z)
			return craft(t, m, []entry{reg(0, "a", a)}, z)
		}, "missing"},
		{"entry not in the manifest", func(z bool) []byte {
			m := goodManifest([]string{"a"}, [][]byte{a}, z)
			return craft(t, m, []entry{reg(0, "a", a), reg(1, "b", b)}, z)
		}, "not in the manifest"},
		{"wrong object checksum", func(z bool) []byte {
			m := goodManifest([]string{"a"}, [][]byte{a}, z)
			return craft(t, m, []entry{reg(0, "a", []byte("alphA"))}, z)
		}, "SHA-256"},
		{"wrong data checksum", func(z bool) []byte {
			m := goodManifest([]string{"a"}, [][]byte{a}, z)
			m.DataSHA256 = sum([]byte("other"))
			return craft(t, m, []entry{reg(0, "a", a)}, z)
		}, "data SHA-256"},
		{"size differs from manifest", func(z bool) []byte {
			m := goodManifest([]string{"a"}, [][]byte{a}, z)
			return craft(t, m, []entry{reg(0, "a", []byte("alphabet"))}, z)
		}, "holds 8 bytes"},
		{"duplicate key", func(z bool) []byte {
			m := goodManifest([]string{"a", "a"}, [][]byte{a, a}, z)
			return craft(t, m, []entry{reg(0, "a", a), reg(1, "a", a)}, z)
		}, "twice"},
		{"manifest not compressed", func(z bool) []byte {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			mb, _ := json.Marshal(goodManifest([]string{"a"}, [][]byte{a}, false))
			_ = tw.WriteHeader(&tar.Header{Name: ManifestName, Typeflag: tar.TypeReg, Size: int64(len(mb)), Mode: 0o644})
			_, _ = tw.Write(mb)
			_ = tw.Close()
			return buf.Bytes()
		}, "decompress manifest"},
		{"unknown version", func(z bool) []byte {
			m := goodManifest([]string{"a"}, [][]byte{a}, z)
			m.Version = 99
			return craft(t, m, []entry{reg(0, "a", a)}, z)
		}, "version 99"},
		{"manifest not first", func(z bool) []byte {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			_ = tw.WriteHeader(&tar.Header{Name: EntryName(0), Typeflag: tar.TypeReg, Size: 5, Mode: 0o644})
			_, _ = tw.Write(a)
			_ = tw.Close()
			return buf.Bytes()
		}, "is not " + ManifestName},
		{"compression differs from manifest", func(z bool) []byte {
			m := goodManifest([]string{"a"}, [][]byte{a}, !z)
			return craft(t, m, []entry{reg(0, "a", a)}, z)
		}, "compression"},
	}
	for _, c := range cases {
		for _, z := range []bool{false, true} {
			raw := c.build(z)
			_, err := Verify(bytes.NewReader(raw), ReadOptions{})
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.wantMsg) {
				t.Errorf("%s (zstd %v): got %v, want ErrCorrupt with %q", c.name, z, err, c.wantMsg)
			}
		}
	}
}

// TestCorruptedBytes flips bytes of a good bundle: every flip that makes a
// difference is refused (never a silent wrong object).
func TestCorruptedBytes(t *testing.T) {
	objs := sampleObjects()
	for _, level := range []int{LevelStore, LevelFastest} {
		raw, _ := build(t, objs, level)
		refused := 0
		for i := 0; i < len(raw); i += max(1, len(raw)/200) {
			bad := bytes.Clone(raw)
			bad[i] ^= 0x5a
			_, err := Verify(bytes.NewReader(bad), ReadOptions{})
			if err == nil {
				// A flip in tar padding or an unused header field changes
				// nothing the manifest describes; the objects must still
				// read back exactly.
				checkSame(t, bad, objs)
				continue
			}
			refused++
		}
		if refused == 0 {
			t.Fatalf("level %d: no corruption refused", level)
		}
		// Truncated.
		if _, err := Verify(bytes.NewReader(raw[:len(raw)/2]), ReadOptions{}); err == nil {
			t.Fatalf("level %d: truncated bundle accepted", level)
		}
	}
}

func checkSame(t *testing.T, raw []byte, objs []testObj) {
	t.Helper()
	rd, err := NewReader(bytes.NewReader(raw), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	for i := 0; ; i++ {
		o, body, err := rd.Next()
		if errors.Is(err, io.EOF) {
			if i != len(objs) {
				t.Fatalf("bundle read back with %d objects, want %d", i, len(objs))
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if i >= len(objs) {
			t.Fatalf("bundle read back with an extra object %q", o.Key)
		}
		b, err := io.ReadAll(body)
		if err != nil {
			t.Fatalf("object %d %q: %v", i, o.Key, err)
		}
		if o.Key != objs[i].obj.Key || !bytes.Equal(b, objs[i].body) {
			t.Fatalf("object %d read back as %q with %d bytes, want %q with %d", i, o.Key, len(b), objs[i].obj.Key, len(objs[i].body))
		}
	}
}

func TestMaxObjectSize(t *testing.T) {
	raw, _ := build(t, sampleObjects(), LevelFastest)
	if _, err := NewReader(bytes.NewReader(raw), ReadOptions{MaxObjectSize: 10}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v", err)
	}
}

func TestChooseLevel(t *testing.T) {
	random := make([]byte, 256<<10)
	_, _ = rand.Read(random)
	if c := ChooseLevel(random); c.Level != LevelStore || c.Ratio >= MinRatio {
		t.Fatalf("random data: %+v", c)
	}
	text := []byte(strings.Repeat(`{"ts":"2024-01-01T00:00:00Z","level":"info","msg":"request served","status":200}`+"\n", 3000))
	if c := ChooseLevel(text); c.Level == LevelStore || c.Ratio < 4 {
		t.Fatalf("text: %+v", c)
	}
	if c := ChooseLevel(nil); c.Level != LevelFastest {
		t.Fatalf("empty: %+v", c)
	}
}

func TestSample(t *testing.T) {
	b, err := NewBuilder(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i := range 40 {
		body := bytes.Repeat([]byte{byte('a' + i%26)}, 1000)
		if err := b.Add(Object{Key: string(rune('A'+i%26)) + strings.Repeat("x", i), Size: 1000}, bytes.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
	s, err := b.Sample(4000)
	if err != nil || len(s) == 0 || len(s) > 4000 {
		t.Fatalf("sample %d bytes, %v", len(s), err)
	}
	all, err := b.Sample(1 << 20)
	if err != nil || len(all) != 40000 {
		t.Fatalf("whole sample %d bytes, %v", len(all), err)
	}
}

// TestVerifiedReadSkipsHashesNotStructure: a re-read of verified bytes
// (ReadOptions.Verified) does not hash objects again, but still refuses an
// entry of the wrong size or name, and reads every object in full.
func TestVerifiedReadSkipsHashesNotStructure(t *testing.T) {
	keys := []string{"a", "b"}
	bodies := [][]byte{[]byte("first"), []byte("second body")}
	m := goodManifest(keys, bodies, false)
	m.Objects[1].SHA256 = sum([]byte("not the body"))
	raw := craft(t, m, []entry{{name: EntryName(0), typ: tar.TypeReg, body: bodies[0]}, {name: EntryName(1), typ: tar.TypeReg, body: bodies[1]}}, false)
	if _, err := Verify(bytes.NewReader(raw), ReadOptions{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Verify of a wrong checksum: %v", err)
	}
	rd, err := NewReader(bytes.NewReader(raw), ReadOptions{Verified: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range keys {
		o, body, err := rd.Next()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(body)
		if err != nil || o.Key != keys[i] || !bytes.Equal(got, bodies[i]) {
			t.Fatalf("object %d: %q %q %v", i, o.Key, got, err)
		}
	}
	if _, _, err := rd.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("end: %v", err)
	}
	rd.Close()

	// Structure is still checked: an entry longer than the manifest says.
	m = goodManifest(keys, bodies, false)
	raw = craft(t, m, []entry{{name: EntryName(0), typ: tar.TypeReg, body: bodies[0]}, {name: EntryName(1), typ: tar.TypeReg, body: append(bodies[1], '!')}}, false)
	rd, err = NewReader(bytes.NewReader(raw), ReadOptions{Verified: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var last error
	for {
		_, body, err := rd.Next()
		if err != nil {
			last = err
			break
		}
		if _, err := io.ReadAll(body); err != nil {
			last = err
			break
		}
	}
	if !errors.Is(last, ErrCorrupt) {
		t.Fatalf("an entry of the wrong size, verified read: %v", last)
	}
}

// TestAddAndAddBytes: objects added from readers and from memory read
// back the same; a failed Add keeps nothing of its object.
func TestAddAndAddBytes(t *testing.T) {
	b, err := NewBuilder(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var objs []testObj
	for i := range 5 {
		body := bytes.Repeat([]byte{byte('a' + i)}, 100000+i)
		o := Object{Key: string(rune('a'+i)) + ".bin", Size: int64(len(body))}
		if i%2 == 0 {
			err = b.AddBytes(o, body)
		} else {
			err = b.Add(o, bytes.NewReader(body))
		}
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, testObj{o, body})
		if i == 1 {
			// Short body: refused, nothing kept.
			if err := b.Add(Object{Key: "short", Size: 10}, strings.NewReader("abc")); err == nil {
				t.Fatal("a short body was added")
			}
		}
	}
	var buf bytes.Buffer
	if _, err := b.WriteTo(context.Background(), &buf, WriteOptions{ID: "b", Job: "j", Created: time.Now(), Level: LevelFastest}); err != nil {
		t.Fatal(err)
	}
	checkSame(t, buf.Bytes(), objs)
}

// TestEmptyObjectsOnly: a bundle of empty objects and markers only (no
// data at all) is sampled, written and read back.
func TestEmptyObjectsOnly(t *testing.T) {
	b, err := NewBuilder(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	objs := []testObj{{Object{Key: "dir/"}, nil}, {Object{Key: "empty"}, []byte{}}}
	for _, o := range objs {
		if err := b.AddBytes(o.obj, o.body); err != nil {
			t.Fatal(err)
		}
	}
	if s, err := b.Sample(SampleBytes); err != nil || len(s) != 0 {
		t.Fatalf("sample %d bytes, %v", len(s), err)
	}
	var buf bytes.Buffer
	if _, err := b.WriteTo(context.Background(), &buf, WriteOptions{ID: "b", Job: "j", Created: time.Now(), Level: LevelStore}); err != nil {
		t.Fatal(err)
	}
	checkSame(t, buf.Bytes(), objs)
}

// TestDataChecksumAfterFailedAdd: objects added from readers (one failing
// half way, one too long) and from memory come back byte for byte, with
// the data checksum, kept as objects are added, that the reader checks: a
// failed object leaves no share in it.
func TestDataChecksumAfterFailedAdd(t *testing.T) {
	b, err := NewBuilder(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var objs []testObj
	body := func(n int, c byte) []byte { return bytes.Repeat([]byte{c}, n) }
	add := func(key string, data []byte, fromReader bool) {
		t.Helper()
		var err error
		if fromReader {
			err = b.Add(Object{Key: key, Size: int64(len(data))}, bytes.NewReader(data))
		} else {
			err = b.AddBytes(Object{Key: key}, data)
		}
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		objs = append(objs, testObj{Object{Key: key}, data})
	}
	add("r1", body(700, 'b'), true)
	if err := b.Add(Object{Key: "cut", Size: 900}, io.MultiReader(bytes.NewReader(body(400, 'x')), iotest.ErrReader(errors.New("cut")))); err == nil {
		t.Fatal("failing reader accepted")
	}
	add("m1", body(1500, 'c'), false)
	if err := b.Add(Object{Key: "long", Size: 10}, bytes.NewReader(body(11, 'y'))); err == nil {
		t.Fatal("long body accepted")
	}
	add("r2", body(300, 'd'), true)
	add("empty", nil, false)
	var buf bytes.Buffer
	m, err := b.WriteTo(context.Background(), &buf, WriteOptions{ID: "b", Job: "j", Created: time.Now(), Level: LevelFastest})
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, o := range objs {
		all = append(all, o.body...)
	}
	if m.DataSHA256 != sum(all) {
		t.Fatalf("data checksum %s, want %s", m.DataSHA256, sum(all))
	}
	checkSame(t, buf.Bytes(), objs) // the reader checks the data checksum too
}
