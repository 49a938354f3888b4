package bundle

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// zstdMagic starts every zstd frame.
var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// ReadOptions bound what a reader accepts.
type ReadOptions struct {
	// MaxObjectSize refuses a manifest naming a larger object (0: no
	// bound). Unpacking buffers one object at a time, so it bounds memory.
	MaxObjectSize int64
	// Verified says the bytes were checked whole by [Verify] moments ago
	// (the same local file, read again to restore its objects): Next
	// still checks names, types, sizes and order, but does not hash the
	// objects and the data again. Only for a re-read of verified bytes.
	Verified bool
}

// Reader reads a bundle: its manifest, then its objects in manifest order,
// each checked against the manifest (name, type, size, SHA-256) as it is
// read. The first error is sticky.
type Reader struct {
	m    Manifest
	src  *bufio.Reader
	zr   *zstd.Decoder
	tr   *tar.Reader
	next int
	data hash.Hash
	cur  *entryReader
	err  error
	// verified: ReadOptions.Verified.
	verified bool
}

// NewReader reads and checks the manifest of the bundle on r. Close
// releases the decompressor.
func NewReader(r io.Reader, opts ReadOptions) (*Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	rd := &Reader{src: br, data: sha256.New(), verified: opts.Verified}
	head, err := br.Peek(len(zstdMagic))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("bundle: read: %w", err)
	}
	compression := CompressionNone
	var tin io.Reader = br
	if bytes.Equal(head, zstdMagic) {
		compression = CompressionZstd
		rd.zr, err = getDecoder(br)
		if err != nil {
			return nil, fmt.Errorf("bundle: zstd: %w", err)
		}
		tin = rd.zr
	}
	rd.tr = tar.NewReader(tin)
	hdr, err := rd.tr.Next()
	if err != nil {
		rd.Close()
		return nil, fmt.Errorf("%w: no manifest: %v", ErrCorrupt, err)
	}
	if hdr.Typeflag != tar.TypeReg || hdr.Name != ManifestName {
		rd.Close()
		return nil, fmt.Errorf("%w: first entry %q (type %q) is not %s", ErrCorrupt, hdr.Name, string(hdr.Typeflag), ManifestName)
	}
	if hdr.Size > MaxManifestBytes {
		rd.Close()
		return nil, fmt.Errorf("%w: manifest of %d bytes", ErrCorrupt, hdr.Size)
	}
	mb, err := io.ReadAll(io.LimitReader(rd.tr, MaxManifestBytes))
	if err != nil {
		rd.Close()
		return nil, fmt.Errorf("%w: read manifest: %v", ErrCorrupt, err)
	}
	if rd.m, err = decodeManifest(mb); err != nil {
		rd.Close()
		return nil, err
	}
	if err := rd.m.Check(); err != nil {
		rd.Close()
		return nil, err
	}
	if rd.m.Compression != compression {
		rd.Close()
		return nil, fmt.Errorf("%w: manifest says compression %q, the bundle is %q", ErrCorrupt, rd.m.Compression, compression)
	}
	if opts.MaxObjectSize > 0 {
		for _, o := range rd.m.Objects {
			if o.Size > opts.MaxObjectSize {
				rd.Close()
				return nil, fmt.Errorf("%w: object %q of %d bytes, above the limit of %d", ErrCorrupt, o.Key, o.Size, opts.MaxObjectSize)
			}
		}
	}
	return rd, nil
}

// Manifest is the bundle's manifest (checked).
func (r *Reader) Manifest() Manifest { return r.m }

// Close releases the decompressor.
func (r *Reader) Close() {
	if r.zr != nil {
		putDecoder(r.zr)
		r.zr = nil
	}
}

// Next returns the next object and a reader of its bytes. The reader
// returns an error wrapping [ErrCorrupt] instead of io.EOF when the bytes
// do not match the manifest's SHA-256. Next drains (and checks) what the
// caller left unread of the previous object. After the last object Next
// checks that nothing follows and that the data checksum matches, and
// returns io.EOF.
func (r *Reader) Next() (Object, io.Reader, error) {
	if r.err != nil {
		return Object{}, nil, r.err
	}
	if r.cur != nil {
		if _, err := io.Copy(io.Discard, r.cur); err != nil {
			return Object{}, nil, r.fail(err)
		}
		r.cur = nil
	}
	if r.next == len(r.m.Objects) {
		if err := r.finish(); err != nil {
			return Object{}, nil, r.fail(err)
		}
		r.err = io.EOF
		return Object{}, nil, io.EOF
	}
	want := r.m.Objects[r.next]
	hdr, err := r.tr.Next()
	if errors.Is(err, io.EOF) {
		return Object{}, nil, r.fail(fmt.Errorf("%w: entry for %q missing: the archive ends after %d of %d objects", ErrCorrupt, want.Key, r.next, len(r.m.Objects)))
	}
	if err != nil {
		return Object{}, nil, r.fail(fmt.Errorf("%w: read entry %d: %v", ErrCorrupt, r.next+1, err))
	}
	if err := checkHeader(hdr); err != nil {
		return Object{}, nil, r.fail(err)
	}
	if hdr.Name != EntryName(r.next) {
		return Object{}, nil, r.fail(fmt.Errorf("%w: entry %q where %q was due", ErrCorrupt, hdr.Name, EntryName(r.next)))
	}
	if hdr.Size != want.Size {
		return Object{}, nil, r.fail(fmt.Errorf("%w: entry %q holds %d bytes, the manifest says %d", ErrCorrupt, hdr.Name, hdr.Size, want.Size))
	}
	r.next++
	r.cur = &entryReader{r: r, obj: want}
	if !r.verified {
		r.cur.h = sha256.New()
	}
	return want, r.cur, nil
}

