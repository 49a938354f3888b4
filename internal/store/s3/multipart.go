package s3

import (
	"context"
	"errors"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ferry-dev/ferry/internal/store"
)

// CreateMultipart starts a multipart upload of in.Key with in's attributes,
// metadata and tags, and full-object CRC32C checksums.
func (s *Store) CreateMultipart(ctx context.Context, in store.PutInput) (string, error) {
	full, err := s.fullKey("create multipart", in.Key)
	if err != nil {
		return "", err
	}
	out, err := s.client.CreateMultipartUpload(ctx, s.createInput(full, in, in.Tags), withExpires(in.Expires))
	if err != nil {
		return "", wrap("create multipart", s.url(in.Key), bucketOp, err)
	}
	return aws.ToString(out.UploadId), nil
}

func (s *Store) createInput(full string, in store.PutInput, tags map[string]string) *s3.CreateMultipartUploadInput {
	return &s3.CreateMultipartUploadInput{
		Bucket:               aws.String(s.bucket),
		Key:                  aws.String(full),
		ContentType:          optional(in.ContentType),
		ContentEncoding:      optional(in.ContentEncoding),
		ContentDisposition:   optional(in.ContentDisposition),
		ContentLanguage:      optional(in.ContentLanguage),
		CacheControl:         optional(in.CacheControl),
		Metadata:             userMetadata(in.Metadata),
		Tagging:              optional(encodeTags(tags)),
		ChecksumAlgorithm:    types.ChecksumAlgorithmCrc32c,
		ChecksumType:         types.ChecksumTypeFullObject,
		ServerSideEncryption: types.ServerSideEncryption(in.SSE),
		SSEKMSKeyId:          optional(in.SSEKMSKeyID),
		StorageClass:         types.StorageClass(in.StorageClass),
	}
}

// UploadPart uploads part n. The server checks crc32c (the base64 CRC32C of
// the part); a mismatch wraps store.ErrChecksum. The body is seekable, so the
// SDK retries the request itself.
func (s *Store) UploadPart(ctx context.Context, key, uploadID string, n int32, body io.ReadSeeker, size int64, crc32c string) (store.Part, error) {
	full, err := s.fullKey("upload part", key)
	if err != nil {
		return store.Part{}, err
	}
	out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket:         aws.String(s.bucket),
		Key:            aws.String(full),
		UploadId:       aws.String(uploadID),
		PartNumber:     aws.Int32(n),
		Body:           body,
		ContentLength:  aws.Int64(size),
		ChecksumCRC32C: optional(crc32c),
	}, unsignedPayload)
	if err != nil {
		return store.Part{}, wrap("upload part", s.url(key), objectOp, err)
	}
	p := store.Part{Number: n, Size: size, ETag: unquote(aws.ToString(out.ETag)), ChecksumCRC32C: aws.ToString(out.ChecksumCRC32C)}
	if p.ChecksumCRC32C == "" {
		p.ChecksumCRC32C = crc32c
	}
	return p, nil
}

// CompleteMultipart assembles parts into the object.
func (s *Store) CompleteMultipart(ctx context.Context, key, uploadID string, parts []store.Part) (store.PutResult, error) {
	full, err := s.fullKey("complete multipart", key)
	if err != nil {
		return store.PutResult{}, err
	}
	cp := make([]types.CompletedPart, len(parts))
	for i, p := range parts {
		cp[i] = types.CompletedPart{
			PartNumber:     aws.Int32(p.Number),
			ETag:           aws.String(p.ETag),
			ChecksumCRC32C: optional(p.ChecksumCRC32C),
		}
	}
	out, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(s.bucket),
		Key:             aws.String(full),
		UploadId:        aws.String(uploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: cp},
		ChecksumType:    types.ChecksumTypeFullObject,
	})
	if err != nil {
		return store.PutResult{}, wrap("complete multipart", s.url(key), objectOp, err)
	}
	return store.PutResult{
		ETag:           unquote(aws.ToString(out.ETag)),
		VersionID:      aws.ToString(out.VersionId),
		ChecksumCRC32C: fullObjectCRC32C(aws.ToString(out.ChecksumCRC32C), out.ChecksumType),
	}, nil
}

// AbortMultipart discards the upload; an upload already gone is not an
// error.
func (s *Store) AbortMultipart(ctx context.Context, key, uploadID string) error {
	full, err := s.fullKey("abort multipart", key)
	if err != nil {
		return err
	}
	_, err = s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket:   aws.String(s.bucket),
		Key:      aws.String(full),
		UploadId: aws.String(uploadID),
	})
	err = wrap("abort multipart", s.url(key), objectOp, err)
	if errors.Is(err, store.ErrNotExist) {
		return nil
	}
	return err
}

// ListParts returns the parts uploaded so far to uploadID (ListParts,
// every page), in order of number.
func (s *Store) ListParts(ctx context.Context, key, uploadID string) ([]store.Part, error) {
	full, err := s.fullKey("list parts", key)
	if err != nil {
		return nil, err
	}
	var parts []store.Part
	p := s3.NewListPartsPaginator(s.client, &s3.ListPartsInput{Bucket: aws.String(s.bucket), Key: aws.String(full), UploadId: aws.String(uploadID)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, wrap("list parts", s.url(key), objectOp, err)
		}
		for _, pt := range page.Parts {
			parts = append(parts, store.Part{Number: aws.ToInt32(pt.PartNumber), Size: aws.ToInt64(pt.Size),
				ETag: unquote(aws.ToString(pt.ETag)), ChecksumCRC32C: aws.ToString(pt.ChecksumCRC32C)})
		}
	}
	return parts, nil
}
