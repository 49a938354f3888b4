package transfer

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"

	"golang.org/x/sync/errgroup"

	"github.com/ferry-dev/ferry/internal/store"
)

// source is an open source object: the stream from its single GET and the
// attributes that GET returned (the truth, even if the listing differs).
type source struct {
	key   string
	rc    io.ReadCloser
	attrs store.Attrs
	tags  map[string]string
	// md5 is non-nil when the ETag is a plain MD5 of the bytes: the
	// stream's MD5 is computed and compared with it.
	md5 hash.Hash
	// crc is the full-object CRC32C of the stream as read.
	crc hash.Hash32
	// plan says how the bytes are checked against the source; v checks
	// what md5 and crc do not (nil when nothing else).
	plan plan
	v    *seqVerifier
	// recheck, when set, runs once the bytes were read and checked: it
	// fails when the source changed meanwhile (a local file).
	recheck func() error
}

// hash writes bytes read from the stream to every hash of the source.
func (s *source) hash(p []byte) {
	s.crc.Write(p)
	if s.md5 != nil {
		s.md5.Write(p)
	}
	s.v.Write(p)
}

func (s *source) objErr(op string, err error) error {
	return &ObjectError{Op: op, Key: s.key, Err: err}
}

// verify compares the bytes read (all of them) with what the source states:
// its plain MD5 ETag and its full-object CRC32C, when known. A mismatch
// means ferry read corrupt bytes: store.ErrChecksum, worth retrying.
func (s *source) verify() (crc string, md5OK bool, err error) {
	crc = crc32cBase64(s.crc.Sum32())
	if s.md5 != nil {
		if got := hex.EncodeToString(s.md5.Sum(nil)); got != s.attrs.ETag {
			return crc, false, s.objErr("verify source", fmt.Errorf("%w: md5 %s != etag %s", store.ErrChecksum, got, s.attrs.ETag))
		}
	}
	if want := fullObjectCRC(s.attrs.ChecksumCRC32C); want != "" && want != crc {
		return crc, false, s.objErr("verify source", fmt.Errorf("%w: crc32c %s != source crc32c %s", store.ErrChecksum, crc, want))
	}
	if err := s.v.finish(); err != nil {
		return crc, false, s.objErr("verify source", err)
	}
	if s.recheck != nil {
		if err := s.recheck(); err != nil {
			return crc, false, err
		}
	}
	return crc, s.md5 != nil, nil
}

// expectEOF checks that the stream ends where the source's size says.
func (s *source) expectEOF() error {
	var b [1]byte
	n, err := io.ReadFull(s.rc, b[:])
	if n > 0 {
		return s.objErr("read source", fmt.Errorf("%w: more than %d bytes", store.ErrChecksum, s.attrs.Size))
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return s.objErr("read source", err)
	}
	return nil
}

// open opens the whole source object with one GET (resumed from where it
// stopped should the connection fail, see [sourceReader]) and plans its
// verification, unless p, a plan for the same version, is given.
func (e *Engine) open(ctx context.Context, key string, p *plan) (*source, error) {
	rc, attrs, err := e.openSource(ctx, key, 0, -1, nil)
	if err != nil {
		return nil, err
	}
	s := &source{key: key, rc: rc, attrs: attrs, crc: crc32.New(castagnoli)}
	if isPlainMD5(attrs.ETag) && attrs.SSE != sseKMS {
		s.md5 = md5.New()
	}
	if p == nil {
		pl, err := e.planFor(ctx, attrs)
		if err != nil {
			rc.Close()
			return nil, err
		}
		p = &pl
	}
	s.plan = *p
	s.v = newSeqVerifier(&s.plan)
	if s.plan.method == VerifiedLocalRead {
		s.recheck = func() error { return e.checkUnchanged(ctx, attrs, rc) }
	}
	return s, nil
}

