package mem

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"iter"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ferry-dev/ferry/internal/store"
)

// Compile-time checks of the interfaces Store implements.
var (
	_ store.Store       = (*Store)(nil)
	_ store.Multipart   = (*Store)(nil)
	_ store.PartLister  = (*Store)(nil)
	_ store.LocalReader = (*Store)(nil)
)

// Operation names, as passed to the fault hook and counted by [Store.Calls].
const (
	OpList              = "List"
	OpStat              = "Stat"
	OpOpen              = "Open"
	OpPut               = "Put"
	OpDelete            = "Delete"
	OpTags              = "Tags"
	OpCreateMultipart   = "CreateMultipart"
	OpUploadPart        = "UploadPart"
	OpCompleteMultipart = "CompleteMultipart"
	OpAbortMultipart    = "AbortMultipart"
	OpListParts         = "ListParts"
)

// pageSize is how many objects List copies per lock, like an S3 page.
const pageSize = 100

// maxKeyLen is the longest key in bytes, as in S3.
const maxKeyLen = 1024

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// object is a stored object.
type object struct {
	data  []byte
	attrs store.Attrs // Key, Size, ETag, LastModified, headers, metadata, CRC32C
	tags  map[string]string
}

// Store is an in-memory object store. The zero value is not usable: call
// [New]. It is safe for concurrent use.
type Store struct {
	name string

	mu      sync.Mutex
	keys    []string // sorted
	objs    map[string]*object
	uploads map[string]*upload
	now     func() time.Time
	fault   func(op, key string) error
	calls   map[string]int
}

// New returns an empty store; name is what String returns ("mem://name/").
func New(name string) *Store {
	return &Store{
		name:    name,
		objs:    make(map[string]*object),
		uploads: make(map[string]*upload),
		now:     time.Now,
		calls:   make(map[string]int),
	}
}

// SetFault installs fn, called before every operation with its name (OpPut,
// ...) and key ("" for List: the prefix is passed instead). A non-nil result
// fails the operation with that error, before it has any effect. nil removes
// the hook.
func (s *Store) SetFault(fn func(op, key string) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = fn
}

// SetClock sets the clock giving LastModified to writes (default time.Now).
func (s *Store) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// Calls returns how many times operation op was called, failed calls
// included.
func (s *Store) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// ResetCalls sets all call counts to zero.
func (s *Store) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.calls)
}

// Keys returns the stored keys in order.
func (s *Store) Keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.keys)
}

// Bytes returns a copy of the content of key.
func (s *Store) Bytes(key string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objs[key]
	if !ok {
		return nil, false
	}
	return bytes.Clone(o.data), true
}

// String returns "mem://name/".
func (s *Store) String() string { return "mem://" + s.name + "/" }

// begin counts op and runs the fault hook. It must not be called with s.mu
// held.
func (s *Store) begin(op, key string) error {
	s.mu.Lock()
	s.calls[op]++
	fault := s.fault
	s.mu.Unlock()
	if fault != nil {
		return fault(op, key)
	}
	return nil
}

func checkKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("empty key: %w", store.ErrInvalidKey)
	case len(key) > maxKeyLen:
		return fmt.Errorf("key %.40q... longer than %d bytes: %w", key, maxKeyLen, store.ErrInvalidKey)
	case !utf8.ValidString(key):
		return fmt.Errorf("key %q is not valid UTF-8: %w", key, store.ErrInvalidKey)
	}
	return nil
}

// List yields the objects in pages of 100, taking the lock once per page, so
// the consumer may use the store while iterating.
func (s *Store) List(ctx context.Context, opts store.ListOptions) iter.Seq2[store.Object, error] {
	return func(yield func(store.Object, error) bool) {
		if err := s.begin(OpList, opts.Prefix); err != nil {
			yield(store.Object{}, fmt.Errorf("mem: list: %w", err))
			return
		}
		// The first page starts at the prefix or after StartAfter, later
		// pages after the last key yielded.
		from, inclusive := opts.StartAfter, false
		if opts.Prefix > opts.StartAfter {
			from, inclusive = opts.Prefix, true
		}
		for {
			if err := ctx.Err(); err != nil {
				yield(store.Object{}, fmt.Errorf("mem: list: %w", err))
				return
			}
			page := s.page(opts.Prefix, from, inclusive)
			for _, o := range page {
				if !yield(o, nil) {
					return
				}
			}
			if len(page) < pageSize {
				return
			}
			from, inclusive = page[len(page)-1].Key, false
		}
	}
}

