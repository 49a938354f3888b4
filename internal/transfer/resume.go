package transfer

import (
	"cmp"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ferry-dev/ferry/internal/store"
)

// ErrDrain is the cause with which a caller cancels the context of running
// copies (context.WithCancelCause) to stop them gracefully, meaning to run
// them again later. A multipart upload such a copy leaves unfinished is kept
// at the destination, its state saved with [Options.Resumer], so the next
// Copy of the object continues it. Any other cancellation (no cause, or
// another cause), and any failure, aborts the upload and deletes its state.
// Without a Resumer, ErrDrain is like any other cause.
var ErrDrain = errors.New("transfer: draining (to resume later)")

// UploadState is what a resumable multipart copy records: enough to continue
// the upload in another process, and to tell whether the source is still the
// version it was started from.
type UploadState struct {
	// UploadID is the destination's ID of the multipart upload.
	UploadID string
	// DstKey is the destination key, the key of the state in the Resumer.
	DstKey string
	// SrcKey, SrcETag, SrcSize and SrcModTime identify the source version
	// being copied (as Open or Stat reported it).
	SrcKey     string
	SrcETag    string
	SrcSize    int64
	SrcModTime time.Time
	// PartSize is the size of every part but the last. A resumed upload
	// keeps its own part size, whatever [Options.PartSize] is now.
	PartSize int64
	// Parts are the parts uploaded so far, in any order, as the store
	// returned them (CompleteMultipart needs the ETags) with Number, Size
	// and the base64 CRC32C ferry computed from the bytes it read and the
	// destination checked.
	Parts []store.Part
}

// Resumer persists the progress of multipart uploads so that a copy
// interrupted by [ErrDrain], or by the end of the process, can be continued
// by another [Engine], in this process or another. States are keyed by the
// destination key; an Engine never runs two copies to one destination key at
// once, and neither may its caller. Implementations must be safe for
// concurrent use.
type Resumer interface {
	// Load returns the state saved for dstKey; ok is false when there is
	// none. The caller may modify the returned state.
	Load(ctx context.Context, dstKey string) (st UploadState, ok bool, err error)
	// Save replaces the state of st.DstKey. It is called after
	// CreateMultipart and as parts complete (coalesced while a Save is
	// running, never concurrently for one key), each time with all parts
	// completed so far. Save must not modify st.Parts; it may retain it.
	Save(ctx context.Context, st UploadState) error
	// Delete removes the state of dstKey, after the upload completed or was
	// aborted. Deleting a missing state is not an error.
	Delete(ctx context.Context, dstKey string) error
}

// AbortUpload aborts the multipart upload st records, for a caller cleaning
// up the uploads of an interrupted job, and deletes the state from
// [Options.Resumer] (when set, and it still records this upload). An upload
// that no longer exists counts as aborted for stores that say so (S3, mem).
// It fails when the destination cannot write in parts.
func (e *Engine) AbortUpload(ctx context.Context, st UploadState) error {
	mp, ok := e.dst.(store.Multipart)
	if !ok {
		return &ObjectError{Op: "abort multipart", Key: st.SrcKey, Err: fmt.Errorf("%s has no multipart uploads", e.dst)}
	}
	if err := mp.AbortMultipart(ctx, st.DstKey, st.UploadID); err != nil {
		return &ObjectError{Op: "abort multipart", Key: st.SrcKey, Err: err}
	}
	r := e.opts.Resumer
	if r == nil {
		return nil
	}
	cur, ok, err := r.Load(ctx, st.DstKey)
	if err == nil && ok && cur.UploadID == st.UploadID {
		err = r.Delete(ctx, st.DstKey)
	}
	if err != nil {
		return &ObjectError{Op: "delete upload state", Key: st.SrcKey, Err: err}
	}
	return nil
}

