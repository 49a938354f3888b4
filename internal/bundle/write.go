package bundle

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Builder collects a bundle's objects in a local spool file, then writes
// the bundle with its manifest first. It is not safe for concurrent use.
type Builder struct {
	spool *spool
	objs  []Object
	keys  map[string]bool
	// buf is the copy buffer of Add and WriteTo (one per builder, not one
	// per object).
	buf []byte
	// offsets of each object's bytes in the spool.
	offs []int64
	// data hashes every object's bytes in order as they are added (the
	// manifest's data checksum), so that WriteTo need not read them again.
	data hash.Hash
	size int64
	done bool
}

// NewBuilder returns a builder whose spool file is created in dir (""
// for the system's temporary directory) on the first object with bytes.
// Close removes it.
func NewBuilder(dir string) (*Builder, error) {
	if dir != "" {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("bundle spool: directory %q: not a directory (%v)", dir, err)
		}
	}
	return &Builder{spool: &spool{dir: dir}, keys: map[string]bool{}, buf: make([]byte, 64<<10), data: sha256.New()}, nil
}

// Close removes the spool.
func (b *Builder) Close() error {
	if b.spool == nil {
		return nil
	}
	err := b.spool.Close()
	b.spool = nil
	return err
}

// Len is the number of objects added; DataBytes their total size.
func (b *Builder) Len() int         { return len(b.objs) }
func (b *Builder) DataBytes() int64 { return b.size }

// Objects returns the objects added so far (with their SHA-256).
func (b *Builder) Objects() []Object { return b.objs }

// Add spools one object: exactly o.Size bytes of body. Its SHA-256 is
// computed here (o.SHA256 is ignored). On error nothing of it is kept, and
// the builder can take the next object.
func (b *Builder) Add(o Object, body io.Reader) error {
	if err := b.check(o); err != nil {
		return err
	}
	// The data checksum's state before this object: a failed read leaves
	// it as it was.
	before, err := b.data.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(b.spool, h, b.data), io.LimitReader(body, o.Size+1), b.buf)
	if err == nil && n != o.Size {
		err = fmt.Errorf("read %d bytes, want %d", n, o.Size)
	}
	if err != nil {
		b.spool.truncate(b.size)
		err = fmt.Errorf("bundle: read %q: %w", o.Key, err)
		if uerr := b.data.(encoding.BinaryUnmarshaler).UnmarshalBinary(before); uerr != nil {
			err = errors.Join(err, fmt.Errorf("bundle: %w", uerr))
		}
		return err
	}
	b.added(o, h)
	return nil
}

// AddBytes is Add of an object whose bytes are in memory (o.Size is
// len(data)): they are hashed and spooled once, without a copy through
// the builder's buffer.
func (b *Builder) AddBytes(o Object, data []byte) error {
	o.Size = int64(len(data))
	if err := b.check(o); err != nil {
		return err
	}
	if _, err := b.spool.Write(data); err != nil {
		b.spool.truncate(b.size)
		return fmt.Errorf("bundle: spool %q: %w", o.Key, err)
	}
	h := sha256.New()
	h.Write(data)
	b.data.Write(data)
	b.added(o, h)
	return nil
}

func (b *Builder) check(o Object) error {
	if b.done {
		return errors.New("bundle: Add after WriteTo")
	}
	if err := CheckKey(o.Key); err != nil {
		return fmt.Errorf("bundle: key %q: %w", o.Key, err)
	}
	if b.keys[o.Key] {
		return fmt.Errorf("bundle: key %q added twice", o.Key)
	}
	return nil
}

func (b *Builder) added(o Object, h hash.Hash) {
	o.SHA256 = hex.EncodeToString(h.Sum(nil))
	b.objs = append(b.objs, o)
	b.keys[o.Key] = true
	b.offs = append(b.offs, b.size)
	b.size += o.Size
}

