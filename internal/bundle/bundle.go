// Package bundle owns ferry's bundle format (docs/bundle-format.md): many
// small objects in one tar archive, zstd-compressed or stored, that begins
// with a versioned JSON manifest naming every object with its size,
// SHA-256, content headers, user metadata, tags and provenance.
//
// A [Builder] spools objects to a local file and then writes the bundle
// (manifest first). A [Reader] reads one back and refuses anything that
// does not match its manifest: a path with "..", an absolute path, a link
// or any entry that is not a regular file, an entry whose name is not the
// next manifest key, a wrong size or checksum, a missing or extra entry.
package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"
)

// Format and Version identify the manifest. A reader refuses another
// format, and a version it does not know.
const (
	Format  = "ferry-bundle"
	Version = 1
)

// Entry names inside the tar archive.
const (
	ManifestName  = "ferry-bundle/manifest.json.zst"
	ObjectsPrefix = "ferry-bundle/objects/"
)

// Compression of a bundle's tar stream.
const (
	CompressionNone = "none"
	CompressionZstd = "zstd"
)

// User metadata keys of a bundle object in staging.
const (
	MetaSHA256      = "ferry-bundle-sha256"      // hex SHA-256 of the stored bundle object
	MetaVersion     = "ferry-bundle-version"     // manifest version
	MetaCompression = "ferry-bundle-compression" // none or zstd
	MetaObjects     = "ferry-bundle-objects"     // number of objects
)

// MaxManifestBytes bounds the manifest a reader accepts.
const MaxManifestBytes = 64 << 20

// ErrCorrupt: the bundle does not match its manifest, or its manifest is
// malformed or unsafe. Reading it again cannot help.
var ErrCorrupt = errors.New("bundle refused")

// Manifest describes a bundle. It is the archive's first entry.
type Manifest struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	// ID names the bundle (ferry: the pack work item); Job the job.
	ID      string    `json:"id"`
	Job     string    `json:"job,omitempty"`
	Created time.Time `json:"created"`
	// Compression of the tar stream and the zstd level (0 when stored).
	Compression string `json:"compression"`
	Level       int    `json:"level"`
	// DataBytes is the sum of the objects' sizes; DataSHA256 the hex
	// SHA-256 of their bytes concatenated in manifest order.
	DataBytes  int64    `json:"data_bytes"`
	DataSHA256 string   `json:"data_sha256"`
	Objects    []Object `json:"objects"`
}

// Object is one object of a bundle.
type Object struct {
	// Key is relative to the job's source (and destination) root.
	Key  string `json:"key"`
	Size int64  `json:"size"`
	// SHA256 is the hex SHA-256 of the object's bytes.
	SHA256 string `json:"sha256"`
	// ETag and Created are the source object's ETag and LastModified.
	ETag    string    `json:"etag,omitempty"`
	Created time.Time `json:"created,omitzero"`
	// VersionID is the source object's version, when versioned.
	VersionID string `json:"version_id,omitempty"`
	// SourceCheck names how the packer checked the bytes against the
	// source (md5, crc32c, sha256, ...; "" when the source offered
	// nothing).
	SourceCheck string `json:"source_check,omitempty"`

	ContentType        string            `json:"content_type,omitempty"`
	ContentEncoding    string            `json:"content_encoding,omitempty"`
	ContentDisposition string            `json:"content_disposition,omitempty"`
	ContentLanguage    string            `json:"content_language,omitempty"`
	CacheControl       string            `json:"cache_control,omitempty"`
	Expires            string            `json:"expires,omitempty"`
	StorageClass       string            `json:"storage_class,omitempty"`
	Metadata           map[string]string `json:"metadata,omitempty"`
	Tags               map[string]string `json:"tags,omitempty"`
}

// EntryName is the tar entry name of the i-th object's bytes (from 0):
// entries are named by position, so no key (a directory marker's trailing
// slash, any character) ever becomes a path in the archive; keys are in
// the manifest only.
func EntryName(i int) string { return fmt.Sprintf("%s%06d", ObjectsPrefix, i) }