// keepUpload reports whether a multipart upload that failed with err under
// ctx is kept for a later run rather than aborted: only with a Resumer,
// when the copy was drained ([ErrDrain]), and when err says nothing against
// the parts uploaded so far (a checksum mismatch may mean the bytes were
// read corrupt; a permanent error will not go away).
func (e *Engine) keepUpload(ctx context.Context, err error) bool {
	return e.opts.Resumer != nil && errors.Is(context.Cause(ctx), ErrDrain) &&
		!errors.Is(err, store.ErrChecksum) && !store.Permanent(err)
}

// upload is one multipart upload in progress. It collects the parts as they
// complete and, with a Resumer, records them.
type upload struct {
	e          *Engine
	mp         store.Multipart
	srcKey     string
	dstKey, id string
	gone       atomic.Bool // the destination said the upload does not exist
	mu         sync.Mutex  // guards st
	st         UploadState // Parts in completion order
	saveMu     sync.Mutex  // serializes Saves; guards saved
	saved      int         // len(st.Parts) at the last Save, -1 before the first
}

func (e *Engine) newUpload(mp store.Multipart, st UploadState, saved int) *upload {
	st.Parts = slices.Clip(st.Parts) // appending must not write into the Resumer's array
	return &upload{e: e, mp: mp, srcKey: st.SrcKey, dstKey: st.DstKey, id: st.UploadID, st: st, saved: saved}
}

func (u *upload) objErr(op string, err error) error {
	return &ObjectError{Op: op, Key: u.srcKey, Err: err}
}

// save records the parts completed so far with the Resumer, unless a Save
// of as many parts is already done (so Saves coalesce while one runs).
func (u *upload) save(ctx context.Context) error {
	r := u.e.opts.Resumer
	if r == nil {
		return nil
	}
	u.saveMu.Lock()
	defer u.saveMu.Unlock()
	u.mu.Lock()
	st := u.st
	st.Parts = slices.Clip(st.Parts)
	u.mu.Unlock()
	if len(st.Parts) == u.saved {
		return nil
	}
	if err := r.Save(ctx, st); err != nil {
		return u.objErr("save upload state", err)
	}
	u.saved = len(st.Parts)
	return nil
}

// partRetries is how many times the upload of one part is retried, from its
// buffer, after a failure worth retrying (a reset connection, a 5xx the
// store's client gave up on, bytes damaged on the way), before the copy's
// attempt fails. It does not spend the object's Attempts.
const partRetries = 2

// writeRetries is how many times a part or buffered Put that failed with
// err is sent again from its buffer: partRetries, or maxSourceRereads when
// the destination rejected the bytes as damaged on the way
// (store.ErrChecksum: BadDigest, a checksum mismatch), which resending
// the buffer cures.
func writeRetries(err error) int {
	if errors.Is(err, store.ErrChecksum) {
		return maxSourceRereads
	}
	return partRetries
}

// uploadPart uploads part num (n bytes in buf whose CRC32C is want), checks
// the CRC32C the store reports, and records the part. A failure worth
// retrying is retried up to partRetries times.
func (u *upload) uploadPart(ctx context.Context, num int32, buf *buffer, n int64, want string) error {
	op := fmt.Sprintf("upload part %d", num)
	var p store.Part
	for try := 0; ; try++ {
		var err error
		w := u.e.watchWrite(ctx)
		p, err = u.mp.UploadPart(w.ctx, u.dstKey, u.id, num, w.seekable(buf.reader()), n, want)
		err = w.done(err)
		if err == nil {
			if got := fullObjectCRC(p.ChecksumCRC32C); got != "" && got != want {
				err = fmt.Errorf("%w: part crc32c %s != %s", store.ErrChecksum, got, want)
			}
		}
		if err == nil {
			break
		}
		if errors.Is(err, store.ErrNotExist) {
			u.gone.Store(true)
		}
		if try >= writeRetries(err) || ctx.Err() != nil || store.Permanent(err) {
			return u.objErr(op, err)
		}
		u.e.opts.retried("destination", "part")
		if serr := sleep(ctx, u.e.backoff(try+1)); serr != nil {
			return u.objErr(op, err)
		}
	}
	p.Number, p.Size, p.ChecksumCRC32C = num, n, want
	u.mu.Lock()
	// A part uploaded again (see rereadParts) replaces its record.
	u.st.Parts = slices.DeleteFunc(u.st.Parts, func(q store.Part) bool { return q.Number == num })
	u.st.Parts = append(u.st.Parts, p)
	u.mu.Unlock()
	if u.e.opts.Resumer == nil {
		return nil
	}
	// The part is uploaded: record it even while the copy is being drained.
	sctx, cancel := cleanupContext(ctx)
	defer cancel()
	return u.save(sctx)
}

