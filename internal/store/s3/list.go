package s3

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ferry-dev/ferry/internal/store"
)

// listPageSize is the number of keys asked for per ListObjectsV2 page.
const listPageSize = 1000

// List yields the objects under opts.Prefix in key order, a ListObjectsV2
// page at a time. Keys are requested URL-encoded (XML 1.0 cannot carry every
// byte a key may hold) and decoded when the response says they are (see
// [listedKey]).
//
// A key that a response says is URL-encoded but that does not decode is
// yielded in its place as an error wrapping [store.ErrInvalidKey] that
// quotes the key as sent; the listing goes on when the caller keeps
// iterating. Every other error ends the listing.
func (s *Store) List(ctx context.Context, opts store.ListOptions) iter.Seq2[store.Object, error] {
	return func(yield func(store.Object, error) bool) {
		where := s.url(opts.Prefix)
		prefix := s.prefix + opts.Prefix
		// MinIO rejects a prefix with a "." or ".." segment: list from the
		// part before it and filter here.
		listPrefix := safeListPrefix(prefix)
		in := s.listInput(listPrefix, opts.StartAfter, "")
		for page, err := range s.listPages(ctx, in, where) {
			if err != nil {
				yield(store.Object{}, err)
				return
			}
			items, err := s.pageItems(page, where, aws.ToString(in.StartAfter))
			if err != nil {
				yield(store.Object{}, err)
				return
			}
			for _, it := range items {
				if it.err != nil {
					if !yield(store.Object{}, it.err) {
						return
					}
					continue
				}
				if it.IsPrefix {
					continue // not asked for (no delimiter)
				}
				if listPrefix != prefix && !strings.HasPrefix(s.prefix+it.Key, prefix) {
					if s.prefix+it.Key < prefix {
						continue
					}
					return // past the keys with the prefix
				}
				if !yield(it.Object, nil) {
					return
				}
			}
		}
	}
}

// listInput is the first ListObjectsV2 request of a listing of the bucket
// keys starting with fullPrefix after the store key startAfter ("" for
// none), with delimiter "" or "/".
func (s *Store) listInput(fullPrefix, startAfter, delimiter string) *s3.ListObjectsV2Input {
	in := &s3.ListObjectsV2Input{
		Bucket:       aws.String(s.bucket),
		Prefix:       optional(fullPrefix),
		Delimiter:    optional(delimiter),
		MaxKeys:      aws.Int32(listPageSize),
		EncodingType: types.EncodingTypeUrl,
	}
	if startAfter != "" {
		in.StartAfter = aws.String(s.prefix + startAfter)
	}
	return in
}

// listPages yields the pages of the ListObjectsV2 listing that starts with
// in, following continuation tokens (opaque: sent back as received). It
// modifies in. An error is the last pair; where names the listing in errors.
func (s *Store) listPages(ctx context.Context, in *s3.ListObjectsV2Input, where string) iter.Seq2[*s3.ListObjectsV2Output, error] {
	return func(yield func(*s3.ListObjectsV2Output, error) bool) {
		for {
			if err := ctx.Err(); err != nil {
				yield(nil, fmt.Errorf("list %s: %w", where, err))
				return
			}
			out, err := s.client.ListObjectsV2(ctx, in)
			if err != nil {
				yield(nil, wrap("list", where, bucketOp, err))
				return
			}
			if !yield(out, nil) || !aws.ToBool(out.IsTruncated) {
				return
			}
			// The SDK's paginator ends a listing here without a word.
			if aws.ToString(out.NextContinuationToken) == "" {
				yield(nil, &Error{Op: "list", URL: where,
					Err: fmt.Errorf("truncated page without continuation token")})
				return
			}
			in.ContinuationToken = out.NextContinuationToken
		}
	}
}

// pageItem is one item of a listed page: an object or common prefix, key
// relative to the store's prefix, or the error of a key that could not be
// decoded (wrapping store.ErrInvalidKey).
type pageItem struct {
	store.Entry
	err error
	// sortKey orders the item in its page: the decoded key, or the key as
	// sent when it does not decode.
	sortKey string
}