// Sample returns up to n bytes of the spooled data, taken from objects
// spread across the bundle, for choosing a compression level.
func (b *Builder) Sample(n int) ([]byte, error) {
	if len(b.objs) == 0 || n <= 0 {
		return nil, nil
	}
	if int64(n) >= b.size {
		buf := make([]byte, b.size)
		if _, err := b.spool.ReadAt(buf, 0); err != nil {
			return nil, fmt.Errorf("bundle spool: %w", err)
		}
		return buf, nil
	}
	// Up to 16 chunks from objects spread evenly over the bundle.
	chunks := min(16, len(b.objs))
	per := n / chunks
	out := make([]byte, 0, n)
	for i := range chunks {
		j := i * len(b.objs) / chunks
		take := min(int64(per), b.objs[j].Size)
		if take == 0 {
			continue
		}
		buf := make([]byte, take)
		if _, err := b.spool.ReadAt(buf, b.offs[j]); err != nil {
			return nil, fmt.Errorf("bundle spool: %w", err)
		}
		out = append(out, buf...)
	}
	return out, nil
}

// WriteOptions describe the bundle to write.
type WriteOptions struct {
	ID      string
	Job     string
	Created time.Time
	// Level is the zstd level 1 (fastest) to 4 (best); 0 stores the tar
	// stream uncompressed.
	Level int
}

// WriteTo writes the bundle to w and returns its manifest. The builder
// takes no more objects afterwards.
func (b *Builder) WriteTo(ctx context.Context, w io.Writer, opts WriteOptions) (Manifest, error) {
	b.done = true
	m := Manifest{
		Format: Format, Version: Version, ID: opts.ID, Job: opts.Job, Created: opts.Created.UTC(),
		Compression: CompressionNone, Level: 0,
		DataBytes: b.size, Objects: b.objs,
	}
	if m.Objects == nil {
		m.Objects = []Object{}
	}
	m.DataSHA256 = hex.EncodeToString(b.data.Sum(nil))
	if opts.Level < 0 || opts.Level > 4 {
		return Manifest{}, fmt.Errorf("bundle: level %d (0 to 4)", opts.Level)
	}
	var out io.Writer = w
	var zw *zstd.Encoder
	if opts.Level > 0 {
		m.Compression, m.Level = CompressionZstd, opts.Level
		var err error
		zw, err = getEncoder(w, opts.Level)
		if err != nil {
			return Manifest{}, fmt.Errorf("bundle: zstd: %w", err)
		}
		out = zw
	}
	if err := m.Check(); err != nil {
		return Manifest{}, fmt.Errorf("bundle: manifest: %w", err)
	}
	mb, err := EncodeManifest(m)
	if err != nil {
		return Manifest{}, err
	}
	bw := bufio.NewWriterSize(out, 256<<10)
	tw := tar.NewWriter(bw)
	hdr := func(name string, size int64, mt time.Time) *tar.Header {
		return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: mt.UTC().Truncate(time.Second), Format: tar.FormatUSTAR}
	}
	if err := tw.WriteHeader(hdr(ManifestName, int64(len(mb)), m.Created)); err != nil {
		return Manifest{}, fmt.Errorf("bundle: write manifest: %w", err)
	}
	if _, err := tw.Write(mb); err != nil {
		return Manifest{}, fmt.Errorf("bundle: write manifest: %w", err)
	}
	for i, o := range m.Objects {
		if err := ctx.Err(); err != nil {
			return Manifest{}, fmt.Errorf("bundle: write: %w", err)
		}
		if err := tw.WriteHeader(hdr(EntryName(i), o.Size, o.Created)); err != nil {
			return Manifest{}, fmt.Errorf("bundle: write %q: %w", o.Key, err)
		}
		if _, err := io.CopyBuffer(tw, io.NewSectionReader(b.spool, b.offs[i], o.Size), b.buf); err != nil {
			return Manifest{}, fmt.Errorf("bundle: write %q: %w", o.Key, err)
		}
	}
	if err := tw.Close(); err != nil {
		return Manifest{}, fmt.Errorf("bundle: close tar: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return Manifest{}, fmt.Errorf("bundle: write: %w", err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return Manifest{}, fmt.Errorf("bundle: close zstd: %w", err)
		}
		putEncoder(zw, opts.Level)
	}
	return m, nil
}
