package s3

import (
	"context"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ferry-dev/ferry/internal/store"
)

var _ store.LevelLister = (*Store)(nil)

// ListLevel yields one level under opts.Prefix, a ListObjectsV2 page (with
// Delimiter "/") at a time, merging each page's objects and common prefixes
// in key order.
//
// Servers differ on a StartAfter inside a common prefix ("a/x" in "a/"): AWS
// returns "a/" when a key below it follows StartAfter, MinIO leaves it out.
// ListLevel asks for the first such key itself and yields "a/" first when
// there is one, dropping the server's own "a/" if it sends it.
func (s *Store) ListLevel(ctx context.Context, opts store.ListOptions) iter.Seq2[store.Entry, error] {
	prefix := s.prefix + opts.Prefix
	if safeListPrefix(prefix) != prefix {
		// MinIO rejects the prefix: roll up the filtered full listing.
		return store.RollUp(s.List(ctx, opts), opts)
	}
	return func(yield func(store.Entry, error) bool) {
		where := s.url(opts.Prefix)
		skip := "" // a common prefix already yielded
		if cp, ok := store.CommonPrefix(opts.Prefix, opts.StartAfter); ok {
			found := false
			for _, err := range s.List(ctx, store.ListOptions{Prefix: cp, StartAfter: opts.StartAfter}) {
				if err != nil {
					yield(store.Entry{}, err)
					return
				}
				found = true
				break
			}
			if found {
				if !yield(store.Entry{Object: store.Object{Key: cp}, IsPrefix: true}, nil) {
					return
				}
				skip = cp
			}
		}
		in := &s3.ListObjectsV2Input{
			Bucket:       aws.String(s.bucket),
			Prefix:       optional(prefix),
			Delimiter:    aws.String("/"),
			MaxKeys:      aws.Int32(listPageSize),
			EncodingType: types.EncodingTypeUrl,
		}
		if opts.StartAfter != "" {
			in.StartAfter = aws.String(s.prefix + opts.StartAfter)
		}
		for {
			if err := ctx.Err(); err != nil {
				yield(store.Entry{}, fmt.Errorf("list %s: %w", where, err))
				return
			}
			out, err := s.client.ListObjectsV2(ctx, in)
			if err != nil {
				yield(store.Entry{}, wrap("list", where, bucketOp, err))
				return
			}
			page, err := s.levelPage(out)
			if err != nil {
				yield(store.Entry{}, &Error{Op: "list", URL: where, Err: err})
				return
			}
			for _, e := range page {
				if e.IsPrefix && e.Key == skip {
					continue
				}
				if !yield(e, nil) {
					return
				}
			}
			if !aws.ToBool(out.IsTruncated) {
				return
			}
			if aws.ToString(out.NextContinuationToken) == "" {
				yield(store.Entry{}, &Error{Op: "list", URL: where,
					Err: fmt.Errorf("truncated page without continuation token")})
				return
			}
			in.ContinuationToken = out.NextContinuationToken
		}
	}
}

// levelPage decodes the objects and common prefixes of a page and merges
// them in key order, keys relative to the store's prefix.
func (s *Store) levelPage(out *s3.ListObjectsV2Output) ([]store.Entry, error) {
	rel := func(encoded string) (string, error) {
		key, err := decodeKey(encoded)
		if err != nil {
			return "", err
		}
		r, ok := strings.CutPrefix(key, s.prefix)
		if !ok {
			return "", fmt.Errorf("server returned key %q outside prefix %q", key, s.prefix)
		}
		return r, nil
	}
	objs := make([]store.Entry, 0, len(out.Contents))
	for _, o := range out.Contents {
		key, err := rel(aws.ToString(o.Key))
		if err != nil {
			return nil, err
		}
		objs = append(objs, store.Entry{Object: store.Object{
			Key:          key,
			Size:         aws.ToInt64(o.Size),
			ETag:         unquote(aws.ToString(o.ETag)),
			LastModified: aws.ToTime(o.LastModified).Truncate(time.Second),
		}})
	}
	cps := make([]store.Entry, 0, len(out.CommonPrefixes))
	for _, p := range out.CommonPrefixes {
		key, err := rel(aws.ToString(p.Prefix))
		if err != nil {
			return nil, err
		}
		cps = append(cps, store.Entry{Object: store.Object{Key: key}, IsPrefix: true})
	}
	// Merge by decoded key: URL encoding does not keep the order.
	page := make([]store.Entry, 0, len(objs)+len(cps))
	for len(objs) > 0 && len(cps) > 0 {
		if objs[0].Key < cps[0].Key {
			page, objs = append(page, objs[0]), objs[1:]
		} else {
			page, cps = append(page, cps[0]), cps[1:]
		}
	}
	page = append(page, objs...)
	return append(page, cps...), nil
}
