package transfer

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/ferry-dev/ferry/internal/store"
)

// How a copy's bytes were checked against the source, reported in
// [Result.Verified]; see "How the bytes are checked against the source" in
// the package documentation. The first one the source offers is used, in
// this order.
const (
	// Full-object checksums the source states, compared with the same
	// checksum of all the bytes read.
	VerifiedCRC64NVME = "crc64nvme"
	VerifiedCRC32C    = "crc32c"
	VerifiedCRC32     = "crc32"
	VerifiedSHA256    = "sha256"
	VerifiedSHA1      = "sha1"
	// Per-part (composite) checksums of a source uploaded in parts: each
	// source part's bytes, as read, match the part's checksum.
	VerifiedPartCRC64NVME = "part-crc64nvme"
	VerifiedPartCRC32C    = "part-crc32c"
	VerifiedPartCRC32     = "part-crc32"
	VerifiedPartSHA256    = "part-sha256"
	VerifiedPartSHA1      = "part-sha1"
	// VerifiedMultipartETag: the MD5 of the MD5s of the source's parts
	// (computed over the bytes read, split at the source's part boundaries)
	// followed by "-N" equals the source's multipart ETag.
	VerifiedMultipartETag = "multipart-etag"
	// VerifiedMD5: the MD5 of the bytes equals the source's plain MD5 ETag.
	VerifiedMD5 = "md5"
	// VerifiedLocalRead: the source states no checksum, but its bytes were
	// read from this machine's own storage ([store.LocalReader]: a local
	// file system), not over a network, hashed as read, and the source's
	// size and mtime did not change during the copy; the destination
	// checked the CRC32C of exactly those bytes.
	VerifiedLocalRead = "local-read"
	// Unverified: the source offers nothing to check the bytes read against
	// (the destination still checked that it stored the bytes ferry read).
	// [Options.RequireVerified] turns such a copy into a failure.
	Unverified = ""
)

// ErrUnverified is the error (wrapped in an *[ObjectError]) of a copy that
// [Options.RequireVerified] refused because the source offers no way to
// check the bytes read (see [Unverified]). Nothing is written. Retrying
// cannot help, so Copy does not; callers should treat it as permanent.
var ErrUnverified = errors.New("transfer: the source offers no checksum to verify the bytes read against")

// sumAlg is a checksum algorithm S3 can store. Its values are base64 of the
// big-endian digest, which is what hash.Hash.Sum appends for each of them.
type sumAlg struct {
	name string
	new  func() hash.Hash
}

// crc64NVMETable is CRC-64/NVME (polynomial 0xad93d23594c93659, reflected,
// init and xorout all ones, as hash/crc64 computes): S3's CRC64NVME.
var crc64NVMETable = crc64.MakeTable(0x9a6c9329ac4bc9b5)

var (
	algCRC64NVME = &sumAlg{"crc64nvme", func() hash.Hash { return crc64.New(crc64NVMETable) }}
	algCRC32C    = &sumAlg{"crc32c", func() hash.Hash { return crc32.New(castagnoli) }}
	algCRC32     = &sumAlg{"crc32", func() hash.Hash { return crc32.NewIEEE() }}
	algSHA256    = &sumAlg{"sha256", sha256.New}
	algSHA1      = &sumAlg{"sha1", sha1.New}
)

// sumOf returns the checksum h computed, base64 as S3 states it.
func sumOf(h hash.Hash) string { return base64.StdEncoding.EncodeToString(h.Sum(nil)) }

// checksum is a checksum value some source states.
type checksum struct {
	alg  *sumAlg
	want string // base64
}

// validChecksum reports whether want decodes to a digest of alg's size.
func validChecksum(alg *sumAlg, want string) bool {
	b, err := base64.StdEncoding.DecodeString(want)
	return err == nil && len(b) == alg.new().Size()
}

// checksumsOf returns the valid checksums among the given values, in the
// order of preference: CRC64NVME, CRC32C, CRC32, SHA-256, SHA-1.
func checksumsOf(crc64nvme, crc32c, crc32, sha256, sha1 string) []checksum {
	var cs []checksum
	for _, c := range []checksum{{algCRC64NVME, crc64nvme}, {algCRC32C, crc32c}, {algCRC32, crc32}, {algSHA256, sha256}, {algSHA1, sha1}} {
		if c.want != "" && validChecksum(c.alg, c.want) {
			cs = append(cs, c)
		}
	}
	return cs
}

