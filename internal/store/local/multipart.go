package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync"

	"github.com/ferry-dev/ferry/internal/store"
)

// upload is an unfinished multipart upload: a temporary file in the target
// directory into which parts are written at (n-1)*PartSize.
type upload struct {
	in      store.PutInput
	dir     dirHandle
	created []string // directories CreateMultipart made
	tmp     string
	name    string

	// mu is held shared while a part is written and exclusively to
	// complete or abort, so neither races with a part still being written.
	mu sync.RWMutex
	f  *os.File // nil once completed or aborted

	pmu   sync.Mutex // guards parts, set by concurrent UploadPart calls
	parts map[int32]partInfo
}

// partInfo is what the store knows of an uploaded part.
type partInfo struct {
	size int64
	crc  uint32
}

// abort closes and removes the temporary file and the directories made for
// it.
func (u *upload) abort(s *Store) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.f != nil {
		u.f.Close()
		u.dir.Remove(u.tmp)
		u.f = nil
		u.dir.close()
		s.removeDirs(u.created)
	}
}

// CreateMultipart starts an upload of in.Key in parts of in.PartSize bytes
// (required) and returns its ID. Uploads live in memory: an upload neither
// completed nor aborted keeps its temporary file until [Store.Close].
func (s *Store) CreateMultipart(ctx context.Context, in store.PutInput) (string, error) {
	id, err := s.createMultipart(ctx, in)
	if err != nil {
		return "", fmt.Errorf("local: create multipart upload %q: %w", in.Key, err)
	}
	return id, nil
}

