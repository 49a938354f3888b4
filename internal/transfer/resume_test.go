package transfer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/mem"
)

// memResumer keeps upload states in a map, as copies (like a KV bucket).
type memResumer struct {
	mu sync.Mutex
	m  map[string]UploadState

	saves, deletes atomic.Int32
	saveErr        func(st UploadState) error // set before use
}

var _ Resumer = (*memResumer)(nil)

func newResumer() *memResumer { return &memResumer{m: map[string]UploadState{}} }

func (r *memResumer) Load(ctx context.Context, key string) (UploadState, bool, error) {
	if err := ctx.Err(); err != nil {
		return UploadState{}, false, err
	}
	return r.get(key)
}

func (r *memResumer) get(key string) (UploadState, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.m[key]
	st.Parts = slices.Clone(st.Parts)
	return st, ok, nil
}

func (r *memResumer) put(st UploadState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st.Parts = slices.Clone(st.Parts)
	r.m[st.DstKey] = st
}

func (r *memResumer) Save(ctx context.Context, st UploadState) error {
	r.saves.Add(1)
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.saveErr != nil {
		if err := r.saveErr(st); err != nil {
			return err
		}
	}
	r.put(st)
	return nil
}

func (r *memResumer) Delete(ctx context.Context, key string) error {
	r.deletes.Add(1)
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, key)
	return nil
}

func (r *memResumer) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m)
}

func partNumbers(ps []store.Part) []int32 {
	var ns []int32
	for _, p := range ps {
		ns = append(ns, p.Number)
	}
	slices.Sort(ns)
	return ns
}

func TestCRC32CCombine(t *testing.T) {
	data := testData(3*slabSize+17, 1)
	for _, cut := range []int{0, 1, 7, slabSize, len(data) - 1, len(data)} {
		a, b := data[:cut], data[cut:]
		got := crc32cCombine(crc32.Checksum(a, castagnoli), crc32.Checksum(b, castagnoli), int64(len(b)))
		if want := crc32.Checksum(data, castagnoli); got != want {
			t.Errorf("cut %d: combined %08x, want %08x", cut, got, want)
		}
	}
	var parts []store.Part
	for i, off := int32(1), 0; off < len(data); i, off = i+1, off+testPart {
		p := data[off:min(off+testPart, len(data))]
		parts = append(parts, store.Part{Number: i, Size: int64(len(p)), ChecksumCRC32C: crcOf(p)})
	}
	if got, err := combinedCRC(parts); err != nil || got != crcOf(data) {
		t.Errorf("combinedCRC = %q, %v; want %q", got, err, crcOf(data))
	}
}

// resumeOptions are testOptions with r.
func resumeOptions(r Resumer) Options {
	o := testOptions()
	o.Resumer = r
	return o
}

// drained copies obj and drains the copy (ErrDrain) when the destination
// starts the 4th UploadPart. It returns the state kept.
func drained(t *testing.T, src, dst *fakeStore, r *memResumer, obj store.Object) UploadState {
	t.Helper()
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	dst.partHook = func(n int32, call int) error {
		if call >= 4 {
			cancel(ErrDrain)
			return fmt.Errorf("upload part %d: %w", n, context.Canceled)
		}
		return nil
	}
	defer func() { dst.partHook = nil }()
	res, err := New(src, dst, resumeOptions(r)).Copy(ctx, obj, obj.Key)
	if !errors.Is(err, context.Canceled) || res.Attempts != 1 {
		t.Fatalf("drained copy: attempts %d, err %v", res.Attempts, err)
	}
	if dst.aborts.Load() != 0 || dst.openUploads() != 1 || len(dst.keys()) != 0 {
		t.Fatalf("after drain: aborts %d, uploads %d, keys %q", dst.aborts.Load(), dst.openUploads(), dst.keys())
	}
	st, ok, _ := r.get(obj.Key)
	if !ok {
		t.Fatal("no upload state saved")
	}
	held, ok := dst.uploadParts(st.UploadID)
	if !ok || !slices.Equal(held, partNumbers(st.Parts)) {
		t.Fatalf("state records parts %v of upload %q, destination holds %v (%v)", partNumbers(st.Parts), st.UploadID, held, ok)
	}
	nparts := partCount(obj.Size, testPart)
	if len(st.Parts) == 0 || int64(len(st.Parts)) >= nparts {
		t.Fatalf("%d of %d parts recorded", len(st.Parts), nparts)
	}
	if st.DstKey != obj.Key || st.SrcKey != obj.Key || st.SrcETag != obj.ETag || st.SrcSize != obj.Size ||
		!st.SrcModTime.Equal(obj.LastModified) || st.PartSize != testPart {
		t.Errorf("state %+v, source %+v", st, obj)
	}
	return st
}

