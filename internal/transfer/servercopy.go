package transfer

import (
	"context"
	"crypto/md5"
	"encoding/hex"
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
