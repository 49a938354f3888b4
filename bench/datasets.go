package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// writeSmallDir writes dataset (a) as local files: key(i) under dir.
func writeSmallDir(dir string, n int, size int64, key func(int) string) error {
	return parallel(n, func(i int) error {
		p := filepath.Join(dir, filepath.FromSlash(key(i)))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, body(i, size), 0o644)
	})
}

// writeEmptyFiles writes dataset (c): n empty files in ~n/1000 directories
// (d0000/f0000 ...), at least 1 directory.
func writeEmptyFiles(dir string, n int) error {
	perDir := 1000
	if n < 100*perDir {
		perDir = 100
	}
	dirs := (n + perDir - 1) / perDir
	return parallel(dirs, func(d int) error {
		sub := filepath.Join(dir, fmt.Sprintf("d%04d", d))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return err
		}
		for f := 0; f < perDir && d*perDir+f < n; f++ {
			fh, err := os.OpenFile(filepath.Join(sub, fmt.Sprintf("f%04d", f)), os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
			if err != nil {
				return err
			}
			fh.Close()
		}
		return nil
	})
}

// parallel runs fn(0..n-1) on 2×GOMAXPROCS goroutines; first error wins.
func parallel(n int, fn func(int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range 2 * runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					next.Store(int64(n))
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// rawPutMain is the raw minimal client as its own process (bench -raw-put
// ...), so its wall time, CPU and RSS are measured like the tools'. It
// writes the dataset's shape to one bucket: small objects with -conc PUTs in
// flight, or large objects as multipart uploads with -conc parts in flight.
// Credentials come from BENCH_ACCESS_KEY / BENCH_SECRET_KEY.
func rawPutMain(args []string) int {
	fs := flag.NewFlagSet("raw-put", flag.ContinueOnError)
	endpoint := fs.String("endpoint", "", "")
	bucket := fs.String("bucket", "", "")
	shape := fs.String("shape", "small", "small or large")
	n := fs.Int("n", 0, "")
	size := fs.Int64("size", 0, "")
	prefixes := fs.Int("prefixes", 1, "")
	conc := fs.Int("conc", 128, "")
	partSize := fs.Int64("part-size", 16<<20, "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c := newClient(*endpoint, os.Getenv("BENCH_ACCESS_KEY"), os.Getenv("BENCH_SECRET_KEY"), *conc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	var err error
	switch *shape {
	case "small":
		err = putSmall(ctx, c, *bucket, *n, *size, *conc, func(i int) string { return fmt.Sprintf("p%02d/obj%05d", i%*prefixes, i) })
	case "large":
		err = putLarge(ctx, c, *bucket, *n, *size, *partSize, *conc, largeKey)
	default:
		err = fmt.Errorf("unknown shape %q", *shape)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "raw-put: %v\n", err)
		return 1
	}
	return 0
}

// writeSmallDirMain writes dataset (a) as local files in its own process
// (bench -write-small-dir DIR N SIZE PREFIXES), so the harness never holds
// the data pattern: see measureMain.
func writeSmallDirMain(args []string) int {
	if len(args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: bench -write-small-dir DIR N SIZE PREFIXES")
		return 2
	}
	var n, prefixes int
	var size int64
	fmt.Sscan(args[1], &n)
	fmt.Sscan(args[2], &size)
	fmt.Sscan(args[3], &prefixes)
	err := writeSmallDir(args[0], n, size, func(i int) string { return fmt.Sprintf("p%02d/obj%05d", i%prefixes, i) })
	if err != nil {
		fmt.Fprintf(os.Stderr, "write-small-dir: %v\n", err)
		return 1
	}
	return 0
}
