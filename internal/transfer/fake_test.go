package transfer

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"iter"
	"maps"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-dev/ferry/internal/store"
)

// fakeStore is a test-only in-memory store implementing Store, Multipart and
// Copier, checking checksums like a real server, with hooks and counters.
// Wrap it in plain{} to hide Multipart and Copier.
type fakeStore struct {
	name string

	mu      sync.Mutex
	objs    map[string]*fakeObj
	uploads map[string]*fakeUpload
	nextID  int

	// Hooks, set before use.
	openHook  func(key string, data []byte) []byte     // may return altered bytes
	openErr   func(key string, call int) error         // error for the call-th Open (1-based)
	partHook  func(n int32, call int) error            // error for an UploadPart (call counts all parts)
	partDelay time.Duration                            // each UploadPart sleeps this long (ctx aware)
	copyHook  func(data []byte) []byte                 // alters bytes of server copies
	putResult func(pr store.PutResult) store.PutResult // alters reported results
	copyFrom  func(src store.Store) bool               // CanCopyFrom; nil: only itself
	// verbatim enables CopyVerbatim (else it answers errors.ErrUnsupported);
	// verbatimSSE is the encryption it reports for the copy.
	verbatim    bool
	verbatimSSE string

	opens, puts, stats, tagCalls, creates, parts, completes, aborts, deletes, copies atomic.Int32
	verbatims                                                                        atomic.Int32
}

type fakeObj struct {
	data  []byte
	attrs store.Attrs
	tags  map[string]string
}

type fakeUpload struct {
	in    store.PutInput
	parts map[int32][]byte
}

type plain struct{ store.Store }

var (
	_ store.Store     = (*fakeStore)(nil)
	_ store.Multipart = (*fakeStore)(nil)
	_ store.Copier    = (*fakeStore)(nil)

	_ store.VerbatimCopier = (*fakeStore)(nil)
)

func newFake(name string) *fakeStore {
	return &fakeStore{name: name, objs: map[string]*fakeObj{}, uploads: map[string]*fakeUpload{}}
}

func md5Hex(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }
func crcOf(b []byte) string  { return crc32cBase64(crc32.Checksum(b, castagnoli)) }

// add stores an object as if uploaded in one request (plain MD5 ETag).
func (f *fakeStore) add(key string, data []byte, attrs store.Attrs, tags map[string]string) store.Object {
	f.mu.Lock()
	defer f.mu.Unlock()
	attrs.Key = key
	attrs.Size = int64(len(data))
	if attrs.ETag == "" {
		attrs.ETag = md5Hex(data)
	} else if attrs.ETag == "-" {
		attrs.ETag = ""
	}
	if attrs.LastModified.IsZero() {
		attrs.LastModified = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	}
	if attrs.Metadata == nil {
		attrs.Metadata = map[string]string{}
	}
	attrs.TagCount = len(tags)
	f.objs[key] = &fakeObj{data: bytes.Clone(data), attrs: attrs, tags: maps.Clone(tags)}
	return attrs.Object
}

func (f *fakeStore) get(key string) (*fakeObj, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.objs[key]
	return o, ok
}

func (f *fakeStore) keys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ks []string
	for k := range f.objs {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func (f *fakeStore) openUploads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.uploads)
}

// dropUploads discards every unfinished upload, as an expiry rule would.
func (f *fakeStore) dropUploads() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.uploads)
}

// uploadParts returns the numbers of the parts upload id holds, sorted, and
// whether it exists.
func (f *fakeStore) uploadParts(id string) ([]int32, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.uploads[id]
	if !ok {
		return nil, false
	}
	ns := slices.Sorted(maps.Keys(u.parts))
	return ns, true
}

func (f *fakeStore) String() string { return "fake://" + f.name }

func (f *fakeStore) List(ctx context.Context, opts store.ListOptions) iter.Seq2[store.Object, error] {
	return func(yield func(store.Object, error) bool) {
		for _, k := range f.keys() {
			o, _ := f.get(k)
			if !yield(o.attrs.Object, nil) {
				return
			}
		}
	}
}

func (f *fakeStore) Stat(ctx context.Context, key string) (store.Attrs, error) {
	f.stats.Add(1)
	o, ok := f.get(key)
	if !ok {
		return store.Attrs{}, fmt.Errorf("stat %s: %w", key, store.ErrNotExist)
	}
	a := o.attrs
	a.Metadata = maps.Clone(a.Metadata)
	return a, nil
}

