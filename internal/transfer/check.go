package transfer

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
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
	return upToDate(src, attrs), nil
}

func upToDate(src store.Object, dst store.Attrs) bool {
	if dst.Size != src.Size {
		return false
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