func fullChecksums(a store.Attrs) []checksum {
	return checksumsOf(a.ChecksumCRC64NVME, a.ChecksumCRC32C, a.ChecksumCRC32, a.ChecksumSHA256, a.ChecksumSHA1)
}

func partChecksums(p store.PartAttrs) []checksum {
	return checksumsOf(p.ChecksumCRC64NVME, p.ChecksumCRC32C, p.ChecksumCRC32, p.ChecksumSHA256, p.ChecksumSHA1)
}

// multipartCount returns N of a multipart ETag "<32 hex>-N".
func multipartCount(etag string) (int, bool) {
	h, n, ok := strings.Cut(etag, "-")
	if !ok || !isPlainMD5(h) {
		return 0, false
	}
	c, err := strconv.Atoi(n)
	if err != nil || c < 1 || c > MaxParts {
		return 0, false
	}
	return c, true
}

// plan says how the bytes of one source object version are checked against
// what the source states. Its method is the Result.Verified of the copy.
type plan struct {
	method string
	// full is the full-object checksum checked (method is its name).
	full checksum
	// parts is the source's part layout, for per-part checksums (partAlg
	// set, parts[i].want the part's checksum) and the multipart ETag
	// (partAlg nil).
	parts   []srcPart
	partAlg *sumAlg
	etag    string
}

type srcPart struct {
	off, size int64
	want      string
}

// hashes reports whether the plan needs the bytes fed in order to a
// [seqVerifier]. CRC32C (computed, or combined from the parts', anyway) and
// the plain MD5 (computed with the stream) are checked by the copy itself.
func (p *plan) hashes() bool {
	return (p.full.alg != nil && p.full.alg != algCRC32C) || p.parts != nil
}

// statPartConcurrency is how many HeadObject-by-part-number requests learn
// one object's part layout at once.
const statPartConcurrency = 8

// planFor chooses how to verify the source version attrs describes: a
// full-object checksum, else per-part checksums, else the multipart ETag
// (both need [store.PartStater] to learn the part layout), else a plain MD5
// ETag, else a local read; else the copy is unverified.
func (e *Engine) planFor(ctx context.Context, attrs store.Attrs) (plan, error) {
	if cs := fullChecksums(attrs); len(cs) > 0 {
		return plan{method: cs[0].alg.name, full: cs[0]}, nil
	}
	if n, ok := multipartCount(attrs.ETag); ok {
		if ps, ok := e.src.(store.PartStater); ok {
			p, ok, err := e.partPlan(ctx, ps, attrs, n)
			if err != nil || ok {
				return p, err
			}
		}
	}
	if sourceMD5(attrs) != "" {
		return plan{method: VerifiedMD5}, nil
	}
	if e.readsLocally() {
		return plan{method: VerifiedLocalRead}, nil
	}
	return plan{method: Unverified}, nil
}

func (e *Engine) readsLocally() bool {
	lr, ok := e.src.(store.LocalReader)
	return ok && lr.ReadsLocally()
}

