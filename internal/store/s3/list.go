package s3

import (
	"context"
	"fmt"
	"iter"
	"net/url"
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
// byte a key may hold) and decoded.
func (s *Store) List(ctx context.Context, opts store.ListOptions) iter.Seq2[store.Object, error] {
	return func(yield func(store.Object, error) bool) {
		where := s.url(opts.Prefix)
		prefix := s.prefix + opts.Prefix
		// MinIO rejects a prefix with a "." or ".." segment: list from the
		// part before it and filter here.
		listPrefix := safeListPrefix(prefix)
		in := &s3.ListObjectsV2Input{
			Bucket:       aws.String(s.bucket),
			Prefix:       optional(listPrefix),
			MaxKeys:      aws.Int32(listPageSize),
			EncodingType: types.EncodingTypeUrl,
		}
		if opts.StartAfter != "" {
			in.StartAfter = aws.String(s.prefix + opts.StartAfter)
		}
		for {
			if err := ctx.Err(); err != nil {
				yield(store.Object{}, fmt.Errorf("list %s: %w", where, err))
				return
			}
			out, err := s.client.ListObjectsV2(ctx, in)
			if err != nil {
				yield(store.Object{}, wrap("list", where, bucketOp, err))
				return
			}
			for _, o := range out.Contents {
				key, err := decodeKey(aws.ToString(o.Key))
				if err != nil {
					yield(store.Object{}, &Error{Op: "list", URL: where, Err: err})
					return
				}
				if listPrefix != prefix && !strings.HasPrefix(key, prefix) {
					if key < prefix {
						continue
					}
					return // past the keys with the prefix
				}
				rel, ok := strings.CutPrefix(key, s.prefix)
				if !ok {
					yield(store.Object{}, &Error{Op: "list", URL: where,
						Err: fmt.Errorf("server returned key %q outside prefix %q", key, s.prefix)})
					return
				}
				obj := store.Object{
					Key:  rel,
					Size: aws.ToInt64(o.Size),
					ETag: unquote(aws.ToString(o.ETag)),
					// Seconds, as Stat reports it (Last-Modified is an
					// HTTP date), so a listing and a Stat agree.
					LastModified: aws.ToTime(o.LastModified).Truncate(time.Second),
				}
				if !yield(obj, nil) {
					return
				}
			}
			if !aws.ToBool(out.IsTruncated) {
				return
			}
			if aws.ToString(out.NextContinuationToken) == "" {
				yield(store.Object{}, &Error{Op: "list", URL: where,
					Err: fmt.Errorf("truncated page without continuation token")})
				return
			}
			in.ContinuationToken = out.NextContinuationToken
		}
	}
}

// Upload is an incomplete multipart upload.
type Upload struct {
	// Key is relative to the Store's prefix.
	Key       string
	UploadID  string
	Initiated time.Time
}

// ListMultipartUploads yields the incomplete multipart uploads under prefix
// (relative to the Store's prefix), in key order, a page at a time.
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
				key, err := decodeKey(aws.ToString(u.Key))
				if err != nil {
					yield(Upload{}, &Error{Op: "list uploads", URL: where, Err: err})
					return
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
			// The markers come back URL-encoded too.
			next, err := decodeKey(aws.ToString(out.NextKeyMarker))
			if err != nil {
				yield(Upload{}, &Error{Op: "list uploads", URL: where, Err: err})
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

// decodeKey decodes a key of a listing with EncodingType url: S3 encodes it
// as a query component (space as "+").
func decodeKey(k string) (string, error) {
	d, err := url.QueryUnescape(k)
	if err != nil {
		return "", fmt.Errorf("decode listed key %q: %w", k, err)
	}
	return d, nil
}
