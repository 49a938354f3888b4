package transfer

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"golang.org/x/sync/errgroup"

	"github.com/ferry-dev/ferry/internal/store"
)

// rangedCopy copies an object above the multipart threshold whose bytes have
// no whole-object MD5 to check (a multipart or SSE-KMS source ETag, or no
// ETag): every part is read with its own ranged Open, up to PartConcurrency
// parts of the object at once, each CRC32C'd into a pooled buffer and
// uploaded with that CRC32C, which the destination checks. The parts' CRC32Cs
// are combined into the full-object CRC32C, compared with the source's when
// it states one and with the destination's when it reports one, exactly as
// for a sequential read. Every ranged read must come from the source version
// the first one saw (ETag, size, mtime).
//
// The first ranged GET also serves as the source's attributes. done is false,
// with nothing created at the destination, when the source turns out to have
// a plain MD5 ETag after all or a size other than the listing's: the caller
// then copies with one sequential GET, which checks the MD5.
func (e *Engine) rangedCopy(ctx context.Context, mp store.Multipart, obj store.Object, dstKey string) (res Result, done bool, err error) {
	size := obj.Size
	partSize := PartSizeFor(size, e.opts.PartSize)
	n1 := min(partSize, size)
	first, err := e.mem.get(ctx, n1)
	if err != nil {
		return res, true, &ObjectError{Op: "upload part", Key: obj.Key, Err: err}
	}
	firstOwned := true
	defer func() {
		if firstOwned {
			first.release()
		}
	}()
	rc, attrs, err := e.src.Open(ctx, obj.Key, 0, n1)
	if err != nil {
		return res, true, &ObjectError{Op: "open source", Key: obj.Key, Err: err}
	}
	if attrs.Size != size || sourceMD5(attrs) != "" || attrs.Size <= e.opts.MultipartThreshold {
		rc.Close()
		return res, false, nil
	}
	h := crc32.New(castagnoli)
	err = first.fill(rc, n1, h)
	if err == nil {
		var b [1]byte
		if k, _ := io.ReadFull(rc, b[:]); k > 0 {
			err = fmt.Errorf("%w: range at 0 longer than %d bytes", store.ErrChecksum, n1)
		}
	}
	rc.Close()
	if err != nil {
		return res, true, &ObjectError{Op: "read source", Key: obj.Key, Err: err}
	}
	firstCRC := crc32cBase64(h.Sum32())
	var tags map[string]string
	if attrs.TagCount != 0 {
		if tags, err = e.src.Tags(ctx, obj.Key); err != nil {
			return res, true, &ObjectError{Op: "get source tags", Key: obj.Key, Err: err}
		}
	}
	res = Result{
		Size:         size,
		Method:       MethodMultipart,
		SrcETag:      attrs.ETag,
		SrcVersionID: attrs.VersionID,
	}
	srcCRC := fullObjectCRC(attrs.ChecksumCRC32C)
	in := e.putInput(attrs, dstKey, tags, srcCRC)
	in.PartSize = partSize
	uploadID, err := mp.CreateMultipart(ctx, in)
	if err != nil {
		return res, true, &ObjectError{Op: "create multipart", Key: obj.Key, Err: err}
	}
	u := e.newUpload(mp, UploadState{
		UploadID:   uploadID,
		DstKey:     dstKey,
		SrcKey:     obj.Key,
		SrcETag:    attrs.ETag,
		SrcSize:    size,
		SrcModTime: attrs.LastModified,
		PartSize:   partSize,
	}, -1)
	if err := u.save(ctx); err != nil {
		actx, cancel := cleanupContext(ctx)
		defer cancel()
		if aerr := u.abort(actx); aerr != nil {
			err = errors.Join(err, aerr)
		}
		return res, true, err
	}
	completed := false
	defer func() {
		if !completed {
			err = u.fail(ctx, err)
		}
	}()

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(e.opts.PartConcurrency)
	firstOwned = false
	g.Go(func() error {
		defer first.release()
		return u.uploadPart(gctx, 1, first, n1, firstCRC)
	})
	loopErr := e.queueRangedParts(gctx, g, u, attrs, obj.Key, size, partSize, func(i int64) bool { return i == 0 })
	if werr := g.Wait(); werr != nil {
		return res, true, werr // loopErr, if any, is gctx's cancellation by werr
	}
	if loopErr != nil {
		return res, true, loopErr
	}
	crc, err := combinedCRC(u.parts())
	if err != nil {
		return res, true, u.objErr("verify parts", err)
	}
	if srcCRC != "" && srcCRC != crc {
		return res, true, u.objErr("verify source", fmt.Errorf("%w: crc32c of parts %s != source crc32c %s", store.ErrChecksum, crc, srcCRC))
	}
	if err := ctx.Err(); err != nil {
		return res, true, u.objErr("complete multipart", err)
	}
	pr, err := u.complete(ctx)
	if err != nil {
		return res, true, err
	}
	completed = true
	res.CRC32C, res.DstETag, res.DstVersionID = crc, pr.ETag, pr.VersionID
	if got := fullObjectCRC(pr.ChecksumCRC32C); got != "" && got != crc {
		return res, true, e.discard(ctx, dstKey, u.objErr("verify destination", fmt.Errorf("%w: destination crc32c %s != %s", store.ErrChecksum, got, crc)))
	}
	return res, true, nil
}
