// Package onekey is a view of one object of a store: the store a job opens
// when its location names a single object or file rather than a prefix or
// directory ("ferry copy s3://b/photo.jpg ./one"). The view holds at most
// that one object, under a name of the caller's choosing, so the whole job
// machinery (listing tasks, plan, workers, transfer, reconciliation, verify)
// works on single objects unchanged, and a destination can give the object
// another name (rclone's copyto).
//
// A source is the view of its object under its own base name; the
// destination is the view of the target key under the same name:
//
//	src := onekey.New(srcDir, "photo.jpg", "photo.jpg")
//	dst := onekey.New(dstDir, "photo.jpg", "one")      // written as "one"
package onekey

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"

	"github.com/ferry-dev/ferry/internal/store"
)

// View is a store holding at most one object: the key Key of Inner, listed
// and addressed as Name. Any other key is absent (reads) or refused
// (writes). It implements [store.Multipart], [store.Copier] and
// [store.LocalReader] by forwarding to Inner, and [store.PartStater] when
// Inner does (see [New]). Safe for concurrent use when Inner is.
type View struct {
	Inner store.Store
	Name  string
	Key   string
}

// partView is a View of a store that keeps part layouts.
type partView struct{ *View }

var (
	_ store.Store       = (*View)(nil)
	_ store.Multipart   = (*View)(nil)
	_ store.Copier      = (*View)(nil)
	_ store.LocalReader = (*View)(nil)
	_ store.PartStater  = partView{}
)

// ErrNotInView is wrapped by the error for a key other than the view's
// name; it also wraps [store.ErrNotExist], so reads see a missing object.
var ErrNotInView = errors.New("not the object this location names")

// New returns the view of key in inner under name. inner must implement
// [store.Multipart] (every ferry store does). The view implements
// [store.PartStater] exactly when inner does, so the transfer engine sees
// the same capabilities.
func New(inner store.Store, name, key string) (store.Store, error) {
	if name == "" || key == "" || strings.HasSuffix(key, "/") {
		return nil, fmt.Errorf("onekey: view of %q as %q: want an object key and a name", key, name)
	}
	if _, ok := inner.(store.Multipart); !ok {
		return nil, fmt.Errorf("onekey: %s does not implement multipart uploads", inner)
	}
	v := &View{Inner: inner, Name: name, Key: key}
	if _, ok := inner.(store.PartStater); ok {
		return partView{v}, nil
	}
	return v, nil
}

// Unwrap returns the view of a store made by [New], or nil.
func Unwrap(s store.Store) *View {
	switch v := s.(type) {
	case *View:
		return v
	case partView:
		return v.View
	}
	return nil
}

// key maps a view key to the inner key.
func (v *View) key(k string) (string, error) {
	if k != v.Name {
		return "", fmt.Errorf("%s: key %q: %w (%q): %w", v, k, ErrNotInView, v.Name, store.ErrNotExist)
	}
	return v.Key, nil
}

// List yields the object, named Name, when it exists and opts select Name.
// It lists Inner from the object's own key, which sorts before every other
// key it prefixes, and reads one entry: the listing's precision (S3
// LastModified in milliseconds, not HEAD's seconds) and one request.
func (v *View) List(ctx context.Context, opts store.ListOptions) iter.Seq2[store.Object, error] {
	return func(yield func(store.Object, error) bool) {
		if !strings.HasPrefix(v.Name, opts.Prefix) || (opts.StartAfter != "" && v.Name <= opts.StartAfter) {
			return
		}
		for o, err := range v.Inner.List(ctx, store.ListOptions{Prefix: v.Key}) {
			if err != nil {
				yield(store.Object{}, err)
				return
			}
			if o.Key == v.Key {
				o.Key = v.Name
				yield(o, nil)
			}
			return
		}
	}
}

func (v *View) Stat(ctx context.Context, k string) (store.Attrs, error) {
	ik, err := v.key(k)
	if err != nil {
		return store.Attrs{}, err
	}
	a, err := v.Inner.Stat(ctx, ik)
	a.Key = k
	return a, err
}

