package worker

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/job"
	"github.com/ferry-dev/ferry/internal/logtext"
	"github.com/ferry-dev/ferry/internal/queue"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/transfer"
)

// Pack mode (docs/bundle-format.md, docs/design.md "Pack mode"): a pack
// item reads its objects at the source, writes them into one bundle in the
// staging location and publishes an unpack item naming the bundle and the
// objects in it; the unpack item verifies the bundle whole, restores each
// object (verified before it is visible), and removes the bundle once every
// object in it is verified at the destination. Every object ends with
// exactly one outcome: in the pack item's Final when it could not be read
// (failed, dead-lettered by name), else in the unpack item's.

// Metadata and tags of restored objects: the source object's ETag and
// creation (last-modified) time.
const (
	MetaOriginalETag         = "original-etag"
	MetaOriginalCreationTime = "original-creation-time"
	TagOriginalETag          = "OriginalETag"
	TagOriginalCreationTime  = "OriginalCreationTime"
	// maxTags is S3's limit of tags per object.
	maxTags = 10
)

// Sides a worker takes work for (--side).
const (
	SideBoth        = "both"
	SideSource      = "source"
	SideDestination = "destination"
)

// packFinalWait bounds how long an unpack item waits for its pack item's
// Final to be applied before it is put back on the queue.
const packFinalWait = 10 * time.Second

// BundleKey is the staging key of a pack item's bundle.
func BundleKey(jobID, bundleID string) string { return jobID + "/" + bundleID + ".ferry-bundle" }

// packable reports whether a planned object travels in a bundle: a copy
// (not a check, which needs the destination compared first) of an object
// at or below the size limit whose key a bundle can carry.
func packable(p *job.PackSpec, o job.Obj) bool {
	return p != nil && !o.Chk && o.S <= p.MaxObjectSize && bundle.CheckKey(o.K) == nil
}

// objFailure sorts a failed object: put back (rest), retried, or final
// (dead-lettered unless unsafe).
type objFailure int

const (
	failRest objFailure = iota
	failRetry
	failFinal
)

func (jr *jobRun) classify(ctx context.Context, err error, attempt int) objFailure {
	revoked := errors.Is(err, store.ErrAccess) && jr.credentialsRevoked(ctx)
	switch {
	case revoked || ctx.Err() != nil || jr.ctx.Err() != nil && errors.Is(err, context.Canceled):
		return failRest
	case !store.Permanent(err) && !errors.Is(err, store.ErrUnsafeKey) && !errors.Is(err, transfer.ErrUnverified) &&
		!errors.Is(err, bundle.ErrCorrupt) && attempt < jr.spec.MaxAttempts:
		return failRetry
	}
	return failFinal
}

// batchOut gathers what handling a pack or unpack item produced.
type batchOut struct {
	mu        sync.Mutex
	outcomes  []job.Result
	retry     []job.Obj
	retryErrs []string
	rest      []job.Obj
	failed    int
}

func (b *batchOut) add(jr *jobRun, pub *publisher, work job.Work, o job.Obj, res job.Result, err error, f objFailure) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err == nil {
		b.outcomes = append(b.outcomes, res)
		return
	}
	switch f {
	case failRest:
		b.rest = append(b.rest, o)
	case failRetry:
		b.retry = append(b.retry, o)
		b.retryErrs = append(b.retryErrs, logtext.OneLine(err.Error()))
	default:
		if res.Outcome != job.OutcomeUnsafe {
			// Dead-lettered: its bundle must stay for a later restore.
			b.failed++
			pub.publish(queue.DLQSubject(work.Job), job.DLQEntry{V: job.WireVersion, Job: work.Job, Kind: job.KindCopy, Obj: &o,
				Error: logtext.OneLine(err.Error()), Attempts: work.Attempt, Time: time.Now().UTC()}, job.ContentID(work.ID, "dlq", o.K))
		}
		b.outcomes = append(b.outcomes, res)
	}
}

