package transfer

import (
	"strconv"
	"time"

	"github.com/ferry-dev/ferry/internal/store"
)

// User metadata keys ferry writes on every destination object (see
// [Provenance]). Source metadata with these keys is replaced.
const (
	MetaSrcETag  = "ferry-src-etag"  // source ETag; absent for sources without ETags
	MetaSrcMtime = "ferry-src-mtime" // source LastModified, RFC 3339 (nanoseconds), UTC
	MetaSrcSize  = "ferry-src-size"  // source size in bytes, decimal
	MetaCRC32C   = "ferry-crc32c"    // base64 full-object CRC32C; absent when unknown at write time
)

// Provenance records which source version a destination object was copied
// from. It is written as user metadata ([MetaSrcETag] and friends).
type Provenance struct {
	SrcETag    string
	SrcModTime time.Time
	SrcSize    int64
	// CRC32C is the base64 full-object CRC32C of the bytes, "" when it was
	// not known before the write. Metadata is fixed when a write starts, so
	// it is known for single Puts (the object is buffered first) and for
	// sources that state a full-object CRC32C, but not for multipart
	// uploads, streamed Puts verified by MD5, or server copies of sources
	// without one; [Result.CRC32C] still reports what ferry computed.
	CRC32C string
}

// provenanceOf is the provenance of a copy of the source with attrs.
func provenanceOf(attrs store.Attrs, crc string) Provenance {
	return Provenance{SrcETag: attrs.ETag, SrcModTime: attrs.LastModified, SrcSize: attrs.Size, CRC32C: crc}
}

// Set writes p into md, replacing any provenance keys md already has. Empty
// values are left out (their keys deleted from md): some stores drop user
// metadata with an empty value (SeaweedFS), so ferry never writes one, and
// [ParseProvenance] reads a missing key as "".
func (p Provenance) Set(md map[string]string) {
	setOrDelete(md, MetaSrcETag, p.SrcETag)
	md[MetaSrcMtime] = p.SrcModTime.UTC().Format(time.RFC3339Nano)
	md[MetaSrcSize] = strconv.FormatInt(p.SrcSize, 10)
	setOrDelete(md, MetaCRC32C, p.CRC32C)
}

// setOrDelete sets md[k] to v, or deletes k when v is "".
func setOrDelete(md map[string]string, k, v string) {
	if v == "" {
		delete(md, k)
		return
	}
	md[k] = v
}

// ParseProvenance reads the provenance from user metadata. ok is false when
// md has none or it is malformed (then the object must be treated as of
// unknown origin). A missing [MetaSrcETag] or [MetaCRC32C] reads as "",
// the same as an empty value: ferry no longer writes empty values, some
// stores drop them, and objects written by older versions may have them.
func ParseProvenance(md map[string]string) (p Provenance, ok bool) {
	sizeStr, ok1 := md[MetaSrcSize]
	mtimeStr, ok2 := md[MetaSrcMtime]
	if !ok1 || !ok2 {
		return Provenance{}, false
	}
	size, err := strconv.ParseInt(sizeStr, 10, 64)
	if err != nil || size < 0 {
		return Provenance{}, false
	}
	mtime, err := time.Parse(time.RFC3339Nano, mtimeStr)
	if err != nil {
		return Provenance{}, false
	}
	return Provenance{SrcETag: md[MetaSrcETag], SrcModTime: mtime, SrcSize: size, CRC32C: md[MetaCRC32C]}, true
}