func (f *fakeStore) Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, store.Attrs, error) {
	call := int(f.opens.Add(1))
	if f.openErr != nil {
		if err := f.openErr(key, call); err != nil {
			return nil, store.Attrs{}, err
		}
	}
	a, err := f.Stat(ctx, key)
	if err != nil {
		return nil, a, err
	}
	o, _ := f.get(key)
	data := o.data
	if f.openHook != nil {
		data = f.openHook(key, bytes.Clone(data))
	}
	if offset < 0 || offset > int64(len(data)) {
		return nil, store.Attrs{}, fmt.Errorf("open %s: offset %d outside %d bytes", key, offset, len(data))
	}
	data = data[offset:]
	if length >= 0 && length < int64(len(data)) {
		data = data[:length]
	}
	return io.NopCloser(bytes.NewReader(data)), a, nil
}

// readBody reads exactly size bytes, failing on a short or long body.
func readBody(body io.Reader, size int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(body, size+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if int64(len(data)) != size {
		return nil, fmt.Errorf("body has %d bytes, want %d", len(data), size)
	}
	return data, nil
}

func checkSums(data []byte, crc, md5b64 string) error {
	if crc != "" && crcOf(data) != crc {
		return fmt.Errorf("%w: XAmzContentChecksumMismatch", store.ErrChecksum)
	}
	if md5b64 != "" {
		s := md5.Sum(data)
		if base64.StdEncoding.EncodeToString(s[:]) != md5b64 {
			return fmt.Errorf("%w: BadDigest", store.ErrChecksum)
		}
	}
	return nil
}

func (f *fakeStore) store(in store.PutInput, data []byte, etag string) store.PutResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	attrs := store.Attrs{
		Object:             store.Object{Key: in.Key, Size: int64(len(data)), ETag: etag, LastModified: time.Now()},
		ContentType:        in.ContentType,
		ContentEncoding:    in.ContentEncoding,
		ContentDisposition: in.ContentDisposition,
		ContentLanguage:    in.ContentLanguage,
		CacheControl:       in.CacheControl,
		Expires:            in.Expires,
		Metadata:           maps.Clone(in.Metadata),
		TagCount:           len(in.Tags),
		ChecksumCRC32C:     crcOf(data),
		SSE:                in.SSE,
	}
	if attrs.Metadata == nil {
		attrs.Metadata = map[string]string{}
	}
	f.objs[in.Key] = &fakeObj{data: data, attrs: attrs, tags: maps.Clone(in.Tags)}
	pr := store.PutResult{ETag: etag, ChecksumCRC32C: attrs.ChecksumCRC32C}
	if f.putResult != nil {
		pr = f.putResult(pr)
	}
	return pr
}

func (f *fakeStore) Put(ctx context.Context, in store.PutInput, body io.Reader) (store.PutResult, error) {
	f.puts.Add(1)
	data, err := readBody(body, in.Size)
	if err != nil {
		return store.PutResult{}, fmt.Errorf("put %s: %w", in.Key, err)
	}
	if err := checkSums(data, in.ChecksumCRC32C, in.ContentMD5); err != nil {
		return store.PutResult{}, fmt.Errorf("put %s: %w", in.Key, err)
	}
	return f.store(in, data, md5Hex(data)), nil
}

func (f *fakeStore) Delete(ctx context.Context, key string) error {
	f.deletes.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.objs, key)
	return nil
}

func (f *fakeStore) Tags(ctx context.Context, key string) (map[string]string, error) {
	f.tagCalls.Add(1)
	o, ok := f.get(key)
	if !ok {
		return nil, store.ErrNotExist
	}
	t := maps.Clone(o.tags)
	if t == nil {
		t = map[string]string{}
	}
	return t, nil
}

