package transfer

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ferry-dev/ferry/internal/store"
)

// UpToDate reports whether the existing destination object dst already
// holds the version of the source object src, judged by the provenance
// ferry wrote on it (see [Provenance]). It Stats the destination once. The
// planner calls it when sizes are equal but ETags are not (a streamed copy
// never has the source's ETag); a false answer means "copy".
//
// Decision table, first matching row wins:
//
//	destination missing (ErrNotExist)                      → false
//	destination size != src.Size                           → false
//	both empty                                             → true
//	src.ETag a plain MD5 == destination ETag               → true (same bytes)
//	no or malformed provenance metadata                    → false
//	ferry-src-size != src.Size                             → false
//	src.ETag != "": ferry-src-etag == src.ETag              → true
//	src.ETag != "": ferry-src-etag != src.ETag              → false
//	src.ETag == "": ferry-src-etag != ""                    → false (written from a source with ETags)
//	src.ETag == "": ferry-src-mtime == src.LastModified     → true
//	src.ETag == "": ferry-src-mtime != src.LastModified     → false
//
// Mtimes are compared to the nanosecond, except that when either side has
// no sub-second part (a store reporting whole seconds) both are compared
// to the second. So a same-size rewrite of the source is detected by its
// ETag, or, for sources without ETags, by its mtime.
func (e *Engine) UpToDate(ctx context.Context, src store.Object, dst store.Object) (bool, error) {
	attrs, err := e.dst.Stat(ctx, dst.Key)
	if errors.Is(err, store.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, &ObjectError{Op: "stat destination", Key: src.Key, Err: err}
	}
	if e.opts.CompareChecksum {
		return e.sameChecksum(ctx, src, attrs)
	}
	return upToDate(src, attrs), nil
}

// sameChecksum is UpToDate with [Options.CompareChecksum] (--checksum):
// modification times are never looked at. First matching row wins:
//
//	destination size != src.Size                                → false
//	both empty                                                  → true
//	provenance: ferry copied this source ETag, verified then     → true
//	destination has no checksum (full-object CRC32C stated by
//	  the server or recorded by ferry, or a plain MD5 ETag)      → false
//	the source states the same kind of checksum (HEAD)           → equal?
//	otherwise the source is read and hashed                      → equal?
//
// So ferry copies, rather than skips, an object when there is nothing to
// compare checksums with (rclone would compare sizes only).
func (e *Engine) sameChecksum(ctx context.Context, src store.Object, dst store.Attrs) (bool, error) {
	if dst.Size != src.Size {
		return false, nil
	}
	if src.Size == 0 {
		return true, nil // empty: the same bytes
	}
	p, hasProv := ParseProvenance(dst.Metadata)
	if hasProv && src.ETag != "" && p.SrcETag == src.ETag && p.SrcSize == src.Size {
		return true, nil
	}
	dstCRC := fullObjectCRC(dst.ChecksumCRC32C)
	if dstCRC == "" && hasProv && p.SrcSize == dst.Size {
		dstCRC = fullObjectCRC(p.CRC32C)
	}
	dstMD5 := sourceMD5(dst)
	if dstCRC == "" && dstMD5 == "" {
		return false, nil
	}
	sattrs, err := e.src.Stat(ctx, src.Key)
	if err != nil {
		return false, &ObjectError{Op: "stat source", Key: src.Key, Err: err}
	}
	if sattrs.Size != dst.Size {
		return false, nil
	}
	if c := fullObjectCRC(sattrs.ChecksumCRC32C); dstCRC != "" && c != "" {
		return c == dstCRC, nil
	}
	if m := sourceMD5(sattrs); dstMD5 != "" && m != "" {
		return strings.EqualFold(m, dstMD5), nil
	}
	sum, err := e.sumSource(ctx, sattrs)
	if err != nil {
		return false, err
	}
	if sum.size != dst.Size {
		return false, nil
	}
	if dstCRC != "" {
		return sum.crc == dstCRC, nil
	}
	return strings.EqualFold(sum.md5, dstMD5), nil
}

