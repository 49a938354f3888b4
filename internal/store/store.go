package store

import (
	"context"
	"io"
	"iter"
	"time"
)

// Object is one entry of a listing: what every store can say about an object
// without a request per object.
type Object struct {
	// Key is relative to the store's root (the location's prefix), slash
	// separated, compared byte for byte. A key ending in "/" with Size 0 is a
	// directory marker.
	Key string
	// Size in bytes.
	Size int64
	// ETag as the store reports it, without quotes; "" when the store has
	// none (local files). A plain MD5 ETag is 32 lowercase hex digits.
	ETag string
	// LastModified is the server's write time (S3) or the file's mtime (local).
	LastModified time.Time
}

// Attrs are the full attributes of one object, as returned by Stat and Open.
type Attrs struct {
	Object

	ContentType        string
	ContentEncoding    string
	ContentDisposition string
	ContentLanguage    string
	CacheControl       string
	// Expires is the raw HTTP date of the Expires header, "" when unset.
	Expires string
	// Metadata is the user metadata (x-amz-meta-*), keys in lower case
	// without the x-amz-meta- prefix. Never nil after Stat or Open.
	Metadata map[string]string
	// TagCount is the number of object tags, or -1 when unknown.
	TagCount int
	// ChecksumCRC32C is the base64 full-object CRC32C the store holds, or "".
	ChecksumCRC32C string
	// ChecksumCRC64NVME, ChecksumCRC32, ChecksumSHA256 and ChecksumSHA1 are
	// the other full-object checksums the store holds (S3's additional
	// checksums), base64 of the big-endian checksum as S3 states them; ""
	// when absent, and "" for a composite checksum (a checksum of part
	// checksums, "xxxx-3"), which is no checksum of the object's bytes (see
	// [PartStater] for those). Stores that hold none leave them empty.
	ChecksumCRC64NVME string
	ChecksumCRC32     string
	ChecksumSHA256    string
	ChecksumSHA1      string
	// VersionID is the object's version, "" when unversioned.
	VersionID string
	// SSE is the server-side encryption of the object: "", "AES256", "aws:kms".
	SSE string
	// StorageClass is the object's storage class as the store reports it
	// ("" for the default, or for stores without classes).
	StorageClass string
}

// PutInput describes an object to write. The store writes exactly Size bytes.
type PutInput struct {
	Key  string
	Size int64

	ContentType        string
	ContentEncoding    string
	ContentDisposition string
	ContentLanguage    string
	CacheControl       string
	Expires            string
	// Metadata is written as user metadata (x-amz-meta-*).
	Metadata map[string]string
	// Tags are written as object tags; nil or empty writes none.
	Tags map[string]string
	// ModTime, when not zero, is the modification time a local store sets on
	// the file. S3 stores ignore it (the server sets LastModified).
	ModTime time.Time

	// ChecksumCRC32C, when set, is the base64 CRC32C of the body. The store
	// must have the server reject the write when the bytes differ (S3:
	// x-amz-checksum-crc32c), or check it itself.
	ChecksumCRC32C string
	// ContentMD5, when set, is the base64 MD5 of the body, checked likewise.
	ContentMD5 string

	// PartSize is set for CreateMultipart: the size of every part but the
	// last (stores that assemble parts themselves need it).
	PartSize int64

	// SSE and SSEKMSKeyID request server-side encryption (S3 only).
	SSE         string
	SSEKMSKeyID string
	// StorageClass, when set, is the storage class to write the object in
	// (S3 only: PutObject, CreateMultipartUpload, CopyObject); other stores
	// ignore it.
	StorageClass string
}

// PutResult is what the store reports about a completed write.
type PutResult struct {
	ETag           string
	VersionID      string
	ChecksumCRC32C string
	// SrcVersionID is the version of the source a server-side copy read,
	// "" when unversioned or not a copy.
	SrcVersionID string
	// SSE is the server-side encryption the server reported for the
	// written object ("", "AES256", "aws:kms"); set by CopyVerbatim.
	SSE string
}

// ListOptions select part of a listing.
type ListOptions struct {
	// Prefix restricts the listing to keys starting with it (relative to the
	// store's root).
	Prefix string
	// StartAfter, when set, skips keys less than or equal to it.
	StartAfter string
}

// Restatter is implemented by the readers of stores that can report the
// attributes of the object being read without a new lookup (a local
// file's fstat). A transfer uses it to check that a local file did not
// change while it was read.
type Restatter interface {
	Restat() (Attrs, error)
}

// Store is an object store rooted at a location (a bucket and prefix, or a
// local directory). Keys are relative to that root. Implementations are safe
// for concurrent use.
type Store interface {
	// List yields the objects under opts.Prefix in ascending byte order of
	// key (S3's UTF-8 binary order). Pages are fetched as the caller
	// iterates; memory does not grow with the number of objects. An error
	// is yielded as the last pair. Iteration stops when yield returns false
	// or ctx is done.
	List(ctx context.Context, opts ListOptions) iter.Seq2[Object, error]

	// Stat returns the attributes of key, or an error wrapping ErrNotExist.
	Stat(ctx context.Context, key string) (Attrs, error)

	// Open reads length bytes of key starting at offset (length < 0: to the
	// end). The returned Attrs describe the whole object. The caller closes
	// the reader.
	Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, Attrs, error)

	// Put writes an object from body, which yields exactly in.Size bytes.
	// The object becomes visible only when complete: a failed Put leaves
	// nothing behind and never a partial object.
	Put(ctx context.Context, in PutInput, body io.Reader) (PutResult, error)

	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error

	// Tags returns the object's tags (empty map, not nil, when none).
	Tags(ctx context.Context, key string) (map[string]string, error)

	// String names the location, for messages ("s3://bucket/prefix/",
	// "/data/x"). It never contains credentials.
	String() string
}