// page returns up to pageSize objects with keys starting with prefix, from
// the key from on (inclusive) or after it.
func (s *Store) page(prefix, from string, inclusive bool) []store.Object {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := sort.Search(len(s.keys), func(i int) bool {
		return s.keys[i] > from || (inclusive && s.keys[i] == from)
	})
	var page []store.Object
	for ; i < len(s.keys) && len(page) < pageSize; i++ {
		k := s.keys[i]
		if !strings.HasPrefix(k, prefix) {
			if k > prefix {
				break
			}
			continue
		}
		page = append(page, s.objs[k].attrs.Object)
	}
	return page
}

// get returns a copy of the attributes of key and its data.
func (s *Store) get(key string) ([]byte, store.Attrs, map[string]string, error) {
	if err := checkKey(key); err != nil {
		return nil, store.Attrs{}, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objs[key]
	if !ok {
		return nil, store.Attrs{}, nil, store.ErrNotExist
	}
	a := o.attrs
	a.Metadata = maps.Clone(a.Metadata)
	return o.data, a, maps.Clone(o.tags), nil
}

// Stat returns the attributes of key.
func (s *Store) Stat(ctx context.Context, key string) (store.Attrs, error) {
	if err := s.begin(OpStat, key); err != nil {
		return store.Attrs{}, fmt.Errorf("mem: stat %q: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return store.Attrs{}, fmt.Errorf("mem: stat %q: %w", key, err)
	}
	_, a, _, err := s.get(key)
	if err != nil {
		return store.Attrs{}, fmt.Errorf("mem: stat %q: %w", key, err)
	}
	return a, nil
}

// Open reads length bytes of key from offset (length < 0: to the end).
func (s *Store) Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, store.Attrs, error) {
	if err := s.begin(OpOpen, key); err != nil {
		return nil, store.Attrs{}, fmt.Errorf("mem: open %q: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, store.Attrs{}, fmt.Errorf("mem: open %q: %w", key, err)
	}
	data, a, _, err := s.get(key)
	if err != nil {
		return nil, store.Attrs{}, fmt.Errorf("mem: open %q: %w", key, err)
	}
	if offset < 0 || offset > int64(len(data)) {
		return nil, store.Attrs{}, fmt.Errorf("mem: open %q: offset %d outside object of %d bytes", key, offset, len(data))
	}
	data = data[offset:]
	if length >= 0 && length < int64(len(data)) {
		data = data[:length]
	}
	// data is never modified: writes replace the slice.
	return io.NopCloser(bytes.NewReader(data)), a, nil
}

// Tags returns the tags of key.
func (s *Store) Tags(ctx context.Context, key string) (map[string]string, error) {
	if err := s.begin(OpTags, key); err != nil {
		return nil, fmt.Errorf("mem: tags %q: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("mem: tags %q: %w", key, err)
	}
	_, _, tags, err := s.get(key)
	if err != nil {
		return nil, fmt.Errorf("mem: tags %q: %w", key, err)
	}
	if tags == nil {
		tags = map[string]string{}
	}
	return tags, nil
}

// Put stores the object. ChecksumCRC32C and ContentMD5, when set, must match
// the body, or the error wraps [store.ErrChecksum].
func (s *Store) Put(ctx context.Context, in store.PutInput, body io.Reader) (store.PutResult, error) {
	res, err := s.put(ctx, in, body)
	if err != nil {
		return store.PutResult{}, fmt.Errorf("mem: put %q: %w", in.Key, err)
	}
	return res, nil
}

func (s *Store) put(ctx context.Context, in store.PutInput, body io.Reader) (store.PutResult, error) {
	if err := s.begin(OpPut, in.Key); err != nil {
		return store.PutResult{}, err
	}
	if err := checkKey(in.Key); err != nil {
		return store.PutResult{}, err
	}
	if in.Size < 0 {
		return store.PutResult{}, fmt.Errorf("negative size %d", in.Size)
	}
	data, err := readExact(ctx, body, in.Size)
	if err != nil {
		return store.PutResult{}, err
	}
	crc := b64crc(crc32.Checksum(data, castagnoli))
	if in.ChecksumCRC32C != "" && in.ChecksumCRC32C != crc {
		return store.PutResult{}, fmt.Errorf("CRC32C of body is %s, want %s: %w", crc, in.ChecksumCRC32C, store.ErrChecksum)
	}
	sum := md5.Sum(data)
	if in.ContentMD5 != "" && in.ContentMD5 != base64.StdEncoding.EncodeToString(sum[:]) {
		return store.PutResult{}, fmt.Errorf("MD5 of body does not match Content-MD5 %s: %w", in.ContentMD5, store.ErrChecksum)
	}
	etag := hex.EncodeToString(sum[:])
	s.store(in, data, etag, crc)
	return store.PutResult{ETag: etag, ChecksumCRC32C: crc}, nil
}

// store makes data the object in.Key.
func (s *Store) store(in store.PutInput, data []byte, etag, crc string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := &object{
		data: data,
		attrs: store.Attrs{
			Object: store.Object{
				Key:          in.Key,
				Size:         int64(len(data)),
				ETag:         etag,
				LastModified: s.now(),
			},
			ContentType:        in.ContentType,
			ContentEncoding:    in.ContentEncoding,
			ContentDisposition: in.ContentDisposition,
			ContentLanguage:    in.ContentLanguage,
			CacheControl:       in.CacheControl,
			Expires:            in.Expires,
			Metadata:           make(map[string]string, len(in.Metadata)),
			TagCount:           len(in.Tags),
			ChecksumCRC32C:     crc,
			SSE:                in.SSE,
		},
		tags: maps.Clone(in.Tags),
	}
	for k, v := range in.Metadata {
		o.attrs.Metadata[strings.ToLower(k)] = v
	}
	if _, ok := s.objs[in.Key]; !ok {
		i, _ := slices.BinarySearch(s.keys, in.Key)
		s.keys = slices.Insert(s.keys, i, in.Key)
	}
	s.objs[in.Key] = o
}

// Delete removes key; a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.begin(OpDelete, key); err != nil {
		return fmt.Errorf("mem: delete %q: %w", key, err)
	}
	if err := checkKey(key); err != nil {
		return fmt.Errorf("mem: delete %q: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mem: delete %q: %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objs[key]; ok {
		delete(s.objs, key)
		i, _ := slices.BinarySearch(s.keys, key)
		s.keys = slices.Delete(s.keys, i, i+1)
	}
	return nil
}

// readExact reads exactly n bytes from r.
func readExact(ctx context.Context, r io.Reader, n int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(r, data); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read body: %w", err)
	}
	var one [1]byte
	if m, _ := io.ReadFull(r, one[:]); m > 0 {
		return nil, fmt.Errorf("body longer than %d bytes", n)
	}
	return data, ctx.Err()
}

func b64crc(c uint32) string {
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, c))
}