// checkHeader refuses entries that are not plain files or whose names are
// unsafe, whatever the manifest says.
func checkHeader(hdr *tar.Header) error {
	if hdr.Typeflag != tar.TypeReg {
		return fmt.Errorf("%w: entry %q is not a regular file (type %q; links and directories are refused)", ErrCorrupt, hdr.Name, string(hdr.Typeflag))
	}
	if hdr.Linkname != "" {
		return fmt.Errorf("%w: entry %q links to %q", ErrCorrupt, hdr.Name, hdr.Linkname)
	}
	if !strings.HasPrefix(hdr.Name, ObjectsPrefix) {
		return fmt.Errorf("%w: entry %q is outside %s", ErrCorrupt, hdr.Name, ObjectsPrefix)
	}
	for _, c := range hdr.Name[len(ObjectsPrefix):] {
		if c < '0' || c > '9' {
			return fmt.Errorf("%w: entry %q is not an object entry (%sNNNNNN)", ErrCorrupt, hdr.Name, ObjectsPrefix)
		}
	}
	return nil
}

func (r *Reader) fail(err error) error {
	if r.err == nil {
		r.err = err
	}
	return r.err
}

// finish checks that no entry follows the last object, that the stream
// ends cleanly (zstd's frame checksums included), and the data checksum.
func (r *Reader) finish() error {
	hdr, err := r.tr.Next()
	if err == nil {
		return fmt.Errorf("%w: entry %q is not in the manifest", ErrCorrupt, hdr.Name)
	}
	if !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: after the last object: %v", ErrCorrupt, err)
	}
	var rest io.Reader = r.src
	if r.zr != nil {
		rest = r.zr
	}
	n, err := io.Copy(io.Discard, rest)
	if err != nil {
		return fmt.Errorf("%w: end of stream: %v", ErrCorrupt, err)
	}
	if n > 0 {
		// A tar archive ends with zero blocks; anything after them is
		// data no manifest describes.
		return fmt.Errorf("%w: %d bytes after the archive's end", ErrCorrupt, n)
	}
	if r.verified {
		return nil
	}
	if got := hex.EncodeToString(r.data.Sum(nil)); got != r.m.DataSHA256 {
		return fmt.Errorf("%w: data SHA-256 %s, the manifest says %s", ErrCorrupt, got, r.m.DataSHA256)
	}
	return nil
}

type entryReader struct {
	r    *Reader
	obj  Object
	h    hash.Hash
	n    int64
	done bool
}

func (e *entryReader) Read(p []byte) (int, error) {
	if e.done {
		return 0, io.EOF
	}
	n, err := e.r.tr.Read(p)
	if e.h != nil {
		e.h.Write(p[:n])
		e.r.data.Write(p[:n])
	}
	e.n += int64(n)
	if errors.Is(err, io.EOF) {
		e.done = true
		if e.n != e.obj.Size {
			return n, e.r.fail(fmt.Errorf("%w: %q: %d bytes, the manifest says %d", ErrCorrupt, e.obj.Key, e.n, e.obj.Size))
		}
		if e.h == nil {
			return n, io.EOF
		}
		if got := hex.EncodeToString(e.h.Sum(nil)); got != e.obj.SHA256 {
			return n, e.r.fail(fmt.Errorf("%w: %q: SHA-256 %s, the manifest says %s", ErrCorrupt, e.obj.Key, got, e.obj.SHA256))
		}
		return n, io.EOF
	}
	if err != nil {
		return n, e.r.fail(fmt.Errorf("%w: %q: %v", ErrCorrupt, e.obj.Key, err))
	}
	return n, nil
}

// Verify reads a whole bundle and checks every object and the data
// checksum against its manifest, which it returns.
func Verify(r io.Reader, opts ReadOptions) (Manifest, error) {
	rd, err := NewReader(r, opts)
	if err != nil {
		return Manifest{}, err
	}
	defer rd.Close()
	for {
		_, body, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return rd.Manifest(), nil
		}
		if err != nil {
			return Manifest{}, err
		}
		if _, err := io.Copy(io.Discard, body); err != nil {
			return Manifest{}, err
		}
	}
}