// TestResumeAfterDrain: a drained copy keeps its upload and state; a new
// Engine (a new process) continues it, uploading only the missing parts.
func TestResumeAfterDrain(t *testing.T) {
	src, dst := newFake("src"), newFake("dst")
	data := testData(10*testPart+77, 21)
	obj := src.add("k", data, store.Attrs{}, map[string]string{"t": "1"})
	r := newResumer()
	st := drained(t, src, dst, r, obj)

	dst.parts.Store(0)
	src.opens.Store(0)
	e := New(src, dst, resumeOptions(r))
	res, err := e.Copy(context.Background(), obj, "k")
	if err != nil {
		t.Fatal(err)
	}
	missing := int32(11 - len(st.Parts))
	if got := dst.parts.Load(); got != missing {
		t.Errorf("%d UploadPart calls, want %d (the missing parts)", got, missing)
	}
	if got := src.opens.Load(); got != missing {
		t.Errorf("%d source opens, want %d ranged ones", got, missing)
	}
	if res.Method != MethodMultipart || res.ResumedParts != len(st.Parts) || res.CRC32C != crcOf(data) || res.MD5Verified || res.Attempts != 1 {
		t.Errorf("result %+v", res)
	}
	checkCopied(t, dst, "k", data, obj)
	if o, _ := dst.get("k"); o.tags["t"] != "1" {
		t.Errorf("tags %v", o.tags)
	}
	if dst.creates.Load() != 1 || dst.aborts.Load() != 0 || dst.openUploads() != 0 || r.len() != 0 {
		t.Errorf("creates %d aborts %d uploads %d states %d", dst.creates.Load(), dst.aborts.Load(), dst.openUploads(), r.len())
	}
	if e.mem.inUse.Load() != 0 {
		t.Errorf("%d bytes of buffers not released", e.mem.inUse.Load())
	}
}