// streamCopy copies the bytes through ferry: one GET of the source, then a
// Put, a multipart upload, or (destination without Multipart) a streamed Put.
// With a Resumer, an object the listing says is above the threshold first
// tries to continue an upload an earlier run left (see [Engine.resume]).
func (e *Engine) streamCopy(ctx context.Context, obj store.Object, dstKey string) (Result, error) {
	if mp, ok := e.dst.(store.Multipart); ok && e.opts.Resumer != nil && obj.Size > e.opts.MultipartThreshold {
		if res, done, err := e.resume(ctx, mp, obj, dstKey); done {
			return res, err
		}
	}
	if mp, ok := e.dst.(store.Multipart); ok && obj.Size > e.opts.MultipartThreshold && !isPlainMD5(obj.ETag) {
		if res, done, err := e.rangedCopy(ctx, mp, obj, dstKey); done {
			return res, err
		}
	}
	src, err := e.open(ctx, obj.Key, nil)
	if err != nil {
		return Result{}, err
	}
	defer func() { src.rc.Close() }() // putStreaming may replace src.rc
	if src.plan.method == Unverified && e.opts.RequireVerified {
		return Result{Size: src.attrs.Size, SrcETag: src.attrs.ETag, SrcVersionID: src.attrs.VersionID}, unverified(obj.Key)
	}
	if src.attrs.TagCount != 0 {
		tags, err := e.src.Tags(ctx, obj.Key)
		if err != nil {
			return Result{}, src.objErr("get source tags", err)
		}
		src.tags = tags
	}
	res := Result{
		Size:         src.attrs.Size,
		SrcETag:      src.attrs.ETag,
		SrcVersionID: src.attrs.VersionID,
	}
	var pr store.PutResult
	switch mp, ok := e.dst.(store.Multipart); {
	case src.attrs.Size <= e.opts.MultipartThreshold:
		res.Method = MethodPut
		pr, res.CRC32C, res.MD5Verified, err = e.putBuffered(ctx, src, dstKey)
	case ok:
		res.Method = MethodMultipart
		pr, res.CRC32C, res.MD5Verified, err = e.putMultipart(ctx, mp, src, dstKey)
	default:
		res.Method = MethodStream
		pr, res.CRC32C, res.MD5Verified, err = e.putStreaming(ctx, src, dstKey)
	}
	if err != nil {
		return res, err
	}
	res.DstETag, res.DstVersionID = pr.ETag, pr.VersionID
	res.Verified = src.plan.method
	return res, nil
}

// checkPutResult compares the CRC32C a store reports for a written object
// with ours; on mismatch it deletes the object.
func (e *Engine) checkPutResult(ctx context.Context, src *source, dstKey string, pr store.PutResult, crc string) error {
	if got := fullObjectCRC(pr.ChecksumCRC32C); got != "" && got != crc {
		err := src.objErr("verify destination", fmt.Errorf("%w: destination crc32c %s != %s", store.ErrChecksum, got, crc))
		return e.discard(ctx, dstKey, err)
	}
	return nil
}

// putBuffered reads the whole object into one pooled buffer, verifies it
// against the source, and writes it with one Put carrying its CRC32C (and
// MD5) so the destination rejects bytes damaged on the way.
func (e *Engine) putBuffered(ctx context.Context, src *source, dstKey string) (store.PutResult, string, bool, error) {
	buf, err := e.mem.get(ctx, src.attrs.Size)
	if err != nil {
		return store.PutResult{}, "", false, src.objErr("put", err)
	}
	defer buf.release()
	var (
		crc   string
		md5OK bool
	)
	for reread := 0; ; reread++ {
		// Bytes that fail the check against the source were damaged on
		// the way (a flipped bit): the object is read again, within the
		// attempt, a bounded number of times.
		crc, md5OK, err = e.fillChecked(buf, src)
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrChecksum) || reread >= maxSourceRereads || ctx.Err() != nil {
			return store.PutResult{}, crc, false, err
		}
		e.opts.retried("source", "checksum")
		if err := e.reopenWhole(ctx, src); err != nil {
			return store.PutResult{}, "", false, err
		}
	}
	in := e.putInput(src.attrs, dstKey, src.tags, crc)
	in.ChecksumCRC32C = crc
	if md5OK {
		in.ContentMD5 = base64.StdEncoding.EncodeToString(src.md5.Sum(nil))
	}
	var pr store.PutResult
	for try := 0; ; try++ {
		// A Put that fails (a stall, a reset the store's client gave up
		// on) is sent again from the buffer, like a part.
		w := e.watchWrite(ctx)
		pr, err = e.dst.Put(w.ctx, in, w.seekable(buf.reader()))
		if err = w.done(err); err == nil {
			break
		}
		if try >= writeRetries(err) || ctx.Err() != nil || store.Permanent(err) {
			return pr, crc, false, src.objErr("put", err)
		}
		if serr := sleep(ctx, e.backoff(try+1)); serr != nil {
			return pr, crc, false, src.objErr("put", err)
		}
	}
	return pr, crc, md5OK, e.checkPutResult(ctx, src, dstKey, pr, crc)
}

// maxSourceRereads bounds how many times, within one attempt, an object
// (or one part of it) whose bytes failed the check against the source is
// read again; see [Engine.putBuffered] and [Engine.rereadParts].
const maxSourceRereads = 5

// fillChecked reads the whole source stream into buf and checks it
// against the source.
func (e *Engine) fillChecked(buf *buffer, src *source) (crc string, md5OK bool, err error) {
	if err := buf.fill(src.rc, src.attrs.Size, src.crc, src.md5, src.v); err != nil {
		return "", false, src.objErr("read source", err)
	}
	if err := src.expectEOF(); err != nil {
		return "", false, err
	}
	return src.verify()
}