// Part is one uploaded part of a multipart upload.
type Part struct {
	Number         int32
	Size           int64
	ETag           string
	ChecksumCRC32C string
}

// Multipart is implemented by stores that can write one object in parts,
// concurrently. Parts are numbered from 1; all but the last have the same
// size. Nothing is visible at the key until CompleteMultipart succeeds.
type Multipart interface {
	// CreateMultipart starts an upload and returns its ID.
	CreateMultipart(ctx context.Context, in PutInput) (uploadID string, err error)
	// UploadPart writes part n from body (exactly size bytes). crc32c is the
	// base64 CRC32C of the body, checked by the store.
	UploadPart(ctx context.Context, key, uploadID string, n int32, body io.ReadSeeker, size int64, crc32c string) (Part, error)
	// CompleteMultipart assembles the parts, in order, into the object.
	CompleteMultipart(ctx context.Context, key, uploadID string, parts []Part) (PutResult, error)
	// AbortMultipart discards the upload and its parts.
	AbortMultipart(ctx context.Context, key, uploadID string) error
}

// PartLister is implemented by [Multipart] stores that can say which parts
// an unfinished upload holds.
type PartLister interface {
	// ListParts returns the parts uploaded so far to uploadID, in order of
	// number; an error wrapping ErrNotExist when the upload does not exist.
	ListParts(ctx context.Context, key, uploadID string) ([]Part, error)
}

// Copier is implemented by stores that can copy an object from another store
// on the server, without the bytes passing through ferry.
type Copier interface {
	// CanCopyFrom reports whether CopyFrom works with src as the source
	// (same endpoint and credentials).
	CanCopyFrom(src Store) bool
	// CopyFrom copies srcKey of src (of size in.Size) to in.Key, replacing
	// metadata with in's and copying the source's tags. Objects above the
	// single-request limit are copied in parts.
	CopyFrom(ctx context.Context, src Store, srcKey string, in PutInput) (PutResult, error)
}

// VerbatimCopier is implemented by [Copier] stores that can copy an object
// as it is, in one request: the server keeps the source's content headers,
// user metadata and tags, so nothing needs to be read from the source first.
type VerbatimCopier interface {
	// CopyVerbatim copies srcKey of src to in.Key on the server, provided
	// the source's ETag is still etag; otherwise it fails with an error
	// wrapping ErrChanged and writes nothing. Of in, only Key, Size, SSE,
	// SSEKMSKeyID and StorageClass are used. It fails with an error
	// wrapping errors.ErrUnsupported, before any request, when one request
	// cannot make the copy (too large, or src and in.Key are one object).
	// PutResult.SrcVersionID names the source version copied.
	CopyVerbatim(ctx context.Context, src Store, srcKey, etag string, in PutInput) (PutResult, error)
}

// PartAttrs describe one part of an object as it was uploaded in parts.
type PartAttrs struct {
	// Number is the part's number, from 1.
	Number int32
	// Offset and Size locate the part's bytes in the object.
	Offset, Size int64
	// Count is the object's number of parts; 0 when the object was not
	// uploaded in parts (then the part is the whole object).
	Count int32
	// Object is the object the part belongs to (Key, Size, ETag,
	// LastModified), to tell whether it is still the version being copied.
	Object Object
	// ChecksumCRC64NVME, ChecksumCRC32C, ChecksumCRC32, ChecksumSHA256 and
	// ChecksumSHA1 are the part's own checksums (base64) when the object was
	// uploaded with per-part (composite) checksums, else "".
	ChecksumCRC64NVME string
	ChecksumCRC32C    string
	ChecksumCRC32     string
	ChecksumSHA256    string
	ChecksumSHA1      string
}

// PartStater is implemented by stores that keep the part layout of objects
// uploaded in parts (S3: HeadObject with partNumber). It lets a reader check
// a multipart ETag (the MD5 of the parts' MD5s) or per-part checksums
// against the bytes it read. Optional: a store without it offers neither.
type PartStater interface {
	// StatPart returns part n (from 1) of key, or an error wrapping
	// ErrNotExist. For an object not uploaded in parts, part 1 is the
	// whole object with Count 0.
	StatPart(ctx context.Context, key string, n int32) (PartAttrs, error)
}

// LocalReader is implemented by stores whose Open reads the object's bytes
// from storage on this machine (a local file system, memory), with no
// network between them and the reader, so the bytes read are the source's
// own. ReadsLocally may return false (a wrapper that knows better).
type LocalReader interface {
	ReadsLocally() bool
}
