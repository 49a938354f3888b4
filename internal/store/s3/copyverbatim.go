package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ferry-dev/ferry/internal/store"
)

var _ store.VerbatimCopier = (*Store)(nil)

// CopyVerbatim copies srcKey of src to in.Key with one CopyObject whose
// metadata and tagging directives are COPY (the server keeps the source's
// content headers, user metadata and tags) and whose
// x-amz-copy-source-if-match is etag, so only that version is copied. A
// source that is no longer etag fails with store.ErrChanged (412).
func (s *Store) CopyVerbatim(ctx context.Context, src store.Store, srcKey, etag string, in store.PutInput) (store.PutResult, error) {
	o, ok := src.(*Store)
	if !ok || !s.CanCopyFrom(src) {
		return store.PutResult{}, fmt.Errorf("copy %s to %s: cannot copy on the server from %s", srcKey, s.url(in.Key), src)
	}
	if in.Size > s.copyPartThreshold {
		return store.PutResult{}, fmt.Errorf("copy %s to %s: %d bytes need a multipart copy: %w", o.url(srcKey), s.url(in.Key), in.Size, errors.ErrUnsupported)
	}
	full, err := s.fullKey("copy", in.Key)
	if err != nil {
		return store.PutResult{}, err
	}
	srcFull, err := o.fullKey("copy", srcKey)
	if err != nil {
		return store.PutResult{}, err
	}
	if o.bucket == s.bucket && srcFull == full {
		// S3 refuses to copy an object onto itself unchanged.
		return store.PutResult{}, fmt.Errorf("copy %s onto itself: %w", s.url(in.Key), errors.ErrUnsupported)
	}
	out, err := s.client.CopyObject(ctx, &s3.CopyObjectInput{
		Bucket:               aws.String(s.bucket),
		Key:                  aws.String(full),
		CopySource:           aws.String(copySource(o.bucket, srcFull)),
		CopySourceIfMatch:    aws.String(`"` + etag + `"`),
		MetadataDirective:    types.MetadataDirectiveCopy,
		TaggingDirective:     types.TaggingDirectiveCopy,
		ChecksumAlgorithm:    types.ChecksumAlgorithmCrc32c,
		ServerSideEncryption: types.ServerSideEncryption(in.SSE),
		SSEKMSKeyId:          optional(in.SSEKMSKeyID),
		StorageClass:         types.StorageClass(in.StorageClass),
	})
	if err != nil {
		op := "copy " + o.url(srcKey) + " to"
		if Status(err) == http.StatusPreconditionFailed || Code(err) == "PreconditionFailed" {
			return store.PutResult{}, &Error{Op: op, URL: s.url(in.Key), Class: store.ErrChanged, Err: err}
		}
		return store.PutResult{}, wrap(op, s.url(in.Key), objectOp, err)
	}
	var r store.PutResult
	if res := out.CopyObjectResult; res != nil {
		r.ETag = unquote(aws.ToString(res.ETag))
		r.ChecksumCRC32C = fullObjectCRC32C(aws.ToString(res.ChecksumCRC32C), res.ChecksumType)
	}
	r.VersionID = aws.ToString(out.VersionId)
	r.SrcVersionID = aws.ToString(out.CopySourceVersionId)
	r.SSE = string(out.ServerSideEncryption)
	return r, nil
}