// TestResume continues uploads recorded by hand, in the states a job may
// find them.
func TestResume(t *testing.T) {
	const nparts = 6
	data := testData(nparts*testPart-5, 31)
	other := testData(nparts*testPart-5, 32)
	tests := []struct {
		name     string
		have     []int32 // parts uploaded before
		partSize int64   // of the recorded upload; 0: testPart
		srcAttrs store.Attrs
		corrupt  int32                                      // part uploaded with wrong bytes (and their CRC32C)
		change   func(st *UploadState, src, dst *fakeStore) // between the runs
		attempts int

		wantErr     error
		wantParts   int32 // UploadPart calls
		atLeast     bool  // wantParts is a minimum (parts racing a failure)
		wantResumed int
		wantCreates int32 // including the recorded upload's
		wantAborts  int32
		wantData    []byte
	}{
		{name: "missing parts", have: []int32{1, 3, 4},
			wantParts: 3, wantResumed: 3, wantCreates: 1, wantData: data},
		{name: "all parts done", have: []int32{1, 2, 3, 4, 5, 6},
			wantParts: 0, wantResumed: 6, wantCreates: 1, wantData: data},
		{name: "part size of the upload kept", have: []int32{2}, partSize: 2 * testPart,
			wantParts: 2, wantResumed: 1, wantCreates: 1, wantData: data},
		{name: "source changed", have: []int32{1, 2},
			change:    func(_ *UploadState, src, _ *fakeStore) { src.add("k", other, store.Attrs{}, nil) },
			wantParts: nparts, wantCreates: 2, wantAborts: 1, wantData: other},
		{name: "source touched, same etag", have: []int32{1, 2},
			change: func(_ *UploadState, src, _ *fakeStore) {
				o, _ := src.get("k")
				src.add("k", data, store.Attrs{Object: store.Object{LastModified: o.attrs.LastModified.Add(1e9)}}, nil)
			},
			wantParts: nparts, wantCreates: 2, wantAborts: 1, wantData: data},
		{name: "invalid part in state", have: []int32{1, 2},
			change:    func(st *UploadState, _, _ *fakeStore) { st.Parts[0].Size++ },
			wantParts: nparts, wantCreates: 2, wantAborts: 1, wantData: data},
		{name: "upload vanished", have: []int32{1, 2},
			change:    func(_ *UploadState, _, dst *fakeStore) { dst.dropUploads() },
			wantParts: nparts + 1, atLeast: true, wantCreates: 2, wantData: data}, // one or more parts to the vanished upload
		{name: "upload vanished, all parts done", have: []int32{1, 2, 3, 4, 5, 6},
			change:    func(_ *UploadState, _, dst *fakeStore) { dst.dropUploads() },
			wantParts: nparts, wantCreates: 2, wantData: data},
		{name: "corrupt part caught by source crc32c, then copied afresh", have: []int32{1, 2, 3}, corrupt: 2,
			srcAttrs: store.Attrs{Object: store.Object{ETag: "0123456789abcdef0123456789abcdef-2"}, ChecksumCRC32C: crcOf(data)},
			attempts: 2, wantParts: 3 + nparts, wantCreates: 2, wantAborts: 1, wantData: data},
		{name: "corrupt part caught by source crc32c", have: []int32{1, 2, 3}, corrupt: 2,
			srcAttrs: store.Attrs{Object: store.Object{ETag: "0123456789abcdef0123456789abcdef-2"}, ChecksumCRC32C: crcOf(data)},
			wantErr:  store.ErrChecksum, wantParts: 3, wantResumed: 3, wantCreates: 1, wantAborts: 1},
		{name: "destination assembled other bytes", have: []int32{1},
			change: func(_ *UploadState, _, dst *fakeStore) {
				dst.putResult = func(pr store.PutResult) store.PutResult { pr.ChecksumCRC32C = crcOf(other); return pr }
			},
			wantErr: store.ErrChecksum, wantParts: 5, wantResumed: 1, wantCreates: 1},
		{name: "destination states no crc32c: read back", have: []int32{1},
			change: func(_ *UploadState, _, dst *fakeStore) {
				dst.putResult = func(pr store.PutResult) store.PutResult { pr.ChecksumCRC32C = ""; return pr }
			},
			wantParts: 5, wantResumed: 1, wantCreates: 1, wantData: data},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			src, dst := newFake("src"), newFake("dst")
			obj := src.add("k", data, tt.srcAttrs, nil)
			attrs, _ := src.Stat(ctx, "k")
			r := newResumer()
			opts := resumeOptions(r)
			opts.Attempts = max(tt.attempts, 1)
			e := New(src, dst, opts)

			partSize := cmpOr(tt.partSize, testPart)
			in := e.putInput(attrs, "k", nil, "")
			in.PartSize = partSize
			id, err := dst.CreateMultipart(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			st := UploadState{UploadID: id, DstKey: "k", SrcKey: "k", SrcETag: attrs.ETag, SrcSize: attrs.Size,
				SrcModTime: attrs.LastModified, PartSize: partSize}
			for _, n := range tt.have {
				b := bytes.Clone(data[int64(n-1)*partSize : min(int64(n)*partSize, int64(len(data)))])
				if n == tt.corrupt {
					b[0] ^= 1
				}
				p, err := dst.UploadPart(ctx, "k", id, n, bytes.NewReader(b), int64(len(b)), crcOf(b))
				if err != nil {
					t.Fatal(err)
				}
				st.Parts = append(st.Parts, p)
			}
			slices.Reverse(st.Parts) // any order
			if tt.change != nil {
				tt.change(&st, src, dst)
			}
			r.put(st)
			dst.parts.Store(0)

			res, err := e.Copy(ctx, obj, "k")
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if len(dst.keys()) != 0 {
					t.Errorf("unverified object left: %q", dst.keys())
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if got := dst.parts.Load(); got < tt.wantParts || (got > tt.wantParts && !tt.atLeast) {
				t.Errorf("%d UploadPart calls, want %d", got, tt.wantParts)
			}
			if res.ResumedParts != tt.wantResumed || dst.creates.Load() != tt.wantCreates || dst.aborts.Load() != tt.wantAborts {
				t.Errorf("resumed %d creates %d aborts %d; want %d %d %d", res.ResumedParts, dst.creates.Load(), dst.aborts.Load(),
					tt.wantResumed, tt.wantCreates, tt.wantAborts)
			}
			if dst.openUploads() != 0 || r.len() != 0 {
				t.Errorf("left behind: %d uploads, %d states", dst.openUploads(), r.len())
			}
			if tt.wantData == nil {
				return
			}
			fresh := res.ResumedParts == 0
			if res.CRC32C != crcOf(tt.wantData) || res.MD5Verified != (fresh && tt.srcAttrs.ChecksumCRC32C == "") {
				t.Errorf("result %+v", res)
			}
			now, _ := src.Stat(ctx, "k")
			checkCopied(t, dst, "k", tt.wantData, now.Object)
		})
	}
}