// reopenWhole replaces src's stream with a new read of the whole object,
// of the same version, and resets its hashes.
func (e *Engine) reopenWhole(ctx context.Context, src *source) error {
	rc, _, err := e.openSource(ctx, src.key, 0, -1, &src.attrs)
	if err != nil {
		return err
	}
	src.rc.Close()
	src.rc = rc
	src.resetHashes()
	return nil
}

// resetHashes starts the source's hashes afresh, for bytes read again
// from the start.
func (s *source) resetHashes() {
	s.crc.Reset()
	if s.md5 != nil {
		s.md5.Reset()
	}
	s.v = newSeqVerifier(&s.plan)
}

// hashWriter writes bytes to every hash of a source.
type hashWriter struct{ s *source }

func (w hashWriter) Write(p []byte) (int, error) {
	w.s.hash(p)
	return len(p), nil
}

// putMultipart reads parts sequentially from the single source stream into
// pooled buffers and uploads up to PartConcurrency of them at once, each with
// its CRC32C. It completes the upload only when every part succeeded and the
// whole stream matched the source's MD5 ETag / CRC32C; on any failure or
// cancellation it aborts, so nothing becomes visible. With a Resumer it
// records the upload and its parts as they complete, and keeps the upload
// when the copy is drained (see [ErrDrain]).
func (e *Engine) putMultipart(ctx context.Context, mp store.Multipart, src *source, dstKey string) (pr store.PutResult, crc string, md5OK bool, err error) {
	size := src.attrs.Size
	partSize := PartSizeFor(size, e.opts.PartSize)
	in := e.putInput(src.attrs, dstKey, src.tags, fullObjectCRC(src.attrs.ChecksumCRC32C))
	in.PartSize = partSize
	uploadID, err := mp.CreateMultipart(ctx, in)
	if err != nil {
		return pr, "", false, src.objErr("create multipart", err)
	}
	u := e.newUpload(mp, UploadState{
		UploadID:   uploadID,
		DstKey:     dstKey,
		SrcKey:     src.key,
		SrcETag:    src.attrs.ETag,
		SrcSize:    size,
		SrcModTime: src.attrs.LastModified,
		PartSize:   partSize,
	}, -1)
	if err := u.save(ctx); err != nil {
		// An upload no state names must not outlive the copy.
		actx, cancel := cleanupContext(ctx)
		defer cancel()
		if aerr := u.abort(actx); aerr != nil {
			err = errors.Join(err, aerr)
		}
		return pr, "", false, err
	}
	completed := false
	defer func() {
		if !completed {
			err = u.fail(ctx, err)
		}
	}()

	nparts := partCount(size, partSize)
	readCtx, cancelRead := context.WithCancel(ctx)
	defer cancelRead()
	g, gctx := errgroup.WithContext(readCtx)
	g.SetLimit(e.opts.PartConcurrency)
	var readErr error
	for i := range nparts {
		if err := gctx.Err(); err != nil {
			readErr = src.objErr("upload part", err)
			break
		}
		n := min(partSize, size-i*partSize)
		buf, err := e.mem.get(gctx, n)
		if err != nil {
			readErr = src.objErr("upload part", err)
			break
		}
		partCRC := crc32.New(castagnoli)
		if err := buf.fill(src.rc, n, partCRC, src.crc, src.md5, src.v); err != nil {
			buf.release()
			readErr = src.objErr("read source", err)
			break
		}
		num := int32(i + 1)
		want := crc32cBase64(partCRC.Sum32())
		g.Go(func() error {
			defer buf.release()
			return u.uploadPart(gctx, num, buf, n, want)
		})
	}
	if readErr != nil {
		cancelRead()
	}
	werr := g.Wait()
	switch {
	case werr != nil && errors.Is(readErr, context.Canceled):
		// The read stopped because an upload failed: report the upload.
		return pr, "", false, werr
	case readErr != nil:
		return pr, "", false, readErr
	case werr != nil:
		return pr, "", false, werr
	}
	if err := src.expectEOF(); err != nil {
		return pr, "", false, err
	}
	crc, md5OK, err = src.verify()
	if errors.Is(err, store.ErrChecksum) {
		// Some part was read damaged; which one the whole-object check
		// cannot tell: each part is read again until two reads agree,
		// and the check made again over the agreed bytes.
		src.resetHashes()
		if rerr := e.rereadParts(ctx, u, src.attrs, src.key, size, partSize, hashWriter{src}); rerr != nil {
			return pr, "", false, errors.Join(err, rerr)
		}
		crc, md5OK, err = src.verify()
	}
	if err != nil {
		return pr, crc, false, err
	}
	if err := ctx.Err(); err != nil {
		return pr, crc, false, src.objErr("complete multipart", err)
	}
	pr, err = u.complete(ctx)
	if err != nil {
		return pr, crc, false, err
	}
	completed = true
	return pr, crc, md5OK, e.checkPutResult(ctx, src, dstKey, pr, crc)
}