// partPlan learns the part layout of a source uploaded in n parts (one
// HeadObject per part) and plans to check each part's own checksum, or
// else the multipart ETag. ok is false when the layout cannot be used (the
// store keeps none, or it does not add up, or the ETag is no MD5 of parts:
// SSE-KMS). A part of another version of the object fails the attempt.
func (e *Engine) partPlan(ctx context.Context, ps store.PartStater, attrs store.Attrs, n int) (p plan, ok bool, err error) {
	parts := make([]store.PartAttrs, n)
	first, err := ps.StatPart(ctx, attrs.Key, 1)
	if err != nil {
		return p, false, &ObjectError{Op: "stat source part 1", Key: attrs.Key, Err: err}
	}
	if int(first.Count) != n {
		return p, false, nil
	}
	parts[0] = first
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(statPartConcurrency)
	for i := 1; i < n; i++ {
		g.Go(func() error {
			pa, err := ps.StatPart(gctx, attrs.Key, int32(i+1))
			if err != nil {
				return &ObjectError{Op: fmt.Sprintf("stat source part %d", i+1), Key: attrs.Key, Err: err}
			}
			parts[i] = pa
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return p, false, err
	}
	var off int64
	layout := make([]srcPart, n)
	for i, pa := range parts {
		if pa.Object.ETag != attrs.ETag || pa.Object.Size != attrs.Size || !sameMtime(pa.Object.LastModified, attrs.LastModified) {
			return p, false, &ObjectError{Op: fmt.Sprintf("stat source part %d", i+1), Key: attrs.Key, Err: errors.New("source changed during copy")}
		}
		if int(pa.Count) != n || pa.Number != int32(i+1) || pa.Offset != off || pa.Size < 0 {
			return p, false, nil
		}
		layout[i] = srcPart{off: off, size: pa.Size}
		off += pa.Size
	}
	if off != attrs.Size {
		return p, false, nil
	}
	// Per-part checksums: the first algorithm every part states.
	for _, c := range partChecksums(parts[0]) {
		all := true
		for i, pa := range parts {
			w := wantOf(partChecksums(pa), c.alg)
			if w == "" {
				all = false
				break
			}
			layout[i].want = w
		}
		if all {
			return plan{method: "part-" + c.alg.name, parts: layout, partAlg: c.alg}, true, nil
		}
	}
	if attrs.SSE == sseKMS {
		return p, false, nil
	}
	for i := range layout {
		layout[i].want = ""
	}
	return plan{method: VerifiedMultipartETag, parts: layout, etag: attrs.ETag}, true, nil
}

func wantOf(cs []checksum, alg *sumAlg) string {
	for _, c := range cs {
		if c.alg == alg {
			return c.want
		}
	}
	return ""
}

// seqVerifier checks the bytes of a source object, written to it in order,
// against a plan: the full-object checksum (other than CRC32C), each source
// part's checksum as the part ends, the multipart ETag at the end. A nil
// *seqVerifier accepts everything.
type seqVerifier struct {
	p      *plan
	full   hash.Hash
	idx    int       // index in p.parts of the part being hashed
	inPart int64     // bytes of it hashed so far
	ph     hash.Hash // hash of the part being hashed
	md5s   []byte    // the parts' MD5s, concatenated (multipart ETag)
	n      int64
	err    error // first mismatch
}

// newSeqVerifier returns a verifier for p, or nil when p needs none.
func newSeqVerifier(p *plan) *seqVerifier {
	if !p.hashes() {
		return nil
	}
	v := &seqVerifier{p: p}
	if p.full.alg != nil {
		v.full = p.full.alg.new()
	}
	if p.parts != nil {
		if p.partAlg != nil {
			v.ph = p.partAlg.new()
		} else {
			v.ph = md5.New()
			v.md5s = make([]byte, 0, md5.Size*len(p.parts))
		}
		v.skipEmpty()
	}
	return v
}

// Write hashes b, the bytes following those written before. It never
// fails: mismatches are reported by failed and finish.
func (v *seqVerifier) Write(b []byte) (int, error) {
	if v == nil {
		return len(b), nil
	}
	n := len(b)
	v.n += int64(n)
	if v.full != nil {
		v.full.Write(b)
	}
	for len(b) > 0 && v.p.parts != nil {
		if v.idx >= len(v.p.parts) {
			v.setErr(fmt.Errorf("%w: more than the %d bytes of the source's parts", store.ErrChecksum, v.p.parts[len(v.p.parts)-1].off+v.p.parts[len(v.p.parts)-1].size))
			break
		}
		sp := v.p.parts[v.idx]
		k := min(int64(len(b)), sp.size-v.inPart)
		v.ph.Write(b[:k])
		v.inPart += k
		b = b[k:]
		if v.inPart == sp.size {
			v.endPart()
		}
	}
	return n, nil
}

// endPart checks the part just hashed and moves to the next.
func (v *seqVerifier) endPart() {
	sp := v.p.parts[v.idx]
	if v.p.partAlg != nil {
		if got := sumOf(v.ph); got != sp.want {
			v.setErr(fmt.Errorf("%w: part %d (bytes %d-%d) %s %s != source part %s", store.ErrChecksum,
				v.idx+1, sp.off, sp.off+sp.size-1, v.p.partAlg.name, got, sp.want))
		}
	} else {
		v.md5s = v.ph.Sum(v.md5s)
	}
	v.ph.Reset()
	v.inPart = 0
	v.idx++
	v.skipEmpty()
}

// skipEmpty ends parts of no bytes at the current position.
func (v *seqVerifier) skipEmpty() {
	if v.idx < len(v.p.parts) && v.p.parts[v.idx].size == 0 {
		v.endPart()
	}
}

func (v *seqVerifier) setErr(err error) {
	if v.err == nil {
		v.err = err
	}
}

// failed returns the first mismatch found so far.
func (v *seqVerifier) failed() error {
	if v == nil {
		return nil
	}
	return v.err
}

// finish checks what can only be checked once all bytes are in: the
// full-object checksum and the multipart ETag.
func (v *seqVerifier) finish() error {
	if v == nil || v.err != nil {
		return v.failed()
	}
	if v.p.parts != nil && v.idx != len(v.p.parts) {
		return fmt.Errorf("%w: %d bytes end within part %d of the source", store.ErrChecksum, v.n, v.idx+1)
	}
	if v.full != nil {
		if got := sumOf(v.full); got != v.p.full.want {
			return fmt.Errorf("%w: %s %s != source %s", store.ErrChecksum, v.p.full.alg.name, got, v.p.full.want)
		}
	}
	if v.p.parts != nil && v.p.partAlg == nil {
		sum := md5.Sum(v.md5s)
		got := hex.EncodeToString(sum[:]) + "-" + strconv.Itoa(len(v.p.parts))
		if !strings.EqualFold(got, v.p.etag) {
			return fmt.Errorf("%w: multipart etag of the bytes %s != source etag %s", store.ErrChecksum, got, v.p.etag)
		}
	}
	return nil
}

// inOrder feeds the buffers of an object's parts, read concurrently, to a
// seqVerifier in order of offset: part i waits for its turn (part i-1 fed)
// before it writes. A part holds its buffer until fed; since parts take
// their buffers and their places in the errgroup in order, the part whose
// turn it is always has both, so waiting cannot deadlock.
type inOrder struct {
	v     *seqVerifier
	turns []chan struct{} // turns[i] is closed when part i may be fed
}

func newInOrder(v *seqVerifier, nparts int64) *inOrder {
	if v == nil {
		return nil
	}
	o := &inOrder{v: v, turns: make([]chan struct{}, nparts+1)}
	for i := range o.turns {
		o.turns[i] = make(chan struct{})
	}
	close(o.turns[0])
	return o
}

// skip passes the turn of part i on without feeding it (a part not read).
func (o *inOrder) skip(i int64) {
	if o != nil {
		close(o.turns[i+1])
	}
}

// feed writes the n bytes of part i in buf once every earlier part was
// fed. A mismatch is not returned here but by the verifier's finish, once
// every part is uploaded: the copy then reads the parts again (see
// [Engine.rereadParts]) rather than failing the attempt.
func (o *inOrder) feed(ctx context.Context, i int64, buf *buffer) error {
	if o == nil {
		return nil
	}
	select {
	case <-o.turns[i]:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	defer close(o.turns[i+1])
	buf.writeTo(o.v)
	return nil
}

// checkUnchanged fails when the source object no longer has the size and
// mtime (and ETag) of attrs: a local file written to while it was read.
// rc, the reader of those bytes when it is still open, is asked first (an
// fstat of a local file, store.Restatter: a profile of a 10,000-file
// upload spent 6% of its CPU looking every path up again); without one, or
// when it cannot say, the path is looked up.
func (e *Engine) checkUnchanged(ctx context.Context, attrs store.Attrs, rc io.Reader) error {
	var a store.Attrs
	err := errors.ErrUnsupported
	if rs, ok := rc.(store.Restatter); ok {
		a, err = rs.Restat()
	}
	if err != nil {
		if a, err = e.src.Stat(ctx, attrs.Key); err != nil {
			return &ObjectError{Op: "stat source", Key: attrs.Key, Err: err}
		}
	}
	if a.Size != attrs.Size || a.ETag != attrs.ETag || !sameMtime(a.LastModified, attrs.LastModified) {
		return &ObjectError{Op: "verify source", Key: attrs.Key, Err: errors.New("source changed during copy")}
	}
	return nil
}

// unverified is the error of a copy refused by RequireVerified.
func unverified(key string) error {
	return &ObjectError{Op: "verify source", Key: key, Err: ErrUnverified}
}

var _ io.Writer = (*seqVerifier)(nil)