// children publishes the retry (next attempt) and rest (same attempt)
// items of b as items of work's kind. For an unpack item (ref, its bundle,
// not nil) there is at most one child, so that one item at a time holds the
// bundle and the last one removes it: with both retry and rest objects, the
// rest go with the retry objects in the next attempt (a sibling holding the
// rest would remove the bundle the retry item still needs).
func (b *batchOut) children(jr *jobRun, pub *publisher, work job.Work, ref *job.BundleRef) []job.Child {
	var out []job.Child
	retry, errs, rest := b.retry, b.retryErrs, b.rest
	if ref != nil && len(retry) > 0 && len(rest) > 0 {
		retry = append(slices.Clip(retry), rest...)
		errs = append(slices.Clip(errs), make([]string, len(rest))...) // no error for the rest
		rest = nil
	}
	if len(retry) > 0 {
		r := job.Work{V: job.WireVersion, Job: work.Job, Kind: work.Kind, Attempt: work.Attempt + 1, Objs: retry, Errs: errs, Bundle: ref,
			NotBefore: time.Now().Add(backoff(jr.w.opts.RetryBase, work.Attempt)).UnixMilli(), ID: job.ContentID(work.ID, "retry")}
		jr.log().Warn("objects failed, will retry", "kind", work.Kind, "count", len(b.retry), "attempt", work.Attempt, "first_error", b.retryErrs[0])
		for range b.retry {
			jr.w.opts.Observer.Retry(work.Job, "any", "requeued")
		}
		pub.publish(queue.WorkSubject(work.Job, work.Kind), r, r.ID)
		out = append(out, job.Child{ID: r.ID, Kind: work.Kind})
	}
	if len(rest) > 0 {
		r := job.Work{V: job.WireVersion, Job: work.Job, Kind: work.Kind, Attempt: work.Attempt, Objs: rest, Bundle: ref, ID: job.ContentID(work.ID, "rest")}
		pub.publish(queue.WorkSubject(work.Job, work.Kind), r, r.ID)
		out = append(out, job.Child{ID: r.ID, Kind: work.Kind})
	}
	return out
}

// objResult is the result of one object of a pack or unpack item.
func (jr *jobRun) objResult(o job.Obj, work job.Work) job.Result {
	return job.Result{Kind: "object", Key: o.K, Size: o.S, ListedSize: o.S, Worker: jr.w.opts.Name,
		Attempts: work.Attempt, SrcETag: o.E, Started: time.Now().UTC()}
}

func finishResult(res job.Result, outcome, side string, err error) job.Result {
	res.Outcome, res.Ended = outcome, time.Now().UTC()
	if err != nil {
		res.Error = logtext.OneLine(err.Error())
		res.Side = side
		if errors.Is(err, store.ErrUnsafeKey) || errors.Is(err, store.ErrInvalidKey) {
			res.Outcome = job.OutcomeUnsafe
		}
	}
	return res
}

// publishFinal waits for everything published so far, then publishes the
// item's Final and waits for it.
func (jr *jobRun) publishFinal(pub *publisher, fin job.Final, cut bool) bool {
	ctx := jr.w.workCtx
	if cut {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), publishTimeout)
		defer cancel()
	}
	if err := pub.wait(ctx); err != nil {
		jr.log().Warn("publish "+fin.Kind+" output", "err", err)
		return false
	}
	fin.Time = time.Now().UTC()
	pub.publish(queue.ResultSubject(fin.Job), fin, job.ContentID(fin.Work, "final"))
	if err := pub.wait(ctx); err != nil {
		jr.log().Warn("publish "+fin.Kind+" result", "err", err)
		return false
	}
	return true
}

