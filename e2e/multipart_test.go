package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func seedLarge(t *testing.T, w *world, bucket string, n, size int) {
	t.Helper()
	for i := range n {
		b := make([]byte, size)
		_, _ = rand.Read(b)
		_, err := w.a.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(fmt.Sprintf("big/%02d.bin", i)), Body: bytes.NewReader(b)})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// waitUploads waits until the destination has an upload in progress.
func waitUploads(t *testing.T, w *world, bucket string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for openUploads(t, w.b, bucket) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if openUploads(t, w.b, bucket) == 0 {
		t.Fatal("no multipart upload started")
	}
	time.Sleep(300 * time.Millisecond) // a few parts in
}

// TestKillDuringMultipart kills the job while large objects upload in
// parts; the resumed job completes them, and no upload is left behind.
func TestKillDuringMultipart(t *testing.T) {
	w := newWorld(t)
	src, dst := mkBucket(t, w.a, "mp-src"), mkBucket(t, w.b, "mp-dst")
	seedLarge(t, w, src, 3, 40<<20)
	args := append(append([]string{"copy", "s3://" + src, "s3://" + dst, "--no-progress", "--part-size", "5MiB", "--concurrency", "2"}, w.srcA()...), w.dstB()...)
	c, _, errb := w.cmd(args...)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	waitUploads(t, w, dst)
	_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
	_ = c.Wait()
	id := jobID(t, errb.String())
	if u := openUploads(t, w.b, dst); u == 0 {
		t.Fatal("the kill left no upload in progress: nothing to resume")
	}
	code, out, errs := w.run("job", "resume", id, "--no-progress", "--json")
	if code != 0 {
		t.Fatalf("resume: exit %d\n%s\n%s", code, out, errs)
	}
	if got := countKeys(t, w.b, dst); got != 3 {
		t.Fatalf("%d objects at the destination, want 3\n%s\n%s", got, out, errs)
	}
	w.verify("s3://"+src, "s3://"+dst)
	if u := openUploads(t, w.b, dst); u != 0 {
		t.Fatalf("%d multipart uploads left after the job finished", u)
	}
}

// TestSecondInterruptAborts: the first SIGINT drains, the second aborts
// in-flight multipart uploads and exits.
func TestSecondInterruptAborts(t *testing.T) {
	w := newWorld(t)
	src, dst := mkBucket(t, w.a, "ab-src"), mkBucket(t, w.b, "ab-dst")
	seedLarge(t, w, src, 2, 60<<20)
	args := append(append([]string{"copy", "s3://" + src, "s3://" + dst, "--no-progress", "--part-size", "5MiB", "--concurrency", "2", "--drain-timeout", "5m"}, w.srcA()...), w.dstB()...)
	c, _, errb := w.cmd(args...)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	waitUploads(t, w, dst)
	_ = syscall.Kill(c.Process.Pid, syscall.SIGINT)
	time.Sleep(300 * time.Millisecond)
	_ = syscall.Kill(c.Process.Pid, syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = c.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("ferry did not exit after a second interrupt\n%s", errb.String())
	}
	if !strings.Contains(errb.String(), "aborting") {
		t.Fatalf("no abort message:\n%s", errb.String())
	}
	if u := openUploads(t, w.b, dst); u != 0 {
		t.Fatalf("%d multipart uploads left after abort\n%s", u, errb.String())
	}
	// The job can still be completed.
	id := jobID(t, errb.String())
	if code, out, errs := w.run("job", "resume", id, "--no-progress"); code != 0 {
		t.Fatalf("resume after abort: exit %d\n%s\n%s", code, out, errs)
	}
	w.verify("s3://"+src, "s3://"+dst)
}