// putStreaming writes an object above the threshold to a destination
// without Multipart with one Put whose body is the source stream, verified
// as it passes. The Put must carry a checksum the destination checks before
// the object becomes visible, and it must be known before the first byte:
// the source's full-object CRC32C and/or its plain MD5 ETag (as ContentMD5).
// When the source states neither, a first pass over the source computes the
// CRC32C, and the second pass, streamed, must match it. (With only the MD5
// known, one pass suffices; ferry-crc32c is then absent, as for multipart.) The streaming body
// checks the bytes against the expected sums before it hands the last of
// them to the store, and fails the read instead on mismatch, so the store
// never receives a whole corrupt body (and a failed Put leaves nothing).
func (e *Engine) putStreaming(ctx context.Context, src *source, dstKey string) (store.PutResult, string, bool, error) {
	wantCRC := fullObjectCRC(src.attrs.ChecksumCRC32C)
	if wantCRC == "" && src.md5 == nil {
		// First pass: compute the CRC32C (and check the MD5) without
		// holding the object, then reopen for the upload.
		n, err := io.Copy(io.MultiWriter(src.crc, nonNil(src.md5), src.v), io.LimitReader(src.rc, src.attrs.Size))
		if err == nil && n != src.attrs.Size {
			err = fmt.Errorf("read %d of %d bytes: %w", n, src.attrs.Size, io.ErrUnexpectedEOF)
		}
		if err != nil {
			return store.PutResult{}, "", false, src.objErr("read source", err)
		}
		if err := src.expectEOF(); err != nil {
			return store.PutResult{}, "", false, err
		}
		crc, _, err := src.verify()
		if err != nil {
			return store.PutResult{}, "", false, err
		}
		wantCRC = crc
		src.rc.Close()
		again, err := e.open(ctx, src.key, &src.plan)
		if err != nil {
			return store.PutResult{}, "", false, err
		}
		if again.attrs.Size != src.attrs.Size || again.attrs.ETag != src.attrs.ETag || !again.attrs.LastModified.Equal(src.attrs.LastModified) {
			again.rc.Close()
			return store.PutResult{}, "", false, src.objErr("open source", errors.New("source changed during copy"))
		}
		again.tags = src.tags
		*src = *again // the deferred Close in streamCopy closes the new stream
	}
	in := e.putInput(src.attrs, dstKey, src.tags, wantCRC)
	in.ChecksumCRC32C = wantCRC
	var wantMD5 []byte
	if src.md5 != nil {
		wantMD5, _ = hex.DecodeString(src.attrs.ETag)
		in.ContentMD5 = base64.StdEncoding.EncodeToString(wantMD5)
	}
	body := &verifyingReader{src: src, wantCRC: wantCRC}
	w := e.watchWrite(ctx)
	pr, err := e.dst.Put(w.ctx, in, w.body(body))
	err = w.done(err)
	if body.err != nil {
		return pr, "", false, body.err
	}
	if err != nil {
		return pr, "", false, src.objErr("put", err)
	}
	if !body.verified {
		// The store returned success without reading the whole body.
		return pr, "", false, e.discard(ctx, dstKey, src.objErr("put", errors.New("store did not read the whole body")))
	}
	crc := crc32cBase64(src.crc.Sum32())
	return pr, crc, src.md5 != nil, e.checkPutResult(ctx, src, dstKey, pr, crc)
}

func nonNil(h hash.Hash) io.Writer {
	if h == nil {
		return io.Discard
	}
	return h
}

// verifyingReader passes the source stream to a Put, hashing it, and checks
// the sums before releasing the final bytes.
type verifyingReader struct {
	src      *source
	wantCRC  string
	n        int64
	err      error // sticky
	verified bool
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	size := v.src.attrs.Size
	if v.n >= size {
		return 0, io.EOF
	}
	if int64(len(p)) > size-v.n {
		p = p[:size-v.n]
	}
	n, err := v.src.rc.Read(p)
	v.src.hash(p[:n])
	v.n += int64(n)
	if v.n == size {
		// Withhold the last bytes until the whole stream is verified.
		if err := v.src.expectEOF(); err != nil {
			v.err = err
			return 0, err
		}
		crc, _, err := v.src.verify()
		if err == nil && v.wantCRC != "" && crc != v.wantCRC {
			err = v.src.objErr("verify source", fmt.Errorf("%w: crc32c %s != expected %s", store.ErrChecksum, crc, v.wantCRC))
		}
		if err != nil {
			v.err = err
			return 0, err
		}
		v.verified = true
		return n, nil
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("read %d of %d bytes: %w", v.n, size, io.ErrUnexpectedEOF)
		}
		v.err = v.src.objErr("read source", err)
		return 0, v.err
	}
	return n, nil
}