func cmpOr(a, b int64) int64 {
	if a != 0 {
		return a
	}
	return b
}

// TestResumeFailures: what a copy with a Resumer leaves when it fails or is
// cancelled other than by a drain.
func TestResumeFailures(t *testing.T) {
	tests := []struct {
		name       string
		noResumer  bool
		cause      error // cancel the copy at the 3rd part with this cause; nil: don't
		partErr    error // the 3rd part fails with this
		saveErr    bool  // Save fails after CreateMultipart
		wantErr    error
		wantKept   bool
		wantAborts int32
	}{
		{name: "drain keeps", cause: ErrDrain, partErr: context.Canceled, wantErr: context.Canceled, wantKept: true},
		{name: "plain cancel aborts", cause: context.Canceled, partErr: context.Canceled, wantErr: context.Canceled, wantAborts: 1},
		{name: "other cause aborts", cause: errors.New("second signal"), partErr: context.Canceled, wantErr: context.Canceled, wantAborts: 1},
		{name: "drain without resumer aborts", noResumer: true, cause: ErrDrain, partErr: context.Canceled, wantErr: context.Canceled, wantAborts: 1},
		{name: "checksum error while draining aborts", cause: ErrDrain, partErr: store.ErrChecksum, wantErr: store.ErrChecksum, wantAborts: 1},
		{name: "permanent error aborts", partErr: store.ErrAccess, wantErr: store.ErrAccess, wantAborts: 1},
		{name: "permanent error while draining aborts", cause: ErrDrain, partErr: store.ErrAccess, wantErr: store.ErrAccess, wantAborts: 1},
		{name: "state not saved aborts", saveErr: true, wantErr: errSave, wantAborts: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, dst := newFake("src"), newFake("dst")
			obj := src.add("k", testData(8*testPart, 41), store.Attrs{}, nil)
			r := newResumer()
			if tt.saveErr {
				r.saveErr = func(UploadState) error { return errSave }
			}
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			dst.partHook = func(n int32, call int) error {
				if call < 3 || tt.partErr == nil {
					return nil
				}
				if tt.cause != nil {
					cancel(tt.cause)
				}
				return fmt.Errorf("upload part %d: %w", n, tt.partErr)
			}
			opts := resumeOptions(r)
			if tt.noResumer {
				opts.Resumer = nil
			}
			opts.Attempts = 1
			_, err := New(src, dst, opts).Copy(ctx, obj, "k")
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if dst.aborts.Load() != tt.wantAborts || len(dst.keys()) != 0 || dst.completes.Load() != 0 {
				t.Errorf("aborts %d keys %q completes %d", dst.aborts.Load(), dst.keys(), dst.completes.Load())
			}
			kept := 0
			if tt.wantKept {
				kept = 1
			}
			if dst.openUploads() != kept || r.len() != kept {
				t.Errorf("%d uploads and %d states left, want %d", dst.openUploads(), r.len(), kept)
			}
			if !tt.noResumer && r.saves.Load() == 0 {
				t.Error("no Save")
			}
		})
	}
}

