package transfer

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/ferry-dev/ferry/internal/store"
)

// rangedCopy copies an object above the multipart threshold whose bytes have
// no whole-object MD5 to check (a multipart or SSE-KMS source ETag, or no
// ETag): every part is read with its own ranged Open, up to PartConcurrency
// parts of the object at once, each CRC32C'd into a pooled buffer and
// uploaded with that CRC32C, which the destination checks. The parts'
// CRC32Cs are combined into the full-object CRC32C, compared with the
// source's when it states one and with the destination's when it reports
// one. Every ranged read must come from the source version Stat saw (ETag,
// size, mtime).
//
// The bytes are checked against the source as [Engine.planFor] chose: a
// full-object CRC32C by the combination; any other full-object checksum,
// per-part checksums or the multipart ETag by feeding the parts, in order,
// to one hasher (see [inOrder]). The upload is completed only when they
// match; else it is aborted and the attempt fails with store.ErrChecksum.
//
// done is false, with nothing created at the destination, when the source
// turns out to have a plain MD5 ETag after all or a size other than the
// listing's: the caller then copies with one sequential GET, which checks
// the MD5.
func (e *Engine) rangedCopy(ctx context.Context, mp store.Multipart, obj store.Object, dstKey string) (res Result, done bool, err error) {
	attrs, err := e.src.Stat(ctx, obj.Key)
	if err != nil {
		return res, true, &ObjectError{Op: "stat source", Key: obj.Key, Err: err}
	}
	if attrs.Size != obj.Size || sourceMD5(attrs) != "" || attrs.Size <= e.opts.MultipartThreshold {
		return res, false, nil
	}
	size := attrs.Size
	partSize := PartSizeFor(size, e.opts.PartSize)
	res = Result{
		Size:         size,
		Method:       MethodMultipart,
		SrcETag:      attrs.ETag,
		SrcVersionID: attrs.VersionID,
	}
	pl, err := e.planFor(ctx, attrs)
	if err != nil {
		return res, true, err
	}
	if pl.method == Unverified && e.opts.RequireVerified {
		return res, true, unverified(obj.Key)
	}
	var tags map[string]string
	if attrs.TagCount != 0 {
		if tags, err = e.src.Tags(ctx, obj.Key); err != nil {
			return res, true, &ObjectError{Op: "get source tags", Key: obj.Key, Err: err}
		}
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

	v := newSeqVerifier(&pl)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(e.opts.PartConcurrency)
	loopErr := e.queueRangedParts(gctx, g, u, attrs, obj.Key, size, partSize, func(int64) bool { return false }, newInOrder(v, partCount(size, partSize)))
	if werr := g.Wait(); werr != nil {
		return res, true, werr // loopErr, if any, is gctx's cancellation by werr
	}
	if loopErr != nil {
		return res, true, loopErr
	}
	check := func() (string, error) {
		crc, err := combinedCRC(u.parts())
		if err != nil {
			return "", u.objErr("verify parts", err)
		}
		if srcCRC != "" && srcCRC != crc {
			return crc, u.objErr("verify source", fmt.Errorf("%w: crc32c of parts %s != source crc32c %s", store.ErrChecksum, crc, srcCRC))
		}
		if err := v.finish(); err != nil {
			return crc, u.objErr("verify source", err)
		}
		return crc, nil
	}
	crc, err := check()
	if errors.Is(err, store.ErrChecksum) {
		// Some part was read damaged: each is read again until two reads
		// agree (see rereadParts), and the checks made again.
		v = newSeqVerifier(&pl)
		if rerr := e.rereadParts(ctx, u, attrs, obj.Key, size, partSize, v); rerr != nil {
			return res, true, errors.Join(err, rerr)
		}
		crc, err = check()
	}
	if err != nil {
		return res, true, err
	}
	if pl.method == VerifiedLocalRead {
		if err := e.checkUnchanged(ctx, attrs, nil); err != nil {
			return res, true, err
		}
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
	res.Verified = pl.method
	return res, true, nil
}
