package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// newClient is the harness's own minimal S3 client: path style, unsigned
// payloads, no optional checksums, a connection pool as large as the
// concurrency. It seeds datasets, clears buckets and is the "raw client"
// whose upload time is the server-side ceiling.
func newClient(endpoint, ak, sk string, conns int) *s3.Client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return s3.New(s3.Options{
		BaseEndpoint:               aws.String(endpoint),
		Region:                     "us-east-1",
		Credentials:                credentials.NewStaticCredentialsProvider(ak, sk, ""),
		UsePathStyle:               true,
		HTTPClient:                 &http.Client{Transport: tr},
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		RetryMaxAttempts:           5,
		APIOptions:                 []func(*middleware.Stack) error{v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware},
	})
}

func createBucket(ctx context.Context, c *s3.Client, bucket string) error {
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	return err
}

// dropBucket deletes a bucket with everything in it (MinIO's force delete).
func dropBucket(ctx context.Context, c *s3.Client, bucket string) error {
	_, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)},
		s3.WithAPIOptions(smithyhttp.AddHeaderValue("x-minio-force-delete", "true")))
	return err
}

// countBucket lists the bucket: number of objects and their total size.
func countBucket(ctx context.Context, c *s3.Client, bucket string) (n, size int64, err error) {
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return n, size, err
		}
		for _, o := range page.Contents {
			n++
			size += aws.ToInt64(o.Size)
		}
	}
	return n, size, nil
}

// pattern returns a block of pseudo-random bytes that object bodies are sliced
// from, so generating data costs no CPU during a measured upload. MinIO
// neither compresses nor deduplicates by default, so repeats don't matter.
var pattern = sync.OnceValue(func() []byte {
	b := make([]byte, 64<<20+1<<20)
	r := rand.NewChaCha8([32]byte{'f', 'e', 'r', 'r', 'y'})
	_, _ = r.Read(b)
	return b
})

// body returns size bytes for object i (distinct start offsets).
func body(i int, size int64) []byte {
	p := pattern()
	if size > int64(len(p))-1<<20 {
		panic("body: object larger than the pattern; use parts")
	}
	off := (int64(i) * 4099) % (1 << 20)
	return p[off : off+size]
}

// putSmall uploads objects key(i), i < n, of size bytes each with conc
// PutObjects in flight.
func putSmall(ctx context.Context, c *s3.Client, bucket string, n int, size int64, conc int, key func(int) string) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, conc)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				_, err := c.PutObject(ctx, &s3.PutObjectInput{
					Bucket:        aws.String(bucket),
					Key:           aws.String(key(i)),
					Body:          bytes.NewReader(body(i, size)),
					ContentLength: aws.Int64(size),
				})
				if err != nil {
					errc <- fmt.Errorf("put %s: %w", key(i), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// putLarge uploads n objects of size bytes as multipart uploads of partSize
// parts, with conc parts in flight across all objects.
func putLarge(ctx context.Context, c *s3.Client, bucket string, n int, size, partSize int64, conc int, key func(int) string) error {
	type part struct {
		obj, num int
		off, len int64
	}
	uploads := make([]string, n)
	for i := range n {
		out, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key(i))})
		if err != nil {
			return err
		}
		uploads[i] = aws.ToString(out.UploadId)
	}
	var parts []part
	nparts := int((size + partSize - 1) / partSize)
	// Interleave objects so all uploads progress together.
	for p := range nparts {
		for i := range n {
			l := min(partSize, size-int64(p)*partSize)
			parts = append(parts, part{i, p + 1, int64(p) * partSize, l})
		}
	}
	done := make([][]types.CompletedPart, n)
	for i := range done {
		done[i] = make([]types.CompletedPart, nparts)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j := int(next.Add(1) - 1)
				if j >= len(parts) || ctx.Err() != nil {
					return
				}
				p := parts[j]
				b := body(p.obj*nparts+p.num, p.len)
				out, err := c.UploadPart(ctx, &s3.UploadPartInput{
					Bucket: aws.String(bucket), Key: aws.String(key(p.obj)), UploadId: aws.String(uploads[p.obj]),
					PartNumber: aws.Int32(int32(p.num)), Body: bytes.NewReader(b), ContentLength: aws.Int64(p.len),
				})
				if err != nil {
					mu.Lock()
					firstErr = errors.Join(firstErr, err)
					mu.Unlock()
					return
				}
				done[p.obj][p.num-1] = types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(p.num))}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	for i := range n {
		_, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket: aws.String(bucket), Key: aws.String(key(i)), UploadId: aws.String(uploads[i]),
			MultipartUpload: &types.CompletedMultipartUpload{Parts: done[i]},
		})
		if err != nil {
			return err
		}
	}
	return nil
}
