package transfer

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"math/bits"
	"sync"

	"github.com/ferry-dev/ferry/internal/store"
)

// Small is a small object read whole and verified against the source
// (pack mode): its bytes, attributes, tags, CRC32C (base64) and how the
// bytes were checked against the source (Verified: a method, "" when the
// source offered nothing).
type Small struct {
	Data     []byte
	Attrs    store.Attrs
	Tags     map[string]string
	CRC32C   string
	Verified string
}

// ReadSmall reads the whole source object key into memory, refusing one
// larger than limit, and checks the bytes against what the source states
// (the same checks as a copy: MD5 ETag, full-object or composite
// checksums, local re-check). With RequireVerified, an object the source
// offers nothing to check against fails with ErrUnverified. Tags are read
// when the source reports any.
func (e *Engine) ReadSmall(ctx context.Context, key string, limit int64) (Small, error) {
	src, err := e.open(ctx, key, nil)
	if err != nil {
		return Small{}, err
	}
	defer func() { src.rc.Close() }()
	if src.attrs.Size > limit {
		return Small{}, src.objErr("read source", fmt.Errorf("object of %d bytes, above the pack limit of %d", src.attrs.Size, limit))
	}
	if src.plan.method == Unverified && e.opts.RequireVerified {
		return Small{}, unverified(key)
	}
	buf, err := e.mem.get(ctx, src.attrs.Size)
	if err != nil {
		return Small{}, src.objErr("read source", err)
	}
	defer buf.release()
	if err := buf.fill(src.rc, src.attrs.Size, src.crc, src.md5, src.v); err != nil {
		return Small{}, src.objErr("read source", err)
	}
	if err := src.expectEOF(); err != nil {
		return Small{}, err
	}
	crc, _, err := src.verify()
	if err != nil {
		return Small{}, err
	}
	data := SmallBuffer(src.attrs.Size)
	if _, err := io.ReadFull(buf.reader(), data); err != nil {
		ReleaseSmall(data)
		return Small{}, src.objErr("read source", err)
	}
	out := Small{Data: data, Attrs: src.attrs, CRC32C: crc, Verified: src.plan.method}
	if src.attrs.TagCount != 0 {
		if out.Tags, err = e.src.Tags(ctx, key); err != nil {
			ReleaseSmall(data)
			return Small{}, src.objErr("get source tags", err)
		}
	}
	return out, nil
}

// Small objects' bytes come from pools by size class (4 KiB to 64 MiB,
// powers of two): a pack-mode job reads every object into memory once and
// writes it once, and allocating each anew cost 6% of its CPU in page
// faults and zeroing (issue 11's case 9 profile).
const (
	smallMinClass = 12 // 4 KiB
	smallClasses  = 15 // up to 64 MiB
)

var smallPools [smallClasses]sync.Pool

func smallClass(n int64) int {
	c := max(0, bits.Len64(uint64(max(n, 1)-1))-smallMinClass)
	if c >= smallClasses {
		return -1
	}
	return c
}

// SmallBuffer returns a slice of n bytes (contents undefined) for a small
// object's bytes; give it back with [ReleaseSmall] once nothing uses it.
func SmallBuffer(n int64) []byte {
	c := smallClass(n)
	if c < 0 {
		return make([]byte, n)
	}
	if p, ok := smallPools[c].Get().(*[]byte); ok {
		return (*p)[:n]
	}
	return make([]byte, n, 1<<(c+smallMinClass))
}

// ReleaseSmall returns a slice from [SmallBuffer] (or [Engine.ReadSmall]'s
// Data) to its pool. The caller must not use it afterwards.
func ReleaseSmall(b []byte) {
	c := smallClass(int64(cap(b)))
	if c < 0 || cap(b) != 1<<(c+smallMinClass) {
		return
	}
	b = b[:0]
	smallPools[c].Put(&b)
}

// PutSmall writes data (already checked against its source) as in.Key at
// the destination with one Put carrying its CRC32C and MD5, so that the
// destination refuses damaged bytes before the object becomes visible, and
// then checks what the destination reports: its CRC32C, or an ETag that
// is a plain MD5, must match. An object whose report does not match is
// deleted. in.Metadata gets the provenance of src (ETag, LastModified,
// size, CRC32C). The engine's SSE and storage class apply.
//
// knownMD5, when it is a plain MD5 (32 hex digits), is the MD5 of data
// known already (a restored object whose source ETag was checked when it
// was packed, and whose bytes match the bundle's SHA-256 since): it is sent
// as Content-MD5 without hashing data again. A wrong one is refused by the
// destination (Content-MD5) or by the ETag check below, never written.
func (e *Engine) PutSmall(ctx context.Context, in store.PutInput, src store.Object, data []byte, knownMD5 string) (store.PutResult, string, error) {
	crc := crc32cBase64(crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)))
	var sum [md5.Size]byte
	if raw, err := hex.DecodeString(knownMD5); err == nil && len(raw) == md5.Size {
		copy(sum[:], raw)
	} else {
		sum = md5.Sum(data)
	}
	md := make(map[string]string, len(in.Metadata)+4)
	maps.Copy(md, in.Metadata)
	Provenance{SrcETag: src.ETag, SrcModTime: src.LastModified, SrcSize: src.Size, CRC32C: crc}.Set(md)
	in.Metadata = md
	in.Size = int64(len(data))
	in.ChecksumCRC32C = crc
	in.ContentMD5 = base64.StdEncoding.EncodeToString(sum[:])
	in.SSE, in.SSEKMSKeyID, in.StorageClass = e.opts.SSE, e.opts.SSEKMSKeyID, e.opts.StorageClass
	var pr store.PutResult
	var err error
	for try := 0; ; try++ {
		w := e.watchWrite(ctx)
		pr, err = e.dst.Put(w.ctx, in, w.seekable(bytes.NewReader(data)))
		if err = w.done(err); err == nil {
			break
		}
		if try >= partRetries || ctx.Err() != nil || store.Permanent(err) {
			return pr, crc, &ObjectError{Op: "put", Key: in.Key, Err: err}
		}
		if serr := sleep(ctx, e.backoff(try+1)); serr != nil {
			return pr, crc, &ObjectError{Op: "put", Key: in.Key, Err: err}
		}
	}
	got := fullObjectCRC(pr.ChecksumCRC32C)
	switch {
	case got != "" && got != crc:
		err = fmt.Errorf("%w: destination crc32c %s != %s", store.ErrChecksum, got, crc)
	case got == "" && isPlainMD5(pr.ETag) && in.SSE != sseKMS && pr.ETag != hex.EncodeToString(sum[:]):
		err = fmt.Errorf("%w: destination etag %s != md5 %s", store.ErrChecksum, pr.ETag, hex.EncodeToString(sum[:]))
	}
	if err != nil {
		return pr, crc, e.discard(ctx, in.Key, &ObjectError{Op: "verify destination", Key: in.Key, Err: err})
	}
	return pr, crc, nil
}