// upload is an unfinished multipart upload.
type upload struct {
	in    store.PutInput
	parts map[int32][]byte
}

// CreateMultipart starts an upload of in.Key.
func (s *Store) CreateMultipart(ctx context.Context, in store.PutInput) (string, error) {
	if err := s.begin(OpCreateMultipart, in.Key); err != nil {
		return "", fmt.Errorf("mem: create multipart upload %q: %w", in.Key, err)
	}
	if err := checkKey(in.Key); err != nil {
		return "", fmt.Errorf("mem: create multipart upload %q: %w", in.Key, err)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("mem: create multipart upload %q: %w", in.Key, err)
	}
	var b [16]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	in.Metadata, in.Tags = maps.Clone(in.Metadata), maps.Clone(in.Tags)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.uploads[id] = &upload{in: in, parts: make(map[int32][]byte)}
	return id, nil
}

// UploadPart stores part n; crc32c, when set, must match.
func (s *Store) UploadPart(ctx context.Context, key, uploadID string, n int32, body io.ReadSeeker, size int64, crc32c string) (store.Part, error) {
	p, err := s.uploadPart(ctx, key, uploadID, n, body, size, crc32c)
	if err != nil {
		return store.Part{}, fmt.Errorf("mem: upload part %d of %q: %w", n, key, err)
	}
	return p, nil
}