// parts returns the completed parts in order of number.
func (u *upload) parts() []store.Part {
	u.mu.Lock()
	defer u.mu.Unlock()
	ps := slices.Clone(u.st.Parts)
	slices.SortFunc(ps, func(a, b store.Part) int { return cmp.Compare(a.Number, b.Number) })
	return ps
}

// complete assembles the parts and, with a Resumer, deletes the state. A
// state left behind by a failed Delete is harmless: it names an upload that
// no longer exists, so a later copy starts over.
func (u *upload) complete(ctx context.Context) (store.PutResult, error) {
	parts := u.parts()
	pr, err := u.mp.CompleteMultipart(ctx, u.dstKey, u.id, parts)
	if err != nil && errors.Is(err, store.ErrNotExist) {
		// The store's client may have sent the request again after an
		// answer that never arrived, and the first one completed it.
		if done, ok := u.completedBefore(ctx, parts); ok {
			pr, err = done, nil
		}
	}
	if err != nil {
		if errors.Is(err, store.ErrNotExist) {
			u.gone.Store(true)
		}
		return pr, u.objErr("complete multipart", err)
	}
	if r := u.e.opts.Resumer; r != nil {
		dctx, cancel := cleanupContext(ctx)
		defer cancel()
		_ = r.Delete(dctx, u.dstKey)
	}
	return pr, nil
}

// completedBefore reports whether the destination object is the one these
// parts complete: its size is theirs and its ETag the multipart ETag of
// their ETags (the MD5 of their MD5s, "-" and their number), as S3 and
// MinIO compute it. It is asked when CompleteMultipart answers that the
// upload does not exist.
func (u *upload) completedBefore(ctx context.Context, parts []store.Part) (store.PutResult, bool) {
	h := md5.New()
	var size int64
	for _, p := range parts {
		b, err := hex.DecodeString(strings.Trim(p.ETag, `"`))
		if err != nil || len(b) != md5.Size {
			return store.PutResult{}, false
		}
		h.Write(b)
		size += p.Size
	}
	want := hex.EncodeToString(h.Sum(nil)) + "-" + strconv.Itoa(len(parts))
	a, err := u.e.dst.Stat(ctx, u.dstKey)
	if err != nil || a.Size != size || !strings.EqualFold(strings.Trim(a.ETag, `"`), want) {
		return store.PutResult{}, false
	}
	return store.PutResult{ETag: a.ETag, VersionID: a.VersionID, ChecksumCRC32C: a.ChecksumCRC32C}, true
}

// fail ends an upload that failed with err (after its part uploads have
// returned): it keeps it, saving its state, when the copy was drained (see
// [Engine.keepUpload]), else aborts it and deletes its state. Cleanup uses
// a fresh context, so a cancelled copy still cleans up. It returns err,
// joined with any cleanup failure.
func (u *upload) fail(ctx context.Context, err error) error {
	cctx, cancel := cleanupContext(ctx)
	defer cancel()
	if u.e.keepUpload(ctx, err) {
		serr := u.save(cctx)
		if serr == nil {
			return err
		}
		if u.saved >= 0 {
			// An older state names the upload: it can be resumed or
			// aborted later.
			return errors.Join(err, serr)
		}
		err = errors.Join(err, serr)
	}
	if aerr := u.abort(cctx); aerr != nil {
		return errors.Join(err, aerr)
	}
	return err
}