// handlePack reads a pack item's objects at the source (in the worker's
// pool), writes them into one bundle in staging and publishes the unpack
// item. A redelivered item whose bundle is already in staging (an earlier
// run wrote it and stopped before its Final) reuses that bundle as it is.
func (jr *jobRun) handlePack(work job.Work, redelivered bool, started func()) bool {
	w := jr.w
	ctx := w.workCtx
	pub := &publisher{conn: w.conn, job: work.Job}
	out := &batchOut{}
	bundleID := job.ContentID(work.ID, "bundle")
	key := BundleKey(work.Job, bundleID)
	fin := job.Final{V: job.WireVersion, Job: work.Job, Kind: work.Kind, Work: work.ID, Worker: w.opts.Name, Attempt: work.Attempt}

	var ref *job.BundleRef
	var packed []job.Obj
	if redelivered {
		m, attrs, err := jr.stagedManifest(ctx, key)
		switch {
		case err == nil:
			started()
			in := map[string]bool{}
			for _, o := range m.Objects {
				in[o.Key] = true
			}
			for _, o := range work.Objs {
				if in[o.K] {
					packed = append(packed, o)
					continue
				}
				// Not in the bundle: the earlier run could not read it.
				err := fmt.Errorf("not in bundle %s written by an earlier attempt", bundleID)
				res := finishResult(jr.objResult(o, work), job.OutcomeFailed, "source", err)
				f := failRetry
				if work.Attempt >= jr.spec.MaxAttempts {
					f = failFinal
				}
				out.add(jr, pub, work, o, res, err, f)
			}
			ref = &job.BundleRef{Key: key, ID: bundleID, SHA256: attrs.Metadata[bundle.MetaSHA256], Size: attrs.Size, Pack: work.ID}
			fin.Pack = &job.PackResult{Bundle: key, Objects: int64(len(m.Objects)), Bytes: attrs.Size, DataBytes: m.DataBytes, Level: m.Level}
		case errors.Is(err, store.ErrNotExist):
			// An unpack item removes the bundle only after this item's
			// Final was applied, and the ledger never forgets that: if it
			// is applied now, the bundle was consumed and there is nothing
			// to do; if not, no bundle was ever stored and packing again
			// is safe.
			done, ferr := job.WorkFinished(ctx, w.conn.Ledger, work.Job, work.ID)
			if ferr != nil {
				return false
			}
			if done {
				started()
				return true
			}
		default:
			jr.log().Warn("pack: look for an earlier bundle", "bundle", key, "err", logtext.OneLine(err.Error()))
			return false
		}
	}
	if ref == nil {
		var ok bool
		ref, packed, ok = jr.packObjects(ctx, work, pub, out, bundleID, key, &fin, started)
		if !ok {
			return false
		}
	}
	fin.Children = out.children(jr, pub, work, nil)
	if ref != nil && len(packed) > 0 {
		u := job.Work{V: job.WireVersion, Job: work.Job, Kind: job.KindUnpack, ID: job.ContentID(work.ID, "unpack"), Attempt: 1, Objs: packed, Bundle: ref}
		pub.publish(queue.WorkSubject(work.Job, job.KindUnpack), u, u.ID)
		fin.Children = append(fin.Children, job.Child{ID: u.ID, Kind: job.KindUnpack})
	}
	fin.Outcomes = out.outcomes
	return jr.publishFinal(pub, fin, len(out.rest) > 0)
}

// packObjects reads the objects and writes the bundle. It returns the
// bundle (nil when no object could be read, or the bundle could not be
// stored: its objects are then retried or dead-lettered in out) and the
// objects in it.
func (jr *jobRun) packObjects(ctx context.Context, work job.Work, pub *publisher, out *batchOut, bundleID, key string, fin *job.Final, started func()) (*job.BundleRef, []job.Obj, bool) {
	w := jr.w
	type read struct {
		o   job.Obj
		s   transfer.Small
		res job.Result
		err error
	}
	// Buffered for every object: a pool goroutine never waits on this
	// handler.
	reads := make(chan read, len(work.Objs))
	handed := 0
	for i, o := range work.Objs {
		if jr.ctx.Err() != nil {
			out.rest = append(out.rest, work.Objs[i:]...)
			break
		}
		task := func() {
			w.opts.Observer.ObjectStarted(work.Job)
			res := jr.objResult(o, work)
			s, err := jr.eng.ReadSmall(ctx, o.K, jr.spec.Pack.MaxObjectSize)
			if err != nil && errors.Is(err, store.ErrNotExist) {
				res.SrcMissing = true
			}
			reads <- read{o: o, s: s, res: res, err: err}
		}
		select {
		case w.tasks <- task:
			handed++
			continue
		case <-jr.ctx.Done():
		}
		out.rest = append(out.rest, work.Objs[i:]...)
		break
	}
	started()

	b, err := bundle.NewBuilder(w.opts.TempDir)
	if err != nil {
		jr.log().Error("pack", "err", err)
		for range handed {
			<-reads
		}
		return nil, nil, false
	}
	defer b.Close()
	var packed []job.Obj
	for range handed {
		r := <-reads
		err := r.err
		if err == nil {
			s := r.s
			err = b.AddBytes(bundle.Object{
				Key: r.o.K, ETag: s.Attrs.ETag, Created: s.Attrs.LastModified.UTC(), VersionID: s.Attrs.VersionID,
				SourceCheck: s.Verified, ContentType: s.Attrs.ContentType, ContentEncoding: s.Attrs.ContentEncoding,
				ContentDisposition: s.Attrs.ContentDisposition, ContentLanguage: s.Attrs.ContentLanguage,
				CacheControl: s.Attrs.CacheControl, Expires: s.Attrs.Expires, StorageClass: s.Attrs.StorageClass,
				Metadata: s.Attrs.Metadata, Tags: s.Tags,
			}, s.Data)
			transfer.ReleaseSmall(s.Data) // spooled
			if err != nil {
				// The spool (a local disk) failed: not the object's fault.
				jr.log().Error("pack: spool", "err", err)
			}
		}
		if err == nil {
			packed = append(packed, r.o)
			continue
		}
		res := finishResult(r.res, job.OutcomeFailed, "source", err)
		jr.objectDone(res, err)
		out.add(jr, pub, work, r.o, res, err, jr.classify(ctx, err, work.Attempt))
	}
	if len(packed) == 0 {
		return nil, nil, true
	}
	level, ratio := jr.spec.Pack.Level, 0.0
	if level == job.LevelAuto {
		c, err := jr.levels.choose(b)
		if err != nil {
			jr.log().Error("pack: sample", "err", err)
			return nil, nil, false
		}
		level, ratio = c.Level, c.Ratio
	}
	ref, m, err := jr.storeBundle(ctx, b, work, bundleID, key, level)
	if err != nil {
		f := jr.classify(ctx, err, work.Attempt)
		jr.log().Warn("pack: bundle not stored", "bundle", key, "objects", len(packed), "err", logtext.OneLine(err.Error()))
		for _, o := range packed {
			res := finishResult(jr.objResult(o, work), job.OutcomeFailed, "destination", err)
			out.add(jr, pub, work, o, res, err, f)
		}
		return nil, nil, true
	}
	fin.Pack = &job.PackResult{Bundle: key, Objects: int64(len(packed)), Bytes: ref.Size, DataBytes: m.DataBytes, Level: m.Level, Ratio: ratio}
	jr.log().Info("bundle written", "bundle", key, "objects", len(packed), "data_bytes", m.DataBytes, "bytes", ref.Size, "level", m.Level)
	return ref, packed, true
}