func (s *Store) uploadPart(ctx context.Context, key, uploadID string, n int32, body io.ReadSeeker, size int64, crc32c string) (store.Part, error) {
	if err := s.begin(OpUploadPart, key); err != nil {
		return store.Part{}, err
	}
	if n < 1 || n > 10000 {
		return store.Part{}, fmt.Errorf("part number %d outside 1 to 10000", n)
	}
	if size < 0 {
		return store.Part{}, fmt.Errorf("negative size %d", size)
	}
	if _, err := s.upload(key, uploadID); err != nil {
		return store.Part{}, err
	}
	data, err := readExact(ctx, body, size)
	if err != nil {
		return store.Part{}, err
	}
	crc := b64crc(crc32.Checksum(data, castagnoli))
	if crc32c != "" && crc32c != crc {
		return store.Part{}, fmt.Errorf("CRC32C of part is %s, want %s: %w", crc, crc32c, store.ErrChecksum)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.uploads[uploadID]
	if !ok {
		return store.Part{}, fmt.Errorf("upload %s: %w", uploadID, store.ErrNotExist)
	}
	u.parts[n] = data
	sum := md5.Sum(data)
	return store.Part{Number: n, Size: size, ETag: hex.EncodeToString(sum[:]), ChecksumCRC32C: crc}, nil
}

func (s *Store) upload(key, id string) (*upload, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.uploads[id]
	if !ok || u.in.Key != key {
		return nil, fmt.Errorf("no upload %s: %w", id, store.ErrNotExist)
	}
	return u, nil
}

// CompleteMultipart assembles parts (ascending part numbers, each uploaded,
// with matching size and ETag or CRC32C when given) into the object. On an
// error the upload stays.
func (s *Store) CompleteMultipart(ctx context.Context, key, uploadID string, parts []store.Part) (store.PutResult, error) {
	res, err := s.complete(ctx, key, uploadID, parts)
	if err != nil {
		return store.PutResult{}, fmt.Errorf("mem: complete multipart upload %q: %w", key, err)
	}
	return res, nil
}

func (s *Store) complete(ctx context.Context, key, uploadID string, parts []store.Part) (store.PutResult, error) {
	if err := s.begin(OpCompleteMultipart, key); err != nil {
		return store.PutResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return store.PutResult{}, err
	}
	if len(parts) == 0 {
		return store.PutResult{}, errors.New("no parts")
	}
	s.mu.Lock()
	u, ok := s.uploads[uploadID]
	if !ok || u.in.Key != key {
		s.mu.Unlock()
		return store.PutResult{}, fmt.Errorf("no upload %s: %w", uploadID, store.ErrNotExist)
	}
	var (
		data []byte
		md5s []byte
	)
	for i, p := range parts {
		d, ok := u.parts[p.Number]
		sum := md5.Sum(d)
		switch {
		case i > 0 && p.Number <= parts[i-1].Number:
			s.mu.Unlock()
			return store.PutResult{}, fmt.Errorf("part %d after part %d: parts out of order", p.Number, parts[i-1].Number)
		case !ok:
			s.mu.Unlock()
			return store.PutResult{}, fmt.Errorf("part %d was not uploaded", p.Number)
		case p.Size != int64(len(d)):
			s.mu.Unlock()
			return store.PutResult{}, fmt.Errorf("part %d has %d bytes, not %d", p.Number, len(d), p.Size)
		case p.ETag != "" && p.ETag != hex.EncodeToString(sum[:]):
			s.mu.Unlock()
			return store.PutResult{}, fmt.Errorf("part %d has ETag %x, not %s", p.Number, sum, p.ETag)
		case p.ChecksumCRC32C != "" && p.ChecksumCRC32C != b64crc(crc32.Checksum(d, castagnoli)):
			s.mu.Unlock()
			return store.PutResult{}, fmt.Errorf("part %d: CRC32C mismatch: %w", p.Number, store.ErrChecksum)
		}
		data = append(data, d...)
		md5s = append(md5s, sum[:]...)
	}
	in := u.in
	s.mu.Unlock()

	crc := b64crc(crc32.Checksum(data, castagnoli))
	if in.ChecksumCRC32C != "" && in.ChecksumCRC32C != crc {
		return store.PutResult{}, fmt.Errorf("CRC32C of object is %s, want %s: %w", crc, in.ChecksumCRC32C, store.ErrChecksum)
	}
	sum := md5.Sum(md5s)
	etag := fmt.Sprintf("%x-%d", sum, len(parts))
	s.mu.Lock()
	_, ok = s.uploads[uploadID]
	delete(s.uploads, uploadID)
	s.mu.Unlock()
	if !ok {
		return store.PutResult{}, fmt.Errorf("upload %s aborted: %w", uploadID, store.ErrNotExist)
	}
	s.store(in, data, etag, crc)
	return store.PutResult{ETag: etag, ChecksumCRC32C: crc}, nil
}

// AbortMultipart discards the upload. Aborting an unknown upload is not an
// error.
func (s *Store) AbortMultipart(ctx context.Context, key, uploadID string) error {
	if err := s.begin(OpAbortMultipart, key); err != nil {
		return fmt.Errorf("mem: abort multipart upload %q: %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.uploads[uploadID]; ok && u.in.Key == key {
		delete(s.uploads, uploadID)
	}
	return nil
}

// Uploads returns the number of unfinished multipart uploads.
func (s *Store) Uploads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.uploads)
}

// ReadsLocally reports true: Open reads memory on this machine.
func (s *Store) ReadsLocally() bool { return true }

// ListParts returns the parts of an unfinished upload, in order of number.
func (s *Store) ListParts(ctx context.Context, key, uploadID string) ([]store.Part, error) {
	if err := s.begin(OpListParts, key); err != nil {
		return nil, fmt.Errorf("mem: list parts of %q: %w", key, err)
	}
	u, err := s.upload(key, uploadID)
	if err != nil {
		return nil, fmt.Errorf("mem: list parts of %q: %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := make([]store.Part, 0, len(u.parts))
	for n, data := range u.parts {
		sum := md5.Sum(data)
		ps = append(ps, store.Part{Number: n, Size: int64(len(data)), ETag: hex.EncodeToString(sum[:]),
			ChecksumCRC32C: b64crc(crc32.Checksum(data, castagnoli))})
	}
	slices.SortFunc(ps, func(a, b store.Part) int { return int(a.Number - b.Number) })
	return ps, nil
}