// abort aborts the upload and deletes its state. When the abort fails the
// state is kept, so the upload can still be found and aborted later.
func (u *upload) abort(ctx context.Context) error {
	if err := u.mp.AbortMultipart(ctx, u.dstKey, u.id); err != nil {
		return u.objErr("abort multipart", err)
	}
	return u.forget(ctx)
}

// forget deletes the state of the upload, if any.
func (u *upload) forget(ctx context.Context) error {
	if r := u.e.opts.Resumer; r != nil && u.saved >= 0 {
		if err := r.Delete(ctx, u.dstKey); err != nil {
			return u.objErr("delete upload state", err)
		}
	}
	return nil
}

// resume continues the multipart upload the Resumer recorded for dstKey
// when there is one and it fits the current source. done is false when the
// caller must copy from scratch: there was no state, or it was stale (its
// upload has been aborted and the state deleted), or the upload had
// vanished at the destination (the state has been deleted).
func (e *Engine) resume(ctx context.Context, mp store.Multipart, obj store.Object, dstKey string) (res Result, done bool, err error) {
	st, ok, err := e.opts.Resumer.Load(ctx, dstKey)
	if err != nil {
		return res, true, &ObjectError{Op: "load upload state", Key: obj.Key, Err: err}
	}
	if !ok {
		return res, false, nil
	}
	if st.DstKey != dstKey {
		return res, true, &ObjectError{Op: "load upload state", Key: obj.Key, Err: fmt.Errorf("state of %q is for %q", dstKey, st.DstKey)}
	}
	u := e.newUpload(mp, st, len(st.Parts))
	attrs, err := e.src.Stat(ctx, obj.Key)
	if err != nil {
		err = &ObjectError{Op: "stat source", Key: obj.Key, Err: err}
		if store.Permanent(err) {
			// The source is gone: so is the point of the upload.
			err = u.fail(ctx, err)
		}
		return res, true, err
	}
	if why := stale(st, obj.Key, attrs); why != "" {
		if st.UploadID == "" {
			err = u.forget(ctx)
		} else {
			err = u.abort(ctx)
		}
		if err != nil {
			return res, true, err
		}
		return res, false, nil
	}
	if pl, ok := mp.(store.PartLister); ok {
		listed, err := pl.ListParts(ctx, dstKey, st.UploadID)
		if errors.Is(err, store.ErrNotExist) {
			// Expired, or aborted elsewhere: start over.
			if err := u.forget(ctx); err != nil {
				return res, true, err
			}
			return res, false, nil
		}
		if err != nil {
			return res, true, &ObjectError{Op: "list parts", Key: obj.Key, Err: err}
		}
		u.confirmParts(listed)
	}
	method := e.resumedMethod(attrs)
	if method == Unverified && e.opts.RequireVerified {
		// The skipped parts cannot be checked against the source now;
		// a fresh copy reads them all (or is refused).
		if err := u.abort(ctx); err != nil {
			return res, true, err
		}
		return res, false, nil
	}
	res, err = e.continueUpload(ctx, u, attrs, method)
	if u.gone.Load() {
		// Expired, or aborted by someone else: start over, unless the
		// copy is being stopped.
		cctx, cancel := cleanupContext(ctx)
		defer cancel()
		if ferr := u.forget(cctx); ferr != nil {
			return res, true, errors.Join(err, ferr)
		}
		if ctx.Err() != nil {
			return res, true, err
		}
		return Result{}, false, nil
	}
	return res, true, err
}