// levelChoice is a job's adaptive compression level in one worker: the
// first bundle's data is sampled, and every resampleEvery-th bundle after
// it (the job's data may change as the listing moves on); the bundles in
// between use the last choice. A bundle too small to sample
// minCachedSample bytes from is always sampled, and its choice is not
// reused. Sampling every bundle cost 4% of the CPU of a job of
// incompressible objects (issue 11's case 9 profile).
type levelChoice struct {
	mu     sync.Mutex
	n      int
	valid  bool // a sample was chosen from
	choice bundle.Choice
}

const resampleEvery = 8

// minCachedSample is the least sample a choice is reused from.
const minCachedSample = bundle.SampleBytes / 4

func (l *levelChoice) choose(b *bundle.Builder) (bundle.Choice, error) {
	l.mu.Lock()
	n := l.n
	l.n++
	c, valid := l.choice, l.valid
	l.mu.Unlock()
	if valid && n%resampleEvery != 0 {
		return c, nil
	}
	sample, err := b.Sample(bundle.SampleBytes)
	if err != nil {
		return bundle.Choice{}, err
	}
	c = bundle.ChooseLevel(sample)
	if len(sample) < minCachedSample {
		// Too little to speak for the job's next bundles (a bundle of a
		// few tiny objects and markers): used for this bundle only.
		return c, nil
	}
	l.mu.Lock()
	l.choice, l.valid = c, true
	l.mu.Unlock()
	return c, nil
}

// storeBundle writes the bundle to a local file, hashing it, and puts it
// in staging with its SHA-256 in its metadata.
func (jr *jobRun) storeBundle(ctx context.Context, b *bundle.Builder, work job.Work, bundleID, key string, level int) (*job.BundleRef, bundle.Manifest, error) {
	f, err := newScratch(jr.w.opts.TempDir)
	if err != nil {
		return nil, bundle.Manifest{}, err
	}
	defer f.Close()
	sum, crc := sha256.New(), crc32.New(crc32.MakeTable(crc32.Castagnoli))
	cw := &countWriter{w: io.MultiWriter(f, sum, crc)}
	m, err := b.WriteTo(ctx, cw, bundle.WriteOptions{ID: bundleID, Job: work.Job, Created: time.Now(), Level: level})
	if err != nil {
		return nil, bundle.Manifest{}, err
	}
	body, err := f.reader()
	if err != nil {
		return nil, bundle.Manifest{}, err
	}
	hexSum := hex.EncodeToString(sum.Sum(nil))
	in := store.PutInput{
		Key: key, Size: cw.n, ContentType: "application/x-ferry-bundle",
		Metadata: map[string]string{
			bundle.MetaSHA256: hexSum, bundle.MetaVersion: strconv.Itoa(bundle.Version),
			bundle.MetaCompression: m.Compression, bundle.MetaObjects: strconv.Itoa(len(m.Objects)),
		},
		ChecksumCRC32C: crc32cB64(crc.Sum32()),
	}
	if _, err := jr.staging.Put(ctx, in, body); err != nil {
		// A Put cut short may still have completed at the server: no
		// unpack item will name this key, so it must not stay.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if derr := jr.staging.Delete(dctx, key); derr != nil {
			err = errors.Join(err, fmt.Errorf("remove the bundle: %w", derr))
		}
		return nil, bundle.Manifest{}, fmt.Errorf("put bundle %s: %w", key, err)
	}
	return &job.BundleRef{Key: key, ID: bundleID, SHA256: hexSum, Size: cw.n, Pack: work.ID}, m, nil
}