// sumSource reads the version attrs of a source object (through the
// bandwidth limit) and returns its size, CRC32C and MD5.
func (e *Engine) sumSource(ctx context.Context, attrs store.Attrs) (objectSum, error) {
	r, _, err := e.openSource(ctx, attrs.Key, 0, -1, &attrs)
	if err != nil {
		return objectSum{}, err
	}
	defer r.Close()
	crc, m := crc32.New(castagnoli), md5.New()
	n, err := io.CopyBuffer(io.MultiWriter(crc, m), r, make([]byte, 32<<10))
	if err != nil {
		return objectSum{}, &ObjectError{Op: "checksum source", Key: attrs.Key, Err: err}
	}
	return objectSum{size: n, crc: crc32cBase64(crc.Sum32()), md5: hex.EncodeToString(m.Sum(nil))}, nil
}

func upToDate(src store.Object, dst store.Attrs) bool {
	if dst.Size != src.Size {
		return false
	}
	if src.Size == 0 {
		// Every empty object holds the same bytes, with or without the
		// provenance (which some servers drop on directory markers).
		return true
	}
	if isPlainMD5(src.ETag) && dst.ETag == src.ETag {
		// A verbatim server copy (no provenance metadata) or any other
		// copy that kept the MD5: the same bytes. The planner skips such
		// pairs already; this is for checks without a destination
		// listing (a redelivered work item).
		return true
	}
	p, ok := ParseProvenance(dst.Metadata)
	if !ok || p.SrcSize != src.Size {
		return false
	}
	if src.ETag != "" {
		return p.SrcETag == src.ETag
	}
	if p.SrcETag != "" {
		return false
	}
	return sameMtime(p.SrcModTime, src.LastModified)
}

func sameMtime(a, b time.Time) bool {
	if a.Equal(b) {
		return true
	}
	if a.Nanosecond() == 0 || b.Nanosecond() == 0 {
		return a.Truncate(time.Second).Equal(b.Truncate(time.Second))
	}
	return false
}

// Verify compares the source object src with the destination object dst
// and returns "" when they hold the same bytes, else a reason such as
// "size 10 != 12" or "content differs (crc32c X != Y)". Equal plain MD5
// ETags prove identity without reading; otherwise both objects are read
// (concurrently, through a small fixed buffer) and their CRC32Cs compared.
// Whether dst exists is the caller's concern: reading a missing object
// returns an error wrapping store.ErrNotExist.
func (e *Engine) Verify(ctx context.Context, src store.Object, dst store.Object) (mismatch string, err error) {
	if src.Size != dst.Size {
		return fmt.Sprintf("size %d != %d", src.Size, dst.Size), nil
	}
	if isPlainMD5(src.ETag) && src.ETag == dst.ETag {
		return "", nil
	}
	var srcSum, dstSum objectSum
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		srcSum, err = sumObject(gctx, e.src, src.Key)
		if err != nil {
			return &ObjectError{Op: "verify read source", Key: src.Key, Err: err}
		}
		return nil
	})
	g.Go(func() (err error) {
		dstSum, err = sumObject(gctx, e.dst, dst.Key)
		if err != nil {
			return &ObjectError{Op: "verify read destination", Key: src.Key, Err: err}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return "", err
	}
	switch {
	case srcSum.size != dstSum.size:
		return fmt.Sprintf("size %d != %d", srcSum.size, dstSum.size), nil
	case srcSum.crc != dstSum.crc:
		return fmt.Sprintf("content differs (crc32c %s != %s)", srcSum.crc, dstSum.crc), nil
	}
	return "", nil
}

type objectSum struct {
	size int64
	crc  string
	md5  string // hex; only from sumSource
}

func sumObject(ctx context.Context, s store.Store, key string) (objectSum, error) {
	rc, _, err := s.Open(ctx, key, 0, -1)
	if err != nil {
		return objectSum{}, err
	}
	defer rc.Close()
	h := crc32.New(castagnoli)
	n, err := io.CopyBuffer(h, rc, make([]byte, 32<<10))
	if err != nil {
		return objectSum{}, err
	}
	return objectSum{size: n, crc: crc32cBase64(h.Sum32())}, nil
}
