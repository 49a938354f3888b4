package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// rawCopyMain is the "raw copy" ceiling of the cases between two endpoints
// (bench -raw-copy): the harness's minimal client copying the source bucket
// to the destination with no verification, no provenance, no job: list,
// then GET each object into memory and PUT it (small), or ranged GETs of
// the parts and UploadPart (large), conc requests pairs in flight. A copy
// must read what it writes; the raw PUT ceiling does not read, so on one
// machine whose cores the servers share it is not reachable by any copy
// (the source server's CPU for the GETs is the difference).
func rawCopyMain(args []string) int {
	fs := flag.NewFlagSet("raw-copy", flag.ContinueOnError)
	srcEndpoint := fs.String("src-endpoint", "", "")
	srcBucket := fs.String("src-bucket", "", "")
	endpoint := fs.String("endpoint", "", "")
	bucket := fs.String("bucket", "", "")
	shape := fs.String("shape", "small", "small or large")
	conc := fs.Int("conc", 128, "")
	partSize := fs.Int64("part-size", 16<<20, "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	src := newClient(*srcEndpoint, os.Getenv("BENCH_SRC_ACCESS_KEY"), os.Getenv("BENCH_SRC_SECRET_KEY"), *conc)
	dst := newClient(*endpoint, os.Getenv("BENCH_ACCESS_KEY"), os.Getenv("BENCH_SECRET_KEY"), *conc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	var err error
	switch *shape {
	case "small":
		err = copySmall(ctx, src, dst, *srcBucket, *bucket, *conc)
	case "large":
		err = copyLarge(ctx, src, dst, *srcBucket, *bucket, *partSize, *conc)
	default:
		err = fmt.Errorf("unknown shape %q", *shape)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "raw-copy: %v\n", err)
		return 1
	}
	return 0
}

// listAll sends every object of bucket on out, then closes it.
func listAll(ctx context.Context, c *s3.Client, bucket string, out chan<- types.Object) error {
	defer close(out)
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list %s: %w", bucket, err)
		}
		for _, o := range page.Contents {
			select {
			case out <- o:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

func copySmall(ctx context.Context, src, dst *s3.Client, srcBucket, bucket string, conc int) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	objs := make(chan types.Object, 1000)
	var wg sync.WaitGroup
	var listErr error
	wg.Go(func() { listErr = listAll(ctx, src, srcBucket, objs) })
	for range conc {
		wg.Go(func() {
			var buf bytes.Buffer
			for o := range objs {
				out, err := src.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(srcBucket), Key: o.Key})
				if err != nil {
					cancel(fmt.Errorf("get %s: %w", aws.ToString(o.Key), err))
					return
				}
				buf.Reset()
				_, err = buf.ReadFrom(out.Body)
				out.Body.Close()
				if err != nil {
					cancel(fmt.Errorf("get %s: %w", aws.ToString(o.Key), err))
					return
				}
				if _, err := dst.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: o.Key,
					Body: bytes.NewReader(buf.Bytes()), ContentLength: aws.Int64(int64(buf.Len()))}); err != nil {
					cancel(fmt.Errorf("put %s: %w", aws.ToString(o.Key), err))
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return listErr
}

func copyLarge(ctx context.Context, src, dst *s3.Client, srcBucket, bucket string, partSize int64, conc int) error {
	objs := make(chan types.Object, 1000)
	var listErr error
	var lwg sync.WaitGroup
	lwg.Go(func() { listErr = listAll(ctx, src, srcBucket, objs) })
	type upload struct {
		key   string
		id    string
		parts []types.CompletedPart
	}
	type part struct {
		u        *upload
		num      int
		off, len int64
	}
	var uploads []*upload
	var parts []part
	for o := range objs {
		out, err := dst.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: o.Key})
		if err != nil {
			return err
		}
		size := aws.ToInt64(o.Size)
		n := int((size + partSize - 1) / partSize)
		u := &upload{key: aws.ToString(o.Key), id: aws.ToString(out.UploadId), parts: make([]types.CompletedPart, n)}
		uploads = append(uploads, u)
		for p := range n {
			parts = append(parts, part{u, p + 1, int64(p) * partSize, min(partSize, size-int64(p)*partSize)})
		}
	}
	lwg.Wait()
	if listErr != nil {
		return listErr
	}
	work := make(chan part)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range conc {
		wg.Go(func() {
			buf := make([]byte, partSize)
			for p := range work {
				rng := fmt.Sprintf("bytes=%d-%d", p.off, p.off+p.len-1)
				out, err := src.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(srcBucket), Key: aws.String(p.u.key), Range: aws.String(rng)})
				if err == nil {
					_, err = io.ReadFull(out.Body, buf[:p.len])
					out.Body.Close()
				}
				var up *s3.UploadPartOutput
				if err == nil {
					up, err = dst.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(p.u.key), UploadId: aws.String(p.u.id),
						PartNumber: aws.Int32(int32(p.num)), Body: bytes.NewReader(buf[:p.len]), ContentLength: aws.Int64(p.len)})
				}
				if err != nil {
					mu.Lock()
					firstErr = errors.Join(firstErr, fmt.Errorf("part %d of %s: %w", p.num, p.u.key, err))
					mu.Unlock()
					continue
				}
				p.u.parts[p.num-1] = types.CompletedPart{ETag: up.ETag, PartNumber: aws.Int32(int32(p.num))}
			}
		})
	}
	// Interleaved: every upload progresses together, as in putLarge.
	slices.SortStableFunc(parts, func(a, b part) int { return a.num - b.num })
	for _, p := range parts {
		work <- p
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	for _, u := range uploads {
		if _, err := dst.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(u.key),
			UploadId: aws.String(u.id), MultipartUpload: &types.CompletedMultipartUpload{Parts: u.parts}}); err != nil {
			return err
		}
	}
	return nil
}