// stagedManifest reads the manifest of a bundle in staging (its first tar
// entry only) and the bundle's attributes.
func (jr *jobRun) stagedManifest(ctx context.Context, key string) (bundle.Manifest, store.Attrs, error) {
	rc, attrs, err := jr.staging.Open(ctx, key, 0, -1)
	if err != nil {
		return bundle.Manifest{}, store.Attrs{}, err
	}
	defer rc.Close()
	if attrs.Metadata[bundle.MetaSHA256] == "" {
		return bundle.Manifest{}, store.Attrs{}, fmt.Errorf("bundle %s: %w: no %s metadata", key, bundle.ErrCorrupt, bundle.MetaSHA256)
	}
	rd, err := bundle.NewReader(rc, bundle.ReadOptions{})
	if err != nil {
		return bundle.Manifest{}, store.Attrs{}, fmt.Errorf("bundle %s: %w", key, err)
	}
	defer rd.Close()
	return rd.Manifest(), attrs, nil
}

// handleUnpack verifies an unpack item's bundle whole, restores its
// objects (in the worker's pool, each verified before it is visible) and
// removes the bundle from staging once every object in it is verified at
// the destination. It returns wait when the pack item's Final is not yet
// applied (the message is handled again shortly).
func (jr *jobRun) handleUnpack(work job.Work, redelivered bool, started func()) (ok, wait bool) {
	w := jr.w
	ctx := w.workCtx
	ref := work.Bundle
	pub := &publisher{conn: w.conn, job: work.Job}
	out := &batchOut{}
	fin := job.Final{V: job.WireVersion, Job: work.Job, Kind: work.Kind, Work: work.ID, Worker: w.opts.Name, Attempt: work.Attempt}
	if ref == nil {
		started()
		err := fmt.Errorf("%w: unpack work names no bundle", bundle.ErrCorrupt)
		jr.failAll(work, pub, out, err, failFinal)
		fin.Outcomes = out.outcomes
		return jr.publishFinal(pub, fin, false), false
	}
	// The pack item's Final is published just after this item: it is
	// usually applied within moments. Beyond packFinalWait the message is
	// put back (not an attempt) rather than held.
	wctx, cancel := context.WithTimeout(ctx, packFinalWait)
	done, err := job.WaitWorkFinished(wctx, w.conn.Ledger, work.Job, ref.Pack)
	cancel()
	if err != nil || !done {
		return false, true
	}
	file, m, err := jr.fetchBundle(ctx, work, ref)
	switch {
	case err == nil:
		defer file.Close()
	case errors.Is(err, store.ErrNotExist):
		// An earlier run restored every object and removed the bundle,
		// then stopped before its Final: the destination says.
		started()
		jr.unpackGone(ctx, work, pub, out)
		if len(out.retry) == 0 && out.failed == 0 {
			// Every object is at the destination and the bundle is gone:
			// its removal, which the earlier run did not get to report.
			fin.Pack = &job.PackResult{Bundle: ref.Key, Removed: true}
		}
		fin.Outcomes = out.outcomes
		fin.Children = out.children(jr, pub, work, ref)
		return jr.publishFinal(pub, fin, len(out.rest) > 0), false
	default:
		started()
		jr.log().Warn("unpack: bundle refused or unreadable", "bundle", ref.Key, "err", logtext.OneLine(err.Error()))
		jr.failAll(work, pub, out, err, jr.classify(ctx, err, work.Attempt))
		fin.Outcomes = out.outcomes
		fin.Children = out.children(jr, pub, work, ref)
		return jr.publishFinal(pub, fin, len(out.rest) > 0), false
	}
	want := make(map[string]job.Obj, len(work.Objs))
	for _, o := range work.Objs {
		want[o.K] = o
	}
	inBundle := make(map[string]bool, len(m.Objects))
	for _, o := range m.Objects {
		inBundle[o.Key] = true
	}
	var stray []job.Obj
	for _, o := range work.Objs {
		if !inBundle[o.K] {
			stray = append(stray, o)
		}
	}
	if m.ID != ref.ID || m.Job != work.Job || len(stray) > 0 || (work.Attempt == 1 && len(m.Objects) != len(work.Objs)) {
		started()
		err := fmt.Errorf("%w: bundle %s: its manifest (bundle %q of job %q, %d objects) does not match the work (bundle %q, %d objects, %d not in the manifest)",
			bundle.ErrCorrupt, ref.Key, m.ID, m.Job, len(m.Objects), ref.ID, len(work.Objs), len(stray))
		jr.log().Error("unpack: bundle refused", "bundle", ref.Key, "err", err)
		jr.failAll(work, pub, out, err, failFinal)
		fin.Outcomes = out.outcomes
		return jr.publishFinal(pub, fin, false), false
	}
	verified, err := file.reader()
	if err != nil {
		started()
		return false, false
	}
	// fetchBundle verified this file whole (its SHA-256 against the
	// signed work, every object's and the data's against the manifest):
	// the restore reads it again without hashing it again.
	rd, err := bundle.NewReader(verified, bundle.ReadOptions{MaxObjectSize: jr.spec.Pack.MaxObjectSize, Verified: true})
	if err != nil {
		started()
		return false, false
	}
	defer rd.Close()
	var wg sync.WaitGroup
	handedAll := true
	for {
		mo, body, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// Verified whole a moment ago: the local file changed.
			jr.log().Error("unpack: re-read the verified bundle", "bundle", ref.Key, "err", err)
			handedAll = false
			break
		}
		o, ok := want[mo.Key]
		if !ok {
			continue // restored by an earlier attempt of this item
		}
		// Sized from the manifest (checked against the tar header), from
		// a pool: returned once the object is written.
		data := transfer.SmallBuffer(mo.Size)
		_, err = io.ReadFull(body, data)
		if err == nil {
			_, err = io.Copy(io.Discard, body) // the entry's end
		}
		if err != nil {
			transfer.ReleaseSmall(data)
			handedAll = false
			break
		}
		delete(want, mo.Key)
		if jr.ctx.Err() != nil {
			transfer.ReleaseSmall(data)
			out.mu.Lock()
			out.rest = append(out.rest, o)
			out.mu.Unlock()
			continue
		}
		wg.Add(1)
		task := func() {
			defer wg.Done()
			defer transfer.ReleaseSmall(data)
			w.opts.Observer.ObjectStarted(work.Job)
			var res job.Result
			var err error
			if redelivered && jr.restored(ctx, mo, o.K) {
				// Restored by the run that was killed: not written again.
				res = finishResult(jr.objResult(o, work), job.OutcomeSkipped, "", nil)
			} else {
				res, err = jr.restoreOne(ctx, mo, o, data, work)
			}
			jr.objectDone(res, err)
			f := failRest
			if err != nil {
				f = jr.classify(ctx, err, work.Attempt)
			}
			out.add(jr, pub, work, o, res, err, f)
		}
		select {
		case w.tasks <- task:
			continue
		case <-jr.ctx.Done():
		}
		wg.Done()
		transfer.ReleaseSmall(data)
		out.mu.Lock()
		out.rest = append(out.rest, o)
		out.mu.Unlock()
	}
	started()
	wg.Wait()
	if !handedAll {
		return false, false
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	if len(out.retry) == 0 && len(out.rest) == 0 && out.failed == 0 {
		// Every object of the bundle is verified at the destination (this
		// attempt's, and an earlier attempt's before it named the rest).
		if err := jr.staging.Delete(ctx, ref.Key); err != nil {
			jr.log().Warn("unpack: remove bundle from staging", "bundle", ref.Key, "err", err)
			return false, false
		}
		fin.Pack = &job.PackResult{Bundle: ref.Key, Removed: true}
	} else if out.failed > 0 && len(out.retry) == 0 && len(out.rest) == 0 {
		jr.log().Warn("unpack: bundle kept in staging: some of its objects were not restored (see the dead-letter queue)", "bundle", ref.Key, "failed", out.failed)
	}
	fin.Outcomes = out.outcomes
	fin.Children = out.children(jr, pub, work, ref)
	return jr.publishFinal(pub, fin, len(out.rest) > 0), false
}