// confirmParts keeps, of the recorded parts, those the destination lists
// with the same size and ETag; the others are uploaded again. (A part the
// destination holds but the state does not name was uploaded when the
// copy was stopped before recording it: it is uploaded again, replacing it.)
func (u *upload) confirmParts(listed []store.Part) {
	on := make(map[int32]store.Part, len(listed))
	for _, p := range listed {
		on[p.Number] = p
	}
	u.saveMu.Lock() // save's order: saveMu, then mu
	defer u.saveMu.Unlock()
	u.mu.Lock()
	defer u.mu.Unlock()
	kept := u.st.Parts[:0:0]
	for _, p := range u.st.Parts {
		if l, ok := on[p.Number]; ok && l.Size == p.Size && strings.EqualFold(l.ETag, p.ETag) {
			kept = append(kept, p)
		}
	}
	if len(kept) != len(u.st.Parts) {
		u.saved = len(kept) // the next part saves the state without the others
	}
	u.st.Parts = kept
}

// stale returns why the state st cannot be continued as a copy of the
// source key with attrs, or "" when it can: the source must be the version
// the upload was started from (ETag, size and mtime, compared like
// [Engine.UpToDate] does), and the parts must be parts of that upload.
func stale(st UploadState, key string, attrs store.Attrs) string {
	switch {
	case st.UploadID == "":
		return "no upload ID"
	case st.SrcKey != key:
		return fmt.Sprintf("source key %q, now %q", st.SrcKey, key)
	case st.SrcETag != attrs.ETag:
		return fmt.Sprintf("source etag %q, now %q", st.SrcETag, attrs.ETag)
	case st.SrcSize != attrs.Size:
		return fmt.Sprintf("source size %d, now %d", st.SrcSize, attrs.Size)
	case !sameMtime(st.SrcModTime, attrs.LastModified):
		return fmt.Sprintf("source mtime %v, now %v", st.SrcModTime, attrs.LastModified)
	case st.PartSize <= 0 || partCount(st.SrcSize, st.PartSize) > MaxParts:
		return fmt.Sprintf("part size %d", st.PartSize)
	}
	nparts := partCount(st.SrcSize, st.PartSize)
	seen := make(map[int32]bool, len(st.Parts))
	for _, p := range st.Parts {
		_, crcOK := parseCRC32C(p.ChecksumCRC32C)
		switch {
		case p.Number < 1 || int64(p.Number) > nparts || seen[p.Number]:
			return fmt.Sprintf("part number %d", p.Number)
		case p.Size != partSizeOf(st.SrcSize, st.PartSize, p.Number):
			return fmt.Sprintf("part %d of %d bytes", p.Number, p.Size)
		case !crcOK:
			return fmt.Sprintf("part %d without crc32c", p.Number)
		}
		seen[p.Number] = true
	}
	return ""
}

// partSizeOf is the size of part n (from 1) of size bytes in parts of
// partSize.
func partSizeOf(size, partSize int64, n int32) int64 {
	return min(partSize, size-int64(n-1)*partSize)
}

// continueUpload uploads the parts u does not have yet, each read from the
// source with a ranged Open, then completes the upload and verifies it by
// CRC32C (see "Resuming" in the package documentation).
func (e *Engine) continueUpload(ctx context.Context, u *upload, attrs store.Attrs, method string) (res Result, err error) {
	size, partSize := attrs.Size, u.st.PartSize
	nparts := partCount(size, partSize)
	have := make([]bool, nparts)
	for _, p := range u.st.Parts {
		have[p.Number-1] = true
	}
	res = Result{
		Size:         size,
		Method:       MethodMultipart,
		SrcETag:      attrs.ETag,
		SrcVersionID: attrs.VersionID,
		ResumedParts: len(u.st.Parts),
	}
	completed := false
	defer func() {
		if !completed && !u.gone.Load() {
			err = u.fail(ctx, err)
		}
	}()

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(e.opts.PartConcurrency)
	loopErr := e.queueRangedParts(gctx, g, u, attrs, u.srcKey, size, partSize, func(i int64) bool { return have[i] }, nil)
	if werr := g.Wait(); werr != nil {
		return res, werr // loopErr, if any, is gctx's cancellation by werr
	}
	if loopErr != nil {
		return res, loopErr
	}

	parts := u.parts()
	crc, err := combinedCRC(parts)
	if err != nil {
		return res, u.objErr("verify parts", err)
	}
	if want := fullObjectCRC(attrs.ChecksumCRC32C); want != "" && want != crc {
		return res, u.objErr("verify source", fmt.Errorf("%w: crc32c of parts %s != source crc32c %s", store.ErrChecksum, crc, want))
	}
	if method == VerifiedLocalRead {
		if err := e.checkUnchanged(ctx, attrs, nil); err != nil {
			return res, err
		}
	}
	if err := ctx.Err(); err != nil {
		return res, u.objErr("complete multipart", err)
	}
	pr, err := u.complete(ctx)
	if err != nil {
		return res, err
	}
	completed = true
	res.CRC32C, res.DstETag, res.DstVersionID = crc, pr.ETag, pr.VersionID
	if err := e.verifyAssembled(ctx, u, pr, crc, size); err != nil {
		return res, err
	}
	res.Verified = method
	return res, nil
}