func (f *fakeStore) CreateMultipart(ctx context.Context, in store.PutInput) (string, error) {
	f.creates.Add(1)
	if in.PartSize <= 0 {
		return "", fmt.Errorf("create multipart: no part size")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	id := strconv.Itoa(f.nextID)
	f.uploads[id] = &fakeUpload{in: in, parts: map[int32][]byte{}}
	return id, nil
}

func (f *fakeStore) UploadPart(ctx context.Context, key, uploadID string, n int32, body io.ReadSeeker, size int64, crc string) (store.Part, error) {
	call := int(f.parts.Add(1))
	if f.partDelay > 0 {
		select {
		case <-ctx.Done():
			return store.Part{}, ctx.Err()
		case <-time.After(f.partDelay):
		}
	}
	if f.partHook != nil {
		if err := f.partHook(n, call); err != nil {
			return store.Part{}, err
		}
	}
	data, err := readBody(body, size)
	if err != nil {
		return store.Part{}, err
	}
	if crc == "" {
		return store.Part{}, fmt.Errorf("upload part: no checksum")
	}
	if err := checkSums(data, crc, ""); err != nil {
		return store.Part{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.uploads[uploadID]
	if !ok {
		return store.Part{}, fmt.Errorf("upload part: NoSuchUpload: %w", store.ErrNotExist)
	}
	if u.in.Key != key {
		return store.Part{}, fmt.Errorf("upload part: wrong key")
	}
	u.parts[n] = data
	return store.Part{Number: n, Size: size, ETag: md5Hex(data), ChecksumCRC32C: crc}, nil
}

func (f *fakeStore) CompleteMultipart(ctx context.Context, key, uploadID string, parts []store.Part) (store.PutResult, error) {
	f.completes.Add(1)
	f.mu.Lock()
	u, ok := f.uploads[uploadID]
	delete(f.uploads, uploadID)
	f.mu.Unlock()
	if !ok {
		return store.PutResult{}, fmt.Errorf("complete: NoSuchUpload: %w", store.ErrNotExist)
	}
	var data []byte
	for i, p := range parts {
		b, ok := u.parts[p.Number]
		if !ok || p.Number != int32(i+1) {
			return store.PutResult{}, fmt.Errorf("complete: InvalidPart %d", p.Number)
		}
		if i < len(parts)-1 && int64(len(b)) != u.in.PartSize {
			return store.PutResult{}, fmt.Errorf("complete: part %d has %d bytes, want %d", p.Number, len(b), u.in.PartSize)
		}
		data = append(data, b...)
	}
	if len(parts) != len(u.parts) {
		return store.PutResult{}, fmt.Errorf("complete: %d parts listed, %d uploaded", len(parts), len(u.parts))
	}
	return f.store(u.in, data, fmt.Sprintf("%s-%d", md5Hex(data), len(parts))), nil
}

func (f *fakeStore) AbortMultipart(ctx context.Context, key, uploadID string) error {
	f.aborts.Add(1)
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.uploads, uploadID)
	return nil
}

func (f *fakeStore) CanCopyFrom(src store.Store) bool {
	if f.copyFrom != nil {
		return f.copyFrom(src)
	}
	return src == store.Store(f)
}

func (f *fakeStore) CopyFrom(ctx context.Context, src store.Store, srcKey string, in store.PutInput) (store.PutResult, error) {
	f.copies.Add(1)
	s := src.(*fakeStore)
	o, ok := s.get(srcKey)
	if !ok {
		return store.PutResult{}, fmt.Errorf("copy: %w", store.ErrNotExist)
	}
	data := bytes.Clone(o.data)
	if f.copyHook != nil {
		data = f.copyHook(data)
	}
	in.Tags = o.tags
	etag := md5Hex(data)
	if !isPlainMD5(o.attrs.ETag) {
		etag = o.attrs.ETag // a multipart source keeps its composite ETag here
	}
	return f.store(in, data, etag), nil
}

// CopyVerbatim copies like a server with the COPY directives: the source's
// attributes and tags as they are, if its ETag is still etag.
func (f *fakeStore) CopyVerbatim(ctx context.Context, src store.Store, srcKey, etag string, in store.PutInput) (store.PutResult, error) {
	if !f.verbatim {
		return store.PutResult{}, fmt.Errorf("copy verbatim: %w", errors.ErrUnsupported)
	}
	f.verbatims.Add(1)
	s := src.(*fakeStore)
	o, ok := s.get(srcKey)
	if !ok {
		return store.PutResult{}, fmt.Errorf("copy: %w", store.ErrNotExist)
	}
	if o.attrs.ETag != etag {
		return store.PutResult{}, fmt.Errorf("copy: etag %s, not %s: %w", o.attrs.ETag, etag, store.ErrChanged)
	}
	data := bytes.Clone(o.data)
	if f.copyHook != nil {
		data = f.copyHook(data)
	}
	a := o.attrs
	cp := store.PutInput{Key: in.Key, ContentType: a.ContentType, ContentEncoding: a.ContentEncoding,
		ContentDisposition: a.ContentDisposition, ContentLanguage: a.ContentLanguage, CacheControl: a.CacheControl,
		Expires: a.Expires, Metadata: a.Metadata, Tags: o.tags, SSE: in.SSE}
	pr := f.store(cp, data, md5Hex(data))
	pr.SSE = f.verbatimSSE
	return pr, nil
}

type nopCloser struct{ io.Reader }

func (nopCloser) Close() error { return nil }

func newCRC() hash.Hash32 { return crc32.New(castagnoli) }