func (v *View) Open(ctx context.Context, k string, offset, length int64) (io.ReadCloser, store.Attrs, error) {
	ik, err := v.key(k)
	if err != nil {
		return nil, store.Attrs{}, err
	}
	rc, a, err := v.Inner.Open(ctx, ik, offset, length)
	a.Key = k
	return rc, a, err
}

func (v *View) Put(ctx context.Context, in store.PutInput, body io.Reader) (store.PutResult, error) {
	ik, err := v.key(in.Key)
	if err != nil {
		return store.PutResult{}, err
	}
	in.Key = ik
	return v.Inner.Put(ctx, in, body)
}

func (v *View) Delete(ctx context.Context, k string) error {
	ik, err := v.key(k)
	if err != nil {
		return err
	}
	return v.Inner.Delete(ctx, ik)
}

func (v *View) Tags(ctx context.Context, k string) (map[string]string, error) {
	ik, err := v.key(k)
	if err != nil {
		return nil, err
	}
	return v.Inner.Tags(ctx, ik)
}

// String names the object: the inner location and the key.
func (v *View) String() string {
	s := v.Inner.String()
	if !strings.HasSuffix(s, "/") {
		s += "/"
	}
	return s + v.Key
}

func (v *View) mp() store.Multipart { return v.Inner.(store.Multipart) }

func (v *View) CreateMultipart(ctx context.Context, in store.PutInput) (string, error) {
	ik, err := v.key(in.Key)
	if err != nil {
		return "", err
	}
	in.Key = ik
	return v.mp().CreateMultipart(ctx, in)
}

func (v *View) UploadPart(ctx context.Context, k, uploadID string, n int32, body io.ReadSeeker, size int64, crc32c string) (store.Part, error) {
	ik, err := v.key(k)
	if err != nil {
		return store.Part{}, err
	}
	return v.mp().UploadPart(ctx, ik, uploadID, n, body, size, crc32c)
}

func (v *View) CompleteMultipart(ctx context.Context, k, uploadID string, parts []store.Part) (store.PutResult, error) {
	ik, err := v.key(k)
	if err != nil {
		return store.PutResult{}, err
	}
	return v.mp().CompleteMultipart(ctx, ik, uploadID, parts)
}

func (v *View) AbortMultipart(ctx context.Context, k, uploadID string) error {
	ik, err := v.key(k)
	if err != nil {
		return err
	}
	return v.mp().AbortMultipart(ctx, ik, uploadID)
}

// inner returns the store and key a (possibly viewed) source names.
func inner(src store.Store, k string) (store.Store, string, error) {
	if sv := Unwrap(src); sv != nil {
		ik, err := sv.key(k)
		return sv.Inner, ik, err
	}
	return src, k, nil
}

// CanCopyFrom reports whether Inner can copy from src (or the store src
// views) on the server.
func (v *View) CanCopyFrom(src store.Store) bool {
	c, ok := v.Inner.(store.Copier)
	if !ok {
		return false
	}
	s, _, _ := inner(src, "")
	return c.CanCopyFrom(s)
}

func (v *View) CopyFrom(ctx context.Context, src store.Store, srcKey string, in store.PutInput) (store.PutResult, error) {
	c, ok := v.Inner.(store.Copier)
	if !ok {
		return store.PutResult{}, fmt.Errorf("%s: server-side copy: %w", v, errors.ErrUnsupported)
	}
	s, sk, err := inner(src, srcKey)
	if err != nil {
		return store.PutResult{}, err
	}
	ik, err := v.key(in.Key)
	if err != nil {
		return store.PutResult{}, err
	}
	in.Key = ik
	return c.CopyFrom(ctx, s, sk, in)
}

// ReadsLocally forwards [store.LocalReader].
func (v *View) ReadsLocally() bool {
	lr, ok := v.Inner.(store.LocalReader)
	return ok && lr.ReadsLocally()
}

func (p partView) StatPart(ctx context.Context, k string, n int32) (store.PartAttrs, error) {
	ik, err := p.key(k)
	if err != nil {
		return store.PartAttrs{}, err
	}
	a, err := p.Inner.(store.PartStater).StatPart(ctx, ik, n)
	a.Object.Key = k
	return a, err
}
