package transfer

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/ferry-dev/ferry/internal/store"
)

// serverCopyVerifiable reports whether a server-side copy of the source with
// attrs can be verified without reading the source: it has a plain MD5 ETag
// (single-part, not SSE-KMS) or states a full-object CRC32C. Other sources
// are copied through ferry instead, since an unverified copy has failed.
func serverCopyVerifiable(attrs store.Attrs) bool {
	return sourceMD5(attrs) != "" || fullObjectCRC(attrs.ChecksumCRC32C) != ""
}

// sourceMD5 is the source's MD5 (hex) when its ETag is one, else "".
func sourceMD5(attrs store.Attrs) string {
	if isPlainMD5(attrs.ETag) && attrs.SSE != sseKMS {
		return attrs.ETag
	}
	return ""
}

// serverCopy has the destination copy the object on the server, then
// verifies the result, cheapest check first:
//   - the CRC32C the destination reports equals the source's full-object one;
//   - else the destination ETag equals the source's plain MD5 ETag (unless
//     the copy is SSE-KMS encrypted, where the ETag is not the MD5);
//   - else ferry reads the destination back and compares its MD5 / CRC32C
//     with the source's (e.g. a bucket whose default encryption is KMS).
//
// A copy that fails verification is deleted and the error wraps
// store.ErrChecksum.
func (e *Engine) serverCopy(ctx context.Context, c store.Copier, attrs store.Attrs, dstKey string) (Result, error) {
	srcCRC := fullObjectCRC(attrs.ChecksumCRC32C)
	srcMD5 := sourceMD5(attrs)
	res := Result{
		Size:         attrs.Size,
		Method:       MethodServerCopy,
		CRC32C:       srcCRC,
		SrcETag:      attrs.ETag,
		SrcVersionID: attrs.VersionID,
	}
	in := e.putInput(attrs, dstKey, nil, srcCRC)
	pr, err := c.CopyFrom(ctx, e.src, attrs.Key, in)
	if err != nil {
		return res, &ObjectError{Op: "server copy", Key: attrs.Key, Err: err}
	}
	res.DstETag, res.DstVersionID = pr.ETag, pr.VersionID

	fail := func(reason string) (Result, error) {
		err := &ObjectError{Op: "verify server copy", Key: attrs.Key, Err: fmt.Errorf("%w: %s", store.ErrChecksum, reason)}
		return res, e.discard(ctx, dstKey, err)
	}
	if got := fullObjectCRC(pr.ChecksumCRC32C); srcCRC != "" && got != "" {
		if got != srcCRC {
			return fail(fmt.Sprintf("destination crc32c %s != source %s", got, srcCRC))
		}
		res.Verified = VerifiedCRC32C
		return res, nil
	}
	if srcMD5 != "" && e.opts.SSE != sseKMS && pr.ETag == srcMD5 {
		res.MD5Verified = true
		res.Verified = VerifiedMD5
		return res, nil
	}
	// Read the destination back.
	rc, dattrs, err := e.dst.Open(ctx, dstKey, 0, -1)
	if err != nil {
		return res, &ObjectError{Op: "verify server copy", Key: attrs.Key, Err: err}
	}
	defer rc.Close()
	crc, m := crc32.New(castagnoli), md5.New()
	n, err := io.Copy(io.MultiWriter(crc, m), rc)
	if err != nil {
		return res, &ObjectError{Op: "verify server copy", Key: attrs.Key, Err: err}
	}
	if n != attrs.Size || dattrs.Size != attrs.Size {
		return fail(fmt.Sprintf("destination size %d != source %d", n, attrs.Size))
	}
	gotCRC := crc32cBase64(crc.Sum32())
	if srcCRC != "" && gotCRC != srcCRC {
		return fail(fmt.Sprintf("destination crc32c %s != source %s", gotCRC, srcCRC))
	}
	if srcMD5 != "" {
		if got := hex.EncodeToString(m.Sum(nil)); got != srcMD5 {
			return fail(fmt.Sprintf("destination md5 %s != source etag %s", got, srcMD5))
		}
		res.MD5Verified = true
		res.Verified = VerifiedMD5
	}
	if srcCRC != "" {
		res.Verified = VerifiedCRC32C
	}
	res.CRC32C = gotCRC
	return res, nil
}

// verbatimCopy is the one-request server-side copy of a source whose listed
// ETag is a plain MD5: the destination copies the object as it is (content
// headers, user metadata and tags kept by the server) on condition that the
// source still has the listed ETag, and the copy's ETag, the MD5 of its
// bytes, must equal it. No Stat of the source is needed. Provenance is the
// ETag itself (the planner and [Engine.UpToDate] compare plain MD5 ETags
// directly) and the source ETag and version in the job's result and audit
// line; no ferry-src-* metadata is written (the source's own is kept as
// the server copies it).
//
// done is false, with nothing to report, when the object must take the
// general path instead (Stat, then [Engine.serverCopy]): the destination
// cannot copy verbatim or not in one request, the listed ETag is not a plain
// MD5, SSE-KMS is requested (its ETags are no MD5s), the source changed
// since it was listed, or the copy's ETag differs or is no MD5 (a KMS
// bucket default, say: the copy is deleted, and the engine stops trying
// this path).
func (e *Engine) verbatimCopy(ctx context.Context, c store.Copier, obj store.Object, dstKey string) (res Result, done bool, err error) {
	vc, ok := c.(store.VerbatimCopier)
	if !ok || !isPlainMD5(obj.ETag) || e.opts.SSE == sseKMS || e.noVerbatim.Load() {
		return Result{}, false, nil
	}
	in := store.PutInput{Key: dstKey, Size: obj.Size, SSE: e.opts.SSE, SSEKMSKeyID: e.opts.SSEKMSKeyID, StorageClass: e.opts.StorageClass}
	pr, err := vc.CopyVerbatim(ctx, e.src, obj.Key, obj.ETag, in)
	switch {
	case errors.Is(err, store.ErrChanged) || errors.Is(err, errors.ErrUnsupported):
		return Result{}, false, nil
	case err != nil:
		return Result{Size: obj.Size, Method: MethodServerCopy, SrcETag: obj.ETag},
			true, &ObjectError{Op: "server copy", Key: obj.Key, Err: err}
	case pr.ETag != obj.ETag || pr.SSE == sseKMS:
		// Unverified (a KMS-encrypted copy's ETag is no MD5: it proves
		// nothing): deleted, so nothing unverified stays if the general
		// path fails, and not tried again by this engine, as the
		// destination will likely do the same to every copy.
		e.noVerbatim.Store(true)
		if err := e.discard(ctx, dstKey, nil); err != nil {
			return Result{Size: obj.Size, Method: MethodServerCopy, SrcETag: obj.ETag},
				true, &ObjectError{Op: "server copy", Key: obj.Key, Err: err}
		}
		return Result{}, false, nil
	}
	return Result{
		Size:         obj.Size,
		Method:       MethodServerCopy,
		CRC32C:       fullObjectCRC(pr.ChecksumCRC32C),
		MD5Verified:  true,
		Verified:     VerifiedMD5,
		SrcETag:      obj.ETag,
		SrcVersionID: pr.SrcVersionID,
		DstETag:      pr.ETag,
		DstVersionID: pr.VersionID,
		verbatim:     true,
	}, true, nil
}
