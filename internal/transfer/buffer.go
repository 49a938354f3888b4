package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

// slabSize is the unit of buffer memory. Part and object buffers are made of
// slabs from one shared sync.Pool, so buffers of any size reuse the same
// memory and no copy allocates a fresh buffer of its own size.
const slabSize = 64 << 10

type slab = [slabSize]byte

var slabPool = sync.Pool{New: func() any { return new(slab) }}

// budget bounds the bytes of buffers in flight across every copy of an
// Engine. A buffer waits for budget before it takes slabs from the pool.
type budget struct {
	sem   *semaphore.Weighted
	limit int64

	inUse atomic.Int64 // bytes of slabs held now
	peak  atomic.Int64 // highest inUse seen, for tests
}

func newBudget(limit int64) *budget {
	return &budget{sem: semaphore.NewWeighted(limit), limit: limit}
}

// get returns a buffer able to hold n bytes, waiting until the budget allows
// it or ctx is done. A buffer larger than the whole budget takes all of it,
// so it runs alone (see [Options.MemoryLimit]).
func (b *budget) get(ctx context.Context, n int64) (*buffer, error) {
	nslabs := (n + slabSize - 1) / slabSize
	bytes := nslabs * slabSize
	weight := min(bytes, b.limit)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("wait for buffer memory: %w", err)
	}
	if err := b.sem.Acquire(ctx, weight); err != nil {
		return nil, fmt.Errorf("wait for buffer memory: %w", err)
	}
	cur := b.inUse.Add(bytes)
	for {
		p := b.peak.Load()
		if cur <= p || b.peak.CompareAndSwap(p, cur) {
			break
		}
	}
	buf := &buffer{budget: b, weight: weight, bytes: bytes, slabs: make([]*slab, nslabs)}
	for i := range buf.slabs {
		buf.slabs[i] = slabPool.Get().(*slab)
	}
	return buf, nil
}

// buffer holds up to len(slabs)*slabSize bytes in pooled slabs.
type buffer struct {
	budget *budget
	weight int64
	bytes  int64
	slabs  []*slab
	n      int64 // bytes filled
	once   sync.Once
}

// fill reads exactly n bytes from r into the buffer, writing them to every
// hash (or other writer, nil ones skipped) as they arrive: one pass over the
// bytes, no re-read.
func (b *buffer) fill(r io.Reader, n int64, hs ...io.Writer) error {
	b.n = 0
	for i := 0; b.n < n; i++ {
		chunk := b.slabs[i][:min(slabSize, n-b.n)]
		got, err := io.ReadFull(r, chunk)
		for _, h := range hs {
			if h != nil {
				h.Write(chunk[:got])
			}
		}
		b.n += int64(got)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("read %d of %d bytes: %w", b.n, n, err)
		}
	}
	return nil
}

// writeTo writes the filled bytes to w, slab by slab.
func (b *buffer) writeTo(w io.Writer) {
	for off := int64(0); off < b.n; off += slabSize {
		w.Write(b.slabs[off/slabSize][:min(slabSize, b.n-off)])
	}
}

// reader returns an independent io.ReadSeeker over the filled bytes; a store
// may seek back to resend them.
func (b *buffer) reader() io.ReadSeeker { return &bufReader{b: b} }

// release returns the slabs to the pool and the bytes to the budget. The
// buffer must not be used afterwards. Calling release again does nothing.
func (b *buffer) release() {
	b.once.Do(func() {
		for i, s := range b.slabs {
			slabPool.Put(s)
			b.slabs[i] = nil
		}
		b.budget.inUse.Add(-b.bytes)
		b.budget.sem.Release(b.weight)
	})
}

type bufReader struct {
	b   *buffer
	off int64
}

func (r *bufReader) Read(p []byte) (int, error) {
	if r.off >= r.b.n {
		return 0, io.EOF
	}
	total := 0
	for len(p) > 0 && r.off < r.b.n {
		s := r.b.slabs[r.off/slabSize]
		start := r.off % slabSize
		end := min(int64(slabSize), start+(r.b.n-r.off))
		n := copy(p, s[start:end])
		p = p[n:]
		r.off += int64(n)
		total += n
	}
	return total, nil
}

func (r *bufReader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.off + offset
	case io.SeekEnd:
		abs = r.b.n + offset
	default:
		return 0, errors.New("transfer: seek: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("transfer: seek: negative position")
	}
	r.off = abs
	return abs, nil
}