// resumedMethod is how a resumed copy of the source version attrs is
// verified: only a full-object CRC32C can be checked without reading the
// parts an earlier run uploaded (combined from their CRC32Cs); a local
// source was read locally by that run too. Else it is unverified.
func (e *Engine) resumedMethod(attrs store.Attrs) string {
	switch {
	case fullObjectCRC(attrs.ChecksumCRC32C) != "":
		return VerifiedCRC32C
	case e.readsLocally():
		return VerifiedLocalRead
	}
	return Unverified
}

// readPart reads n bytes at off of the source key into buf with a ranged
// Open and returns their base64 CRC32C. The source must still be the
// version attrs describe.
func (e *Engine) readPart(ctx context.Context, attrs store.Attrs, key string, off, n int64, buf *buffer) (string, error) {
	rc, _, err := e.openSource(ctx, key, off, n, &attrs)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	h := crc32.New(castagnoli)
	if err := buf.fill(rc, n, h); err != nil {
		return "", &ObjectError{Op: "read source", Key: key, Err: err}
	}
	var b [1]byte
	if k, _ := io.ReadFull(rc, b[:]); k > 0 {
		return "", &ObjectError{Op: "read source", Key: key, Err: fmt.Errorf("%w: range at %d longer than %d bytes", store.ErrChecksum, off, n)}
	}
	return crc32cBase64(h.Sum32()), nil
}

// combinedCRC is the full-object CRC32C of parts (in order, with their
// sizes and CRC32Cs), combined without the bytes.
func combinedCRC(parts []store.Part) (string, error) {
	var crc uint32
	for i, p := range parts {
		c, ok := parseCRC32C(p.ChecksumCRC32C)
		if !ok {
			return "", fmt.Errorf("part %d has no crc32c", p.Number)
		}
		if i == 0 {
			crc = c
		} else {
			crc = crc32cCombine(crc, c, p.Size)
		}
	}
	return crc32cBase64(crc), nil
}

// verifyAssembled checks that the object a resumed upload completed holds
// the parts as recorded: its full-object CRC32C, as the destination reports
// it (or, when it reports none, as read back), must equal crc, combined from
// the parts'. A mismatch deletes the object.
func (e *Engine) verifyAssembled(ctx context.Context, u *upload, pr store.PutResult, crc string, size int64) error {
	got := fullObjectCRC(pr.ChecksumCRC32C)
	if got == "" {
		sum, err := sumObject(ctx, e.dst, u.dstKey)
		if err != nil {
			return e.discard(ctx, u.dstKey, u.objErr("verify destination", err))
		}
		if sum.size != size {
			return e.discard(ctx, u.dstKey, u.objErr("verify destination", fmt.Errorf("%w: destination size %d != %d", store.ErrChecksum, sum.size, size)))
		}
		got = sum.crc
	}
	if got != crc {
		return e.discard(ctx, u.dstKey, u.objErr("verify destination", fmt.Errorf("%w: destination crc32c %s != crc32c of parts %s", store.ErrChecksum, got, crc)))
	}
	return nil
}