var errSave = errors.New("kv unavailable")

func TestAbortUpload(t *testing.T) {
	src, dst := newFake("src"), newFake("dst")
	obj := src.add("k", testData(10*testPart, 51), store.Attrs{}, nil)
	r := newResumer()
	st := drained(t, src, dst, r, obj)
	e := New(src, dst, resumeOptions(r))
	if err := e.AbortUpload(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	if dst.openUploads() != 0 || r.len() != 0 {
		t.Errorf("%d uploads, %d states left", dst.openUploads(), r.len())
	}
	if err := e.AbortUpload(context.Background(), st); err != nil {
		t.Errorf("second AbortUpload: %v", err)
	}
	// A state recording another upload of the key is not deleted.
	r.put(UploadState{UploadID: "other", DstKey: "k"})
	if err := e.AbortUpload(context.Background(), st); err != nil || r.len() != 1 {
		t.Errorf("AbortUpload of a replaced state: %v, %d states", err, r.len())
	}
	if err := New(src, plain{dst}, Options{}).AbortUpload(context.Background(), st); err == nil {
		t.Error("AbortUpload without Multipart succeeded")
	}
}

// TestResumeMem drains and resumes between mem stores (the shared
// in-memory implementation).
func TestResumeMem(t *testing.T) {
	ctx := context.Background()
	src, dst := mem.New("src"), mem.New("dst")
	data := testData(9*testPart+3, 61)
	in := store.PutInput{Key: "a/b", Size: int64(len(data)), Metadata: map[string]string{"m": "v"}}
	if _, err := src.Put(ctx, in, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	sa, err := src.Stat(ctx, "a/b")
	if err != nil {
		t.Fatal(err)
	}
	r := newResumer()
	dctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var calls atomic.Int32
	dst.SetFault(func(op, key string) error {
		if op == mem.OpUploadPart && calls.Add(1) > 5 {
			cancel(ErrDrain)
			return context.Canceled
		}
		return nil
	})
	opts := resumeOptions(r)
	opts.PartConcurrency = 1
	if _, err := New(src, dst, opts).Copy(dctx, sa.Object, "c/d"); !errors.Is(err, context.Canceled) {
		t.Fatalf("drained copy: %v", err)
	}
	st, ok, _ := r.get("c/d")
	if !ok || len(st.Parts) != 5 || dst.Uploads() != 1 || dst.Calls(mem.OpAbortMultipart) != 0 {
		t.Fatalf("after drain: state %v with %d parts, %d uploads, %d aborts", ok, len(st.Parts), dst.Uploads(), dst.Calls(mem.OpAbortMultipart))
	}

	dst.SetFault(nil)
	dst.ResetCalls()
	res, err := New(src, dst, resumeOptions(r)).Copy(ctx, sa.Object, "c/d")
	if err != nil {
		t.Fatal(err)
	}
	if n := dst.Calls(mem.OpUploadPart); n != 5 {
		t.Errorf("%d UploadPart calls, want 5", n)
	}
	if res.ResumedParts != 5 || res.CRC32C != crcOf(data) {
		t.Errorf("result %+v", res)
	}
	if got, _ := dst.Bytes("c/d"); !bytes.Equal(got, data) {
		t.Error("destination bytes differ")
	}
	da, err := dst.Stat(ctx, "c/d")
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := ParseProvenance(da.Metadata); !ok || p.SrcETag != sa.ETag || da.Metadata["m"] != "v" {
		t.Errorf("metadata %v", da.Metadata)
	}
	if dst.Uploads() != 0 || r.len() != 0 {
		t.Errorf("%d uploads, %d states left", dst.Uploads(), r.len())
	}
	if m, err := New(src, dst, Options{}).Verify(ctx, sa.Object, da.Object); err != nil || m != "" {
		t.Errorf("Verify = %q, %v", m, err)
	}
}

// TestResumeChecksListParts: the recorded parts of an upload are checked
// against the destination's ListParts before it is continued. A recorded
// part the destination does not hold as recorded is uploaded again; an
// upload the destination no longer has is started afresh.
func TestResumeChecksListParts(t *testing.T) {
	ctx := context.Background()
	src := mem.New("src")
	data := testData(9*testPart+3, 62)
	if _, err := src.Put(ctx, store.PutInput{Key: "k", Size: int64(len(data))}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	sa, err := src.Stat(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	// drain copies until 5 parts are recorded, then stops the copy.
	drain := func(dst *mem.Store, r *memResumer) UploadState {
		dctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		var calls atomic.Int32
		dst.SetFault(func(op, key string) error {
			if op == mem.OpUploadPart && calls.Add(1) > 5 {
				cancel(ErrDrain)
				return context.Canceled
			}
			return nil
		})
		defer dst.SetFault(nil)
		opts := resumeOptions(r)
		opts.PartConcurrency = 1
		if _, err := New(src, dst, opts).Copy(dctx, sa.Object, "k"); !errors.Is(err, context.Canceled) {
			t.Fatalf("drained copy: %v", err)
		}
		st, ok, _ := r.get("k")
		if !ok || len(st.Parts) != 5 {
			t.Fatalf("after drain: state %v with %d parts", ok, len(st.Parts))
		}
		return st
	}

	t.Run("a recorded part the destination lists otherwise", func(t *testing.T) {
		dst, r := mem.New("dst"), newResumer()
		st := drain(dst, r)
		st.Parts[1].ETag = "0123456789abcdef0123456789abcdef"
		r.put(st)
		dst.ResetCalls()
		res, err := New(src, dst, resumeOptions(r)).Copy(ctx, sa.Object, "k")
		if err != nil {
			t.Fatal(err)
		}
		if n := dst.Calls(mem.OpUploadPart); n != 6 || dst.Calls(mem.OpListParts) != 1 || res.ResumedParts != 4 {
			t.Errorf("%d UploadPart, %d ListParts calls, %d parts resumed; want 6, 1, 4", n, dst.Calls(mem.OpListParts), res.ResumedParts)
		}
		if got, _ := dst.Bytes("k"); !bytes.Equal(got, data) {
			t.Error("destination bytes differ")
		}
	})
	t.Run("an upload the destination no longer has", func(t *testing.T) {
		dst, r := mem.New("dst"), newResumer()
		st := drain(dst, r)
		if err := dst.AbortMultipart(ctx, "k", st.UploadID); err != nil {
			t.Fatal(err)
		}
		dst.ResetCalls()
		res, err := New(src, dst, resumeOptions(r)).Copy(ctx, sa.Object, "k")
		if err != nil {
			t.Fatal(err)
		}
		if n := dst.Calls(mem.OpUploadPart); n != 10 || res.ResumedParts != 0 {
			t.Errorf("%d UploadPart calls, %d parts resumed; want a fresh copy of 10 parts", n, res.ResumedParts)
		}
		if got, _ := dst.Bytes("k"); !bytes.Equal(got, data) || dst.Uploads() != 0 || r.len() != 0 {
			t.Errorf("bytes equal %v, %d uploads, %d states left", bytes.Equal(got, data), dst.Uploads(), r.len())
		}
	})
}
