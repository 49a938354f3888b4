package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ferry-dev/ferry/internal/store"
)

// metaXattr names the extended attribute holding an object's [meta].
const metaXattr = "user.ferry.meta"

// meta is what a file keeps in its metaXattr, as JSON.
type meta struct {
	ContentType        string            `json:"content_type,omitempty"`
	ContentEncoding    string            `json:"content_encoding,omitempty"`
	ContentDisposition string            `json:"content_disposition,omitempty"`
	ContentLanguage    string            `json:"content_language,omitempty"`
	CacheControl       string            `json:"cache_control,omitempty"`
	Expires            string            `json:"expires,omitempty"`
	Metadata           map[string]string `json:"metadata,omitempty"`
	Tags               map[string]string `json:"tags,omitempty"`
	// CRC32C (base64) of the content, valid while the file still has Size
	// and MTime (Unix nanoseconds).
	CRC32C string `json:"crc32c,omitempty"`
	Size   int64  `json:"size"`
	MTime  int64  `json:"mtime"`
}

// metaFromInput returns the metadata of in to store, user metadata keys in
// lower case as S3 keeps them.
func metaFromInput(in store.PutInput) meta {
	var md map[string]string
	if len(in.Metadata) > 0 {
		md = make(map[string]string, len(in.Metadata))
		for k, v := range in.Metadata {
			md[strings.ToLower(k)] = v
		}
	}
	return meta{
		ContentType:        in.ContentType,
		ContentEncoding:    in.ContentEncoding,
		ContentDisposition: in.ContentDisposition,
		ContentLanguage:    in.ContentLanguage,
		CacheControl:       in.CacheControl,
		Expires:            in.Expires,
		Metadata:           md,
		Tags:               in.Tags,
	}
}

// userData reports whether m holds anything the caller gave (as opposed to
// what the store computes).
func (m meta) userData() bool {
	return m.ContentType != "" || m.ContentEncoding != "" || m.ContentDisposition != "" ||
		m.ContentLanguage != "" || m.CacheControl != "" || m.Expires != "" ||
		len(m.Metadata) > 0 || len(m.Tags) > 0
}

// writeMeta stores m on the open file f, recording f's current size and
// modification time. If the file system has no user extended attributes,
// the metadata is dropped with a warning (once per store).
func (s *Store) writeMeta(f *os.File, key string, m meta) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	m.Size, m.MTime = st.Size(), st.ModTime().UnixNano()
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	err = fsetxattr(f, metaXattr, data)
	if errors.Is(err, errXattrUnsupported) {
		if m.userData() {
			s.xattrWarn.Do(func() {
				s.log.Warn("local: file system does not keep extended attributes; dropping metadata and tags",
					"root", s.path, "key", fmt.Sprintf("%q", key))
			})
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("store metadata: %w", err)
	}
	return nil
}

// readMeta returns the metadata stored on f, the zero meta when there is
// none or the file system keeps none.
func readMeta(f *os.File) (meta, error) {
	data, err := fgetxattr(f, metaXattr)
	if errors.Is(err, errXattrUnsupported) || errors.Is(err, errNoXattr) {
		return meta{}, nil
	}
	if err != nil {
		return meta{}, fmt.Errorf("read metadata: %w", err)
	}
	var m meta
	if err := json.Unmarshal(data, &m); err != nil {
		// Foreign or damaged attribute: ignore it rather than fail reads.
		return meta{}, nil
	}
	return m, nil
}

// attrs builds the attributes of key from the file's info and metadata.
func attrs(key string, fi os.FileInfo, m meta) store.Attrs {
	a := store.Attrs{
		Object: store.Object{
			Key:          key,
			LastModified: fi.ModTime(),
		},
		ContentType:        m.ContentType,
		ContentEncoding:    m.ContentEncoding,
		ContentDisposition: m.ContentDisposition,
		ContentLanguage:    m.ContentLanguage,
		CacheControl:       m.CacheControl,
		Expires:            m.Expires,
		Metadata:           make(map[string]string, len(m.Metadata)),
		TagCount:           len(m.Tags),
	}
	if !fi.IsDir() {
		a.Size = fi.Size()
		if m.CRC32C != "" && m.Size == fi.Size() && m.MTime == fi.ModTime().UnixNano() {
			a.ChecksumCRC32C = m.CRC32C
		}
	}
	for k, v := range m.Metadata {
		a.Metadata[k] = v
	}
	return a
}

// setModTime sets the modification time of name in d when t is not zero.
func setModTime(d *os.Root, name string, t time.Time) error {
	if t.IsZero() {
		return nil
	}
	return d.Chtimes(name, time.Time{}, t)
}