// queueRangedParts reads each part of the object not yet done (skip) with a
// ranged GET into a pooled buffer and uploads it, in g; then, when order is
// not nil, feeds the part's bytes to its verifier in order. It returns the
// error that stopped it from queueing more parts (gctx's end, no buffer
// budget); the parts' own errors come from g.Wait.
func (e *Engine) queueRangedParts(gctx context.Context, g *errgroup.Group, u *upload, attrs store.Attrs, key string, size, partSize int64, skip func(i int64) bool, order *inOrder) error {
	for i := range partCount(size, partSize) {
		if skip(i) {
			order.skip(i)
			continue
		}
		if err := gctx.Err(); err != nil {
			return u.objErr("upload part", err)
		}
		off, n := i*partSize, min(partSize, size-i*partSize)
		buf, err := e.mem.get(gctx, n)
		if err != nil {
			return u.objErr("upload part", err)
		}
		num := int32(i + 1)
		g.Go(func() error {
			defer buf.release()
			want, err := e.readPart(gctx, attrs, key, off, n, buf)
			if err != nil {
				return err
			}
			if err := u.uploadPart(gctx, num, buf, n, want); err != nil {
				return err
			}
			if err := order.feed(gctx, i, buf); err != nil {
				return u.objErr("verify source", err)
			}
			return nil
		})
	}
	return nil
}

// rereadParts is what a copy does when the bytes of its uploaded parts, as
// first read, failed the check against the source: one part at least was
// read damaged (a flipped bit), and a whole-object check cannot tell which.
// Each part is read again, in order, until two reads of it agree — the
// read that was uploaded counts as one — up to maxSourceRereads times; a
// part whose agreed bytes are not those uploaded is uploaded again. The
// agreed bytes are written to feed, in order, so the caller can check
// them against the source again before completing. The re-reads do not
// spend the object's attempts; a part no two reads of which agree fails
// the attempt with store.ErrChecksum.
func (e *Engine) rereadParts(ctx context.Context, u *upload, attrs store.Attrs, key string, size, partSize int64, feed io.Writer) error {
	uploaded := map[int32]string{}
	for _, p := range u.parts() {
		uploaded[p.Number] = p.ChecksumCRC32C
	}
	for i := range partCount(size, partSize) {
		off, n := i*partSize, min(partSize, size-i*partSize)
		if err := e.agreePart(ctx, u, attrs, key, int32(i+1), off, n, uploaded[int32(i+1)], feed); err != nil {
			return err
		}
	}
	return nil
}

// agreePart reads part num (bytes [off, off+n)) until two reads agree, the
// upload of CRC32C have counting as one, uploads the agreed bytes when they
// differ from those, and writes them to feed.
func (e *Engine) agreePart(ctx context.Context, u *upload, attrs store.Attrs, key string, num int32, off, n int64, have string, feed io.Writer) error {
	buf, err := e.mem.get(ctx, n)
	if err != nil {
		return u.objErr("verify source", err)
	}
	defer buf.release()
	seen := map[string]int{}
	if have != "" {
		seen[have] = 1
	}
	for read := 0; read <= maxSourceRereads; read++ {
		e.opts.retried("source", "checksum")
		crc, err := e.readPart(ctx, attrs, key, off, n, buf)
		if err != nil {
			return err
		}
		if seen[crc]++; seen[crc] < 2 {
			continue
		}
		if crc != have {
			if err := u.uploadPart(ctx, num, buf, n, crc); err != nil {
				return err
			}
		}
		buf.writeTo(feed)
		return nil
	}
	return u.objErr("verify source", fmt.Errorf("%w: part %d: no two of %d reads agree", store.ErrChecksum, num, maxSourceRereads+2))
}