func (s *Store) createMultipart(ctx context.Context, in store.PutInput) (string, error) {
	if err := checkKey(in.Key); err != nil {
		return "", err
	}
	if in.PartSize <= 0 {
		return "", fmt.Errorf("part size %d, want > 0", in.PartSize)
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	dirs, name := splitKey(in.Key)
	if name == "" {
		return "", fmt.Errorf("cannot upload a directory marker in parts: %w", store.ErrUnsafeKey)
	}
	d, created, tmp, f, err := s.createTemp(in.Key, dirs)
	if err != nil {
		return "", err
	}
	var b [16]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	u := &upload{in: in, dir: d, created: created, tmp: tmp, name: name, f: f, parts: make(map[int32]partInfo)}
	s.mu.Lock()
	s.uploads[id] = u
	s.mu.Unlock()
	return id, nil
}

// lookup returns the upload id of key.
func (s *Store) lookup(key, id string) (*upload, error) {
	s.mu.Lock()
	u := s.uploads[id]
	s.mu.Unlock()
	if u == nil || u.in.Key != key {
		return nil, fmt.Errorf("no upload %s: %w", id, store.ErrNotExist)
	}
	return u, nil
}

// UploadPart writes part n (size bytes from body) of the upload. crc32c,
// when not empty, is checked: on a mismatch the error wraps
// [store.ErrChecksum] and the part counts as not uploaded. Parts may be
// uploaded concurrently and again.
func (s *Store) UploadPart(ctx context.Context, key, uploadID string, n int32, body io.ReadSeeker, size int64, crc32c string) (store.Part, error) {
	p, err := s.uploadPart(ctx, key, uploadID, n, body, size, crc32c)
	if err != nil {
		return store.Part{}, fmt.Errorf("local: upload part %d of %q: %w", n, key, err)
	}
	return p, nil
}

func (s *Store) uploadPart(ctx context.Context, key, uploadID string, n int32, body io.ReadSeeker, size int64, crc32c string) (store.Part, error) {
	u, err := s.lookup(key, uploadID)
	if err != nil {
		return store.Part{}, err
	}
	if n < 1 {
		return store.Part{}, fmt.Errorf("part number %d, want >= 1", n)
	}
	if size < 0 || size > u.in.PartSize {
		return store.Part{}, fmt.Errorf("part of %d bytes, want 0 to %d", size, u.in.PartSize)
	}
	u.mu.RLock()
	defer u.mu.RUnlock()
	if u.f == nil {
		return store.Part{}, fmt.Errorf("upload %s: %w", uploadID, store.ErrNotExist)
	}
	// Forget the part while it is being rewritten.
	u.setPart(n, partInfo{}, false)
	h := crc32.New(castagnoli)
	w := io.NewOffsetWriter(u.f, int64(n-1)*u.in.PartSize)
	if err := copyExact(ctx, io.MultiWriter(w, h), body, size); err != nil {
		return store.Part{}, err
	}
	sum := b64crc(h.Sum32())
	if crc32c != "" && crc32c != sum {
		return store.Part{}, fmt.Errorf("CRC32C of part is %s, want %s: %w", sum, crc32c, store.ErrChecksum)
	}
	u.setPart(n, partInfo{size: size, crc: h.Sum32()}, true)
	return store.Part{Number: n, Size: size, ChecksumCRC32C: sum}, nil
}

func (u *upload) setPart(n int32, p partInfo, ok bool) {
	u.pmu.Lock()
	defer u.pmu.Unlock()
	if ok {
		u.parts[n] = p
	} else {
		delete(u.parts, n)
	}
}

// CompleteMultipart checks that parts are the uploaded parts 1..N in order,
// all but the last of PartSize bytes, and makes the temporary file the object
// (see [Store.Put]). On an error the upload stays and may be completed again
// or aborted.
func (s *Store) CompleteMultipart(ctx context.Context, key, uploadID string, parts []store.Part) (store.PutResult, error) {
	res, err := s.completeMultipart(ctx, key, uploadID, parts)
	if err != nil {
		return store.PutResult{}, fmt.Errorf("local: complete multipart upload %q: %w", key, err)
	}
	return res, nil
}

func (s *Store) completeMultipart(ctx context.Context, key, uploadID string, parts []store.Part) (store.PutResult, error) {
	u, err := s.lookup(key, uploadID)
	if err != nil {
		return store.PutResult{}, err
	}
	if len(parts) == 0 {
		return store.PutResult{}, errors.New("no parts")
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.f == nil {
		return store.PutResult{}, fmt.Errorf("upload %s: %w", uploadID, store.ErrNotExist)
	}
	var (
		total int64
		crc   uint32
	)
	for i, p := range parts {
		if p.Number != int32(i+1) {
			return store.PutResult{}, fmt.Errorf("part %d at position %d, want parts 1 to %d in order", p.Number, i+1, len(parts))
		}
		u.pmu.Lock()
		got, ok := u.parts[p.Number]
		u.pmu.Unlock()
		if !ok {
			return store.PutResult{}, fmt.Errorf("part %d was not uploaded", p.Number)
		}
		last := i == len(parts)-1
		switch {
		case p.Size != got.size:
			return store.PutResult{}, fmt.Errorf("part %d has %d bytes, not %d", p.Number, got.size, p.Size)
		case p.ChecksumCRC32C != "" && p.ChecksumCRC32C != b64crc(got.crc):
			return store.PutResult{}, fmt.Errorf("part %d has CRC32C %s, not %s: %w", p.Number, b64crc(got.crc), p.ChecksumCRC32C, store.ErrChecksum)
		case !last && got.size != u.in.PartSize:
			return store.PutResult{}, fmt.Errorf("part %d has %d bytes, want the part size %d", p.Number, got.size, u.in.PartSize)
		case last && got.size == 0 && len(parts) > 1:
			return store.PutResult{}, fmt.Errorf("last part %d is empty", p.Number)
		}
		crc = crc32Combine(crc, got.crc, got.size)
		total += got.size
	}
	if u.in.Size > 0 && total != u.in.Size {
		return store.PutResult{}, fmt.Errorf("parts have %d bytes, want %d", total, u.in.Size)
	}
	sum := b64crc(crc)
	if u.in.ChecksumCRC32C != "" && u.in.ChecksumCRC32C != sum {
		return store.PutResult{}, fmt.Errorf("CRC32C of object is %s, want %s: %w", sum, u.in.ChecksumCRC32C, store.ErrChecksum)
	}
	// Parts beyond the last may have been written: cut them off.
	if err := u.f.Truncate(total); err != nil {
		return store.PutResult{}, err
	}
	m := metaFromInput(u.in)
	m.CRC32C = sum
	if err := s.finish(ctx, u.dir.Root, u.f, u.tmp, u.name, u.in, m); err != nil {
		return store.PutResult{}, err
	}
	u.f = nil // finish closed it
	u.dir.close()
	s.mu.Lock()
	delete(s.uploads, uploadID)
	s.mu.Unlock()
	return store.PutResult{ChecksumCRC32C: sum}, nil
}

// AbortMultipart discards the upload and its temporary file. Aborting an
// unknown upload is not an error.
func (s *Store) AbortMultipart(ctx context.Context, key, uploadID string) error {
	s.mu.Lock()
	u := s.uploads[uploadID]
	if u != nil && u.in.Key == key {
		delete(s.uploads, uploadID)
	} else {
		u = nil
	}
	s.mu.Unlock()
	if u != nil {
		u.abort(s)
	}
	return nil
}

// crc32Combine returns the CRC32C of the concatenation of A and B given
// crcA, crcB and the length of B (zlib's crc32_combine).
func crc32Combine(crcA, crcB uint32, lenB int64) uint32 {
	if lenB <= 0 {
		return crcA
	}
	var even, odd [32]uint32
	odd[0] = crc32.Castagnoli // reversed polynomial: operator for one zero bit
	row := uint32(1)
	for n := 1; n < 32; n++ {
		odd[n] = row
		row <<= 1
	}
	gf2Square(&even, &odd) // two zero bits
	gf2Square(&odd, &even) // four zero bits
	for {
		gf2Square(&even, &odd)
		if lenB&1 != 0 {
			crcA = gf2Times(&even, crcA)
		}
		lenB >>= 1
		if lenB == 0 {
			break
		}
		gf2Square(&odd, &even)
		if lenB&1 != 0 {
			crcA = gf2Times(&odd, crcA)
		}
		lenB >>= 1
		if lenB == 0 {
			break
		}
	}
	return crcA ^ crcB
}

func gf2Times(mat *[32]uint32, vec uint32) uint32 {
	var sum uint32
	for i := 0; vec != 0; i, vec = i+1, vec>>1 {
		if vec&1 != 0 {
			sum ^= mat[i]
		}
	}
	return sum
}

func gf2Square(square, mat *[32]uint32) {
	for n := range 32 {
		square[n] = gf2Times(mat, mat[n])
	}
}