// restored reports whether the destination holds key restored from this
// source version: provenance with its ETag and size, and its creation
// time (a check, like a redelivered copy's; any doubt restores again).
func (jr *jobRun) restored(ctx context.Context, mo bundle.Object, key string) bool {
	attrs, err := jr.dst.Stat(ctx, key)
	if err != nil || attrs.Size != mo.Size {
		return false
	}
	p, ok := transfer.ParseProvenance(attrs.Metadata)
	return ok && p.SrcSize == mo.Size && p.SrcETag == mo.ETag && p.SrcModTime.Equal(mo.Created)
}

// failAll gives every object of work the failure err (classified as f).
func (jr *jobRun) failAll(work job.Work, pub *publisher, out *batchOut, err error, f objFailure) {
	for _, o := range work.Objs {
		res := finishResult(jr.objResult(o, work), job.OutcomeFailed, "destination", err)
		out.add(jr, pub, work, o, res, err, f)
	}
}

// fetchBundle downloads a bundle from staging into a local file, checks its
// SHA-256 against the unpack item and the bundle's own metadata, and
// verifies it whole against its manifest, all in one pass. Corruption
// wraps bundle.ErrCorrupt; a failed download does not.
func (jr *jobRun) fetchBundle(ctx context.Context, work job.Work, ref *job.BundleRef) (*scratch, bundle.Manifest, error) {
	rc, attrs, err := jr.staging.Open(ctx, ref.Key, 0, -1)
	if err != nil {
		return nil, bundle.Manifest{}, fmt.Errorf("get bundle %s: %w", ref.Key, err)
	}
	defer rc.Close()
	if got := attrs.Metadata[bundle.MetaSHA256]; got != ref.SHA256 {
		return nil, bundle.Manifest{}, fmt.Errorf("%w: bundle %s: metadata SHA-256 %q, the work says %q", bundle.ErrCorrupt, ref.Key, got, ref.SHA256)
	}
	f, err := newScratch(jr.w.opts.TempDir)
	if err != nil {
		return nil, bundle.Manifest{}, err
	}
	fail := func(err error) (*scratch, bundle.Manifest, error) {
		f.Close()
		return nil, bundle.Manifest{}, err
	}
	// One pass: the bytes are written to the file, hashed whole and
	// verified against the manifest as they arrive. At most one byte more
	// than the work says is read: a longer object is refused without
	// reading it all.
	sum := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, sum)}
	src := &sourceErr{r: io.LimitReader(rc, ref.Size+1)}
	in := io.TeeReader(src, cw)
	m, verr := bundle.Verify(in, bundle.ReadOptions{MaxObjectSize: jr.spec.Pack.MaxObjectSize})
	// Verify stops at the archive's end or at its first error: the rest
	// is read too, for the whole bundle's checksum.
	if _, err := io.Copy(io.Discard, in); err != nil && src.err == nil {
		return fail(fmt.Errorf("bundle file: %w", err))
	}
	if src.err != nil {
		// The download failed (not the bundle): worth another try.
		return fail(fmt.Errorf("get bundle %s: %w", ref.Key, src.err))
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != ref.SHA256 || cw.n != ref.Size {
		return fail(fmt.Errorf("%w: bundle %s: %d bytes with SHA-256 %s, want %d bytes with %s", bundle.ErrCorrupt, ref.Key, cw.n, got, ref.Size, ref.SHA256))
	}
	if verr != nil {
		return fail(fmt.Errorf("bundle %s: %w", ref.Key, verr))
	}
	return f, m, nil
}

