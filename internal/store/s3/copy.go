package s3

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-dev/ferry/internal/store"
)

const (
	// maxCopyObjectSize is the largest object one CopyObject copies.
	maxCopyObjectSize = 5 << 30
	// minCopyPartSize is the smallest part CopyFrom copies above it.
	minCopyPartSize = 64 << 20
	// maxParts is S3's limit on the parts of an upload.
	maxParts = 10000
	// copyPartConcurrency is the number of UploadPartCopy requests in flight
	// for one object.
	copyPartConcurrency = 4
)

// CanCopyFrom reports whether src is an S3 store on the same endpoint and
// region with the same profile and credentials provider, so one request
// signed by s can read it.
func (s *Store) CanCopyFrom(src store.Store) bool {
	o, ok := src.(*Store)
	if !ok {
		return false
	}
	return o.endpoint == s.endpoint && o.region == s.region && o.profile == s.profile && sameProvider(o.creds, s.creds)
}

// sameProvider reports whether a and b give the same credentials: both nil
// (the same default chain), the same provider, or providers that return the
// same keys now.
func sameProvider(a, b aws.CredentialsProvider) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if ta := reflect.TypeOf(a); ta == reflect.TypeOf(b) && ta.Comparable() && a == b {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ca, err := a.Retrieve(ctx)
	if err != nil {
		return false
	}
	cb, err := b.Retrieve(ctx)
	if err != nil {
		return false
	}
	return ca.AccessKeyID == cb.AccessKeyID && ca.SecretAccessKey == cb.SecretAccessKey && ca.SessionToken == cb.SessionToken
}

// CopyFrom copies srcKey of src to in.Key on the server: with CopyObject up
// to 5 GiB (metadata replaced by in's, tags copied), above it with
// UploadPartCopy parts of a multipart upload created with in's attributes
// and the source's tags. A failed multipart copy is aborted.
func (s *Store) CopyFrom(ctx context.Context, src store.Store, srcKey string, in store.PutInput) (store.PutResult, error) {
	o, ok := src.(*Store)
	if !ok || !s.CanCopyFrom(src) {
		return store.PutResult{}, fmt.Errorf("copy %s to %s: cannot copy on the server from %s", srcKey, s.url(in.Key), src)
	}
	full, err := s.fullKey("copy", in.Key)
	if err != nil {
		return store.PutResult{}, err
	}
	srcFull, err := o.fullKey("copy", srcKey)
	if err != nil {
		return store.PutResult{}, err
	}
	source := copySource(o.bucket, srcFull)
	if in.Size <= s.copyPartThreshold {
		out, err := s.client.CopyObject(ctx, &s3.CopyObjectInput{
			Bucket:               aws.String(s.bucket),
			Key:                  aws.String(full),
			CopySource:           aws.String(source),
			MetadataDirective:    types.MetadataDirectiveReplace,
			TaggingDirective:     types.TaggingDirectiveCopy,
			ContentType:          optional(in.ContentType),
			ContentEncoding:      optional(in.ContentEncoding),
			ContentDisposition:   optional(in.ContentDisposition),
			ContentLanguage:      optional(in.ContentLanguage),
			CacheControl:         optional(in.CacheControl),
			Metadata:             userMetadata(in.Metadata),
			ChecksumAlgorithm:    types.ChecksumAlgorithmCrc32c,
			ServerSideEncryption: types.ServerSideEncryption(in.SSE),
			SSEKMSKeyId:          optional(in.SSEKMSKeyID),
			StorageClass:         types.StorageClass(in.StorageClass),
		}, withExpires(in.Expires))
		if err != nil {
			return store.PutResult{}, wrap("copy "+o.url(srcKey)+" to", s.url(in.Key), objectOp, err)
		}
		var r store.PutResult
		if res := out.CopyObjectResult; res != nil {
			r.ETag = unquote(aws.ToString(res.ETag))
			r.ChecksumCRC32C = fullObjectCRC32C(aws.ToString(res.ChecksumCRC32C), res.ChecksumType)
		}
		r.VersionID = aws.ToString(out.VersionId)
		return r, nil
	}
	return s.copyParts(ctx, o, srcKey, source, full, in)
}

func (s *Store) copyParts(ctx context.Context, o *Store, srcKey, source, full string, in store.PutInput) (store.PutResult, error) {
	op := "copy " + o.url(srcKey) + " to"
	tags, err := o.Tags(ctx, srcKey)
	if err != nil {
		return store.PutResult{}, err
	}
	// UploadPartCopy sends no part checksums (MinIO then refuses parts of
	// an upload created with an algorithm), so the copy gets none; S3
	// computes its default for the object.
	create := s.createInput(full, in, tags)
	create.ChecksumAlgorithm, create.ChecksumType = "", ""
	up, err := s.client.CreateMultipartUpload(ctx, create, withExpires(in.Expires))
	if err != nil {
		return store.PutResult{}, wrap(op, s.url(in.Key), objectOp, err)
	}
	uploadID := aws.ToString(up.UploadId)
	abort := func() {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		_, _ = s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
			Bucket: aws.String(s.bucket), Key: aws.String(full), UploadId: aws.String(uploadID),
		})
	}

	partSize := s.copyPartSize
	if partSize == 0 {
		partSize = copyPartSizeFor(in.Size)
	}
	n := int((in.Size + partSize - 1) / partSize)
	parts := make([]types.CompletedPart, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(copyPartConcurrency)
	for i := range n {
		first := int64(i) * partSize
		last := min(first+partSize, in.Size) - 1
		g.Go(func() error {
			out, err := s.client.UploadPartCopy(gctx, &s3.UploadPartCopyInput{
				Bucket:          aws.String(s.bucket),
				Key:             aws.String(full),
				UploadId:        aws.String(uploadID),
				PartNumber:      aws.Int32(int32(i + 1)),
				CopySource:      aws.String(source),
				CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", first, last)),
			})
			if err != nil {
				return wrap(op, s.url(in.Key), objectOp, err)
			}
			p := types.CompletedPart{PartNumber: aws.Int32(int32(i + 1))}
			if r := out.CopyPartResult; r != nil {
				p.ETag = r.ETag
				p.ChecksumCRC32C = r.ChecksumCRC32C
			}
			parts[i] = p
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		abort()
		return store.PutResult{}, err
	}
	out, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(s.bucket),
		Key:             aws.String(full),
		UploadId:        aws.String(uploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		abort()
		return store.PutResult{}, wrap(op, s.url(in.Key), objectOp, err)
	}
	return store.PutResult{
		ETag:           unquote(aws.ToString(out.ETag)),
		VersionID:      aws.ToString(out.VersionId),
		ChecksumCRC32C: fullObjectCRC32C(aws.ToString(out.ChecksumCRC32C), out.ChecksumType),
	}, nil
}

// copyPartSizeFor returns the part size for a multipart copy of size bytes:
// at least 64 MiB, whole MiB, and few enough parts.
func copyPartSizeFor(size int64) int64 {
	p := max(int64(minCopyPartSize), (size+maxParts-1)/maxParts)
	const mib = 1 << 20
	return (p + mib - 1) / mib * mib
}

// copySource returns the x-amz-copy-source value for bucket/key: the key
// percent-encoded except for unreserved characters and "/".
func copySource(bucket, key string) string {
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(bucket)+1+len(key)*3)
	b = append(b, bucket...)
	b = append(b, '/')
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.', c == '~', c == '/':
			b = append(b, c)
		default:
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
	}
	return string(b)
}