// pageItems decodes the objects and common prefixes of a page and merges
// them in key order. A key outside the store's prefix (a server that
// ignores Prefix) fails the whole page.
//
// startAfter is the listing's StartAfter as sent (the bucket key, "" for
// none). Objects at or before it, and common prefixes wholly before it,
// are dropped: SeaweedFS answers StartAfter "/" with the keys before "/"
// too. Common prefixes are sorted before the merge: SeaweedFS orders them
// by directory name, so "d/" comes before "d-/" and "d /".
func (s *Store) pageItems(out *s3.ListObjectsV2Output, where, startAfter string) ([]pageItem, error) {
	item := func(sent string, e store.Entry) (pageItem, error) {
		key, err := listedKey(sent, out.EncodingType)
		if err != nil {
			return pageItem{sortKey: sent, err: &Error{Op: "list", URL: where, Class: store.ErrInvalidKey, Err: err}}, nil
		}
		rel, ok := strings.CutPrefix(key, s.prefix)
		if !ok {
			return pageItem{}, &Error{Op: "list", URL: where,
				Err: fmt.Errorf("server returned key %q outside prefix %q", key, s.prefix)}
		}
		e.Key = rel
		return pageItem{Entry: e, sortKey: key}, nil
	}
	objs := make([]pageItem, 0, len(out.Contents))
	for _, o := range out.Contents {
		it, err := item(aws.ToString(o.Key), store.Entry{Object: store.Object{
			Size: aws.ToInt64(o.Size),
			ETag: unquote(aws.ToString(o.ETag)),
			// Seconds, as Stat reports it (Last-Modified is an HTTP
			// date), so a listing and a Stat agree.
			LastModified: aws.ToTime(o.LastModified).Truncate(time.Second),
		}})
		if err != nil {
			return nil, err
		}
		if it.err == nil && startAfter != "" && it.sortKey <= startAfter {
			continue
		}
		objs = append(objs, it)
	}
	cps := make([]pageItem, 0, len(out.CommonPrefixes))
	for _, p := range out.CommonPrefixes {
		it, err := item(aws.ToString(p.Prefix), store.Entry{IsPrefix: true})
		if err != nil {
			return nil, err
		}
		if it.err == nil && startAfter != "" && it.sortKey < startAfter && !strings.HasPrefix(startAfter, it.sortKey) {
			continue // every key below it is before startAfter
		}
		cps = append(cps, it)
	}
	if len(cps) == 0 {
		return objs, nil
	}
	slices.SortStableFunc(cps, func(a, b pageItem) int { return strings.Compare(a.sortKey, b.sortKey) })
	// Merge by decoded key: URL encoding does not keep the order.
	page := make([]pageItem, 0, len(objs)+len(cps))
	for len(objs) > 0 && len(cps) > 0 {
		if objs[0].sortKey < cps[0].sortKey {
			page, objs = append(page, objs[0]), objs[1:]
		} else {
			page, cps = append(page, cps[0]), cps[1:]
		}
	}
	page = append(page, objs...)
	return append(page, cps...), nil
}

// Upload is an incomplete multipart upload.
type Upload struct {
	// Key is relative to the Store's prefix.
	Key       string
	UploadID  string
	Initiated time.Time
}

// ListMultipartUploads yields the incomplete multipart uploads under prefix
// (relative to the Store's prefix), in key order, a page at a time. Keys are
// decoded as List decodes them, and an undecodable one is likewise yielded
// as an error in its place.
func (s *Store) ListMultipartUploads(ctx context.Context, prefix string) iter.Seq2[Upload, error] {
	return func(yield func(Upload, error) bool) {
		where := s.url(prefix)
		in := &s3.ListMultipartUploadsInput{
			Bucket:       aws.String(s.bucket),
			Prefix:       optional(s.prefix + prefix),
			MaxUploads:   aws.Int32(listPageSize),
			EncodingType: types.EncodingTypeUrl,
		}
		for {
			if err := ctx.Err(); err != nil {
				yield(Upload{}, fmt.Errorf("list uploads %s: %w", where, err))
				return
			}
			out, err := s.client.ListMultipartUploads(ctx, in)
			if err != nil {
				yield(Upload{}, wrap("list uploads", where, bucketOp, err))
				return
			}
			for _, u := range out.Uploads {
				key, err := listedKey(aws.ToString(u.Key), out.EncodingType)
				if err != nil {
					if !yield(Upload{}, &Error{Op: "list uploads", URL: where, Class: store.ErrInvalidKey, Err: err}) {
						return
					}
					continue
				}
				up := Upload{
					Key:       strings.TrimPrefix(key, s.prefix),
					UploadID:  aws.ToString(u.UploadId),
					Initiated: aws.ToTime(u.Initiated),
				}
				if !yield(up, nil) {
					return
				}
			}
			if !aws.ToBool(out.IsTruncated) {
				return
			}
			// The key marker is encoded as the keys are.
			next, err := listedKey(aws.ToString(out.NextKeyMarker), out.EncodingType)
			if err != nil {
				yield(Upload{}, &Error{Op: "list uploads", URL: where, Err: fmt.Errorf("next key marker: %w", err)})
				return
			}
			in.KeyMarker = aws.String(next)
			in.UploadIdMarker = out.NextUploadIdMarker
		}
	}
}

// safeListPrefix returns p up to its first path segment that is "." or "..",
// or p when it has none.
func safeListPrefix(p string) string {
	for start := 0; ; {
		seg, _, more := strings.Cut(p[start:], "/")
		if seg == "." || seg == ".." {
			return p[:start]
		}
		if !more {
			return p
		}
		start += len(seg) + 1
	}
}

// errUndecodableKey is wrapped by the error of a listed key that a response
// says is URL-encoded but that does not decode.
var errUndecodableKey = errors.New("response says EncodingType url, but the key does not decode")

// listedKey returns the key k (or prefix, or marker) of a listing response
// whose EncodingType is enc. With EncodingType url, S3 encodes k as a query
// component (space as "+"), and listedKey decodes it; otherwise k is the
// key as it is. A server may ignore the request's encoding-type=url (Versity
// Gateway does): it then sends raw keys and no EncodingType, and decoding
// them would turn "a+b" into "a b" and fail on "100%".
func listedKey(k string, enc types.EncodingType) (string, error) {
	if !strings.EqualFold(string(enc), string(types.EncodingTypeUrl)) {
		return k, nil
	}
	d, err := url.QueryUnescape(k)
	if err != nil {
		return "", fmt.Errorf("listed key %q: %w: %w", k, errUndecodableKey, err)
	}
	return d, nil
}