// sourceErr remembers the first error of reading r other than its end.
type sourceErr struct {
	r   io.Reader
	err error
}

func (s *sourceErr) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && s.err == nil {
		s.err = err
	}
	return n, err
}

// scratch holds a bundle's bytes on their way to or from staging: a
// temporary file, removed by Close. (Holding bundles of up to 16 MiB in
// pooled memory instead was measured twice on issue 11's case 9: no less
// client CPU, and 1.5 times the peak RSS.)
type scratch struct{ file *os.File }

func newScratch(dir string) (*scratch, error) {
	f, err := os.CreateTemp(dir, ".ferry-bundle-*")
	if err != nil {
		return nil, fmt.Errorf("bundle file: %w", err)
	}
	return &scratch{file: f}, nil
}

func (s *scratch) Write(p []byte) (int, error) { return s.file.Write(p) }

// reader reads the bytes written, from the start.
func (s *scratch) reader() (io.ReadSeeker, error) {
	if _, err := s.file.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("bundle file: %w", err)
	}
	return s.file, nil
}

func (s *scratch) Close() {
	if s.file != nil {
		s.file.Close()
		os.Remove(s.file.Name())
		s.file = nil
	}
}

// restoreOne writes one object of a bundle at the destination, with its
// headers, metadata, tags and provenance, verified before it is visible.
func (jr *jobRun) restoreOne(ctx context.Context, mo bundle.Object, o job.Obj, data []byte, work job.Work) (job.Result, error) {
	res := jr.objResult(o, work)
	in, src := RestoreInput(mo, o.K)
	// The packer checked these bytes' MD5 against the source's plain-MD5
	// ETag, and the bundle's SHA-256 says they are the bytes it packed.
	knownMD5 := ""
	if mo.SourceCheck == transfer.VerifiedMD5 {
		knownMD5 = mo.ETag
	}
	pr, crc, err := jr.eng.PutSmall(ctx, in, src, data, knownMD5)
	if err != nil {
		return finishResult(res, job.OutcomeFailed, "destination", err), err
	}
	jr.w.opts.Stats.Add(int64(len(data)))
	res.Size, res.Method, res.CRC32C = int64(len(data)), "bundle", crc
	res.Verified = mo.SourceCheck
	if res.Verified == "" {
		res.Verified = job.Unverified
	}
	res.MD5 = mo.SourceCheck == transfer.VerifiedMD5
	res.SrcETag, res.SrcVersion, res.DstETag, res.DstVersion = mo.ETag, mo.VersionID, pr.ETag, pr.VersionID
	return finishResult(res, job.OutcomeCopied, "", nil), nil
}