// CheckKey reports whether key may travel in a bundle: what a reader
// would refuse is never written. A key is refused when it is empty, longer
// than 1024 bytes, not UTF-8, holds a NUL, a backslash or a control
// character, starts with "/", or has a "." or ".." segment or an empty
// segment other than a directory marker's trailing slash.
func CheckKey(key string) error {
	switch {
	case key == "":
		return errors.New("empty key")
	case len(key) > 1024:
		return errors.New("key longer than 1024 bytes")
	case !utf8.ValidString(key):
		return errors.New("key is not UTF-8")
	case strings.HasPrefix(key, "/"):
		return errors.New("absolute path")
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return fmt.Errorf("key holds the character %q", r)
		}
	}
	segs := strings.Split(strings.TrimSuffix(key, "/"), "/")
	for _, s := range segs {
		switch s {
		case "..":
			return errors.New(`".." in path`)
		case ".":
			return errors.New(`"." in path`)
		case "":
			return errors.New("empty path segment")
		}
	}
	return nil
}

// Check validates a manifest: format, version, compression, and every
// object's key (unique, [CheckKey]), size and checksum syntax.
func (m *Manifest) Check() error {
	if m.Format != Format {
		return fmt.Errorf("%w: manifest format %q, not %q", ErrCorrupt, m.Format, Format)
	}
	if m.Version != Version {
		return fmt.Errorf("%w: manifest version %d (this ferry reads version %d)", ErrCorrupt, m.Version, Version)
	}
	if m.Compression != CompressionNone && m.Compression != CompressionZstd {
		return fmt.Errorf("%w: compression %q", ErrCorrupt, m.Compression)
	}
	if !isHexSHA256(m.DataSHA256) {
		return fmt.Errorf("%w: data_sha256 %q is not a hex SHA-256", ErrCorrupt, m.DataSHA256)
	}
	seen := make(map[string]bool, len(m.Objects))
	var total int64
	for i, o := range m.Objects {
		if err := CheckKey(o.Key); err != nil {
			return fmt.Errorf("%w: object %d %q: %v", ErrCorrupt, i, o.Key, err)
		}
		if seen[o.Key] {
			return fmt.Errorf("%w: object %q twice", ErrCorrupt, o.Key)
		}
		seen[o.Key] = true
		if o.Size < 0 {
			return fmt.Errorf("%w: object %q: negative size", ErrCorrupt, o.Key)
		}
		if !isHexSHA256(o.SHA256) {
			return fmt.Errorf("%w: object %q: sha256 %q is not a hex SHA-256", ErrCorrupt, o.Key, o.SHA256)
		}
		total += o.Size
	}
	if total != m.DataBytes {
		return fmt.Errorf("%w: data_bytes %d, objects add up to %d", ErrCorrupt, m.DataBytes, total)
	}
	return nil
}

func isHexSHA256(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// EncodeManifest is the manifest entry's content: the manifest as JSON,
// zstd-compressed (so that it costs little in a bundle stored
// uncompressed).
func EncodeManifest(m Manifest) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("bundle: encode manifest: %w", err)
	}
	enc, err := manifestEncoder()
	if err != nil {
		return nil, fmt.Errorf("bundle: zstd: %w", err)
	}
	return enc.EncodeAll(b, nil), nil
}

// The manifest's encoder and decoder are made once (EncodeAll and
// DecodeAll may be called concurrently): making one per manifest
// allocated megabytes of history each time.
var (
	manifestEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
		return zstd.NewWriter(nil, zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
	})
	manifestDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
		return zstd.NewReader(nil, zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithDecoderMaxMemory(MaxManifestBytes))
	})
)

// decodeManifest reverses EncodeManifest, refusing a manifest that
// decompresses to more than MaxManifestBytes, or unknown fields.
func decodeManifest(b []byte) (Manifest, error) {
	dec, err := manifestDecoder()
	if err != nil {
		return Manifest{}, fmt.Errorf("bundle: zstd: %w", err)
	}
	raw, err := dec.DecodeAll(b, nil)
	if err != nil {
		return Manifest{}, fmt.Errorf("%w: decompress manifest: %v", ErrCorrupt, err)
	}
	if len(raw) > MaxManifestBytes {
		return Manifest{}, fmt.Errorf("%w: manifest of %d bytes", ErrCorrupt, len(raw))
	}
	var m Manifest
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("%w: decode manifest: %v", ErrCorrupt, err)
	}
	return m, nil
}