// RestoreInput is the write of a bundle's object mo as key: its content
// headers, user metadata and tags as the source had them, plus the source's
// ETag and creation time as metadata always, and as the tags OriginalETag
// and OriginalCreationTime when the object has room for two more tags (S3
// allows 10). src is the source object, for the provenance
// [transfer.Engine.PutSmall] records.
func RestoreInput(mo bundle.Object, key string) (in store.PutInput, src store.Object) {
	created := mo.Created.UTC().Format(time.RFC3339Nano)
	md := make(map[string]string, len(mo.Metadata)+2)
	maps.Copy(md, mo.Metadata)
	setNonEmpty(md, MetaOriginalETag, mo.ETag)
	md[MetaOriginalCreationTime] = created
	tags := make(map[string]string, len(mo.Tags)+2)
	maps.Copy(tags, mo.Tags)
	if len(mo.Tags)+2 <= maxTags {
		setNonEmpty(tags, TagOriginalETag, mo.ETag)
		tags[TagOriginalCreationTime] = created
	}
	in = store.PutInput{
		Key: key, ContentType: mo.ContentType, ContentEncoding: mo.ContentEncoding,
		ContentDisposition: mo.ContentDisposition, ContentLanguage: mo.ContentLanguage,
		CacheControl: mo.CacheControl, Expires: mo.Expires, Metadata: md, Tags: tags, ModTime: mo.Created,
	}
	return in, store.Object{Key: key, Size: mo.Size, ETag: mo.ETag, LastModified: mo.Created}
}

// unpackGone accounts for the objects of an unpack item whose bundle is no
// longer in staging: each one the destination holds with this source
// version's provenance was restored by an earlier run (skipped, as a
// redelivered copy would be); any other is dead-lettered.
func (jr *jobRun) unpackGone(ctx context.Context, work job.Work, pub *publisher, out *batchOut) {
	for _, o := range work.Objs {
		res := jr.objResult(o, work)
		attrs, err := jr.dst.Stat(ctx, o.K)
		if err == nil {
			p, ok := transfer.ParseProvenance(attrs.Metadata)
			if ok && p.SrcSize == o.S && (o.E == "" || p.SrcETag == o.E) {
				out.add(jr, pub, work, o, finishResult(res, job.OutcomeSkipped, "", nil), nil, failRest)
				continue
			}
			err = fmt.Errorf("bundle %s is no longer in staging and the destination does not hold this object", work.Bundle.Key)
			out.add(jr, pub, work, o, finishResult(res, job.OutcomeFailed, "destination", err), err, failFinal)
			continue
		}
		if errors.Is(err, store.ErrNotExist) {
			err = fmt.Errorf("bundle %s is no longer in staging and the destination does not hold this object: %w", work.Bundle.Key, bundle.ErrCorrupt)
		}
		out.add(jr, pub, work, o, finishResult(res, job.OutcomeFailed, "destination", err), err, jr.classify(ctx, err, work.Attempt))
	}
}

func setNonEmpty(m map[string]string, k, v string) {
	if v != "" {
		m[k] = v
	}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func crc32cB64(sum uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], sum)
	return base64.StdEncoding.EncodeToString(b[:])
}

// errNoStaging: the worker was given no way to open staging locations.
var errNoStaging = errors.New("this worker cannot open staging locations (no OpenStaging)")

func (jr *jobRun) openStaging(ctx context.Context) (store.Store, error) {
	if jr.w.opts.OpenStaging == nil {
		return nil, errNoStaging
	}
	return jr.w.opts.OpenStaging(ctx, jr.spec)
}
