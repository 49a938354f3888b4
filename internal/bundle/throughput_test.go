package bundle

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"testing"
	"time"
)

// Packer and unpacker throughput per core (issue 11): one goroutine does
// what a worker does per bundle, so bytes/s here is bytes/s per core.
//
//	go test ./internal/bundle -run '^$' -bench Throughput -benchtime 5x
//
// Pack: spool every object (SHA-256 each), sample and choose the level,
// write the bundle through SHA-256 and CRC32C (the bundle's own checksums).
// Unpack: SHA-256 of the downloaded bundle, verify it whole, then read
// every object again (as a restore does: checked sizes, no second hashing).
// Throughput is of the objects' bytes.

// logObject is a JSON access-log object of 2 to 8 KiB (as bench case 8).
func logObject(i int) []byte {
	r := rand.New(rand.NewPCG(uint64(i), 11))
	target := 2048 + r.IntN(6144)
	var b bytes.Buffer
	for b.Len() < target {
		fmt.Fprintf(&b, `{"ts":"2026-11-%02dT%02d:%02d:%02dZ","level":"info","service":"checkout","host":"web-%02d","request_id":"%016x","path":"/api/v1/orders","status":%d,"bytes":%d,"duration_ms":%.2f}`+"\n",
			1+i%28, r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(16), r.Uint64(), []int{200, 201, 304, 404, 500}[r.IntN(5)], r.IntN(50000), r.Float64()*200)
	}
	return b.Bytes()[:target]
}

// randomObject is an incompressible 64 KiB object (as bench case 9).
func randomObject(i int) []byte {
	r := rand.New(rand.NewPCG(uint64(i), 7))
	b := make([]byte, 64<<10)
	for j := 0; j < len(b); j += 8 {
		v := r.Uint64()
		for k := range 8 {
			b[j+k] = byte(v >> (8 * k))
		}
	}
	return b
}

func throughputSet(n int, gen func(int) []byte) ([][]byte, int64) {
	bodies := make([][]byte, n)
	var total int64
	for i := range n {
		bodies[i] = gen(i)
		total += int64(len(bodies[i]))
	}
	return bodies, total
}

func packOnce(tb testing.TB, dir string, bodies [][]byte) ([]byte, Manifest) {
	b, err := NewBuilder(dir)
	if err != nil {
		tb.Fatal(err)
	}
	defer b.Close()
	for i, body := range bodies {
		// As a pack worker does: the objects' bytes are in memory.
		if err := b.AddBytes(Object{Key: fmt.Sprintf("k/%06d", i), Created: time.Unix(1700000000, 0)}, body); err != nil {
			tb.Fatal(err)
		}
	}
	sample, err := b.Sample(SampleBytes)
	if err != nil {
		tb.Fatal(err)
	}
	c := ChooseLevel(sample)
	var out bytes.Buffer
	sum, crc := sha256.New(), crc32.New(crc32.MakeTable(crc32.Castagnoli))
	m, err := b.WriteTo(context.Background(), io.MultiWriter(&out, sum, crc), WriteOptions{ID: "b", Job: "j", Created: time.Now(), Level: c.Level})
	if err != nil {
		tb.Fatal(err)
	}
	return out.Bytes(), m
}

func unpackOnce(tb testing.TB, raw []byte, want int) {
	if sha256.Sum256(raw) == [32]byte{} { // the bundle's checksum, as fetchBundle does
		tb.Fatal("zero checksum")
	}
	if _, err := Verify(bytes.NewReader(raw), ReadOptions{}); err != nil {
		tb.Fatal(err)
	}
	rd, err := NewReader(bytes.NewReader(raw), ReadOptions{Verified: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer rd.Close()
	n := 0
	for {
		mo, body, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			tb.Fatal(err)
		}
		buf := bytes.NewBuffer(make([]byte, 0, mo.Size+bytes.MinRead))
		if _, err := buf.ReadFrom(body); err != nil {
			tb.Fatal(err)
		}
		n++
	}
	if n != want {
		tb.Fatalf("read %d objects, want %d", n, want)
	}
}

func BenchmarkThroughput(b *testing.B) {
	sets := []struct {
		name string
		n    int
		gen  func(int) []byte
	}{
		{"logs-2to8KiB", 1000, logObject},   // one bundle of a case-8 job
		{"random-64KiB", 100, randomObject}, // one bundle of a case-9 job
	}
	for _, set := range sets {
		bodies, total := throughputSet(set.n, set.gen)
		b.Run("pack/"+set.name, func(b *testing.B) {
			dir := b.TempDir()
			b.SetBytes(total)
			var m Manifest
			var raw []byte
			for b.Loop() {
				raw, m = packOnce(b, dir, bodies)
			}
			b.ReportMetric(float64(total)/float64(len(raw)), "ratio")
			b.ReportMetric(float64(m.Level), "level")
		})
		b.Run("unpack/"+set.name, func(b *testing.B) {
			raw, _ := packOnce(b, b.TempDir(), bodies)
			b.SetBytes(total)
			for b.Loop() {
				unpackOnce(b, raw, set.n)
			}
		})
	}
}

// TestThroughputRoundTrip keeps the benchmark's helpers honest: what they
// pack, they read back identical.
func TestThroughputRoundTrip(t *testing.T) {
	for _, gen := range []func(int) []byte{logObject, randomObject} {
		bodies, _ := throughputSet(20, gen)
		raw, m := packOnce(t, t.TempDir(), bodies)
		if len(m.Objects) != 20 {
			t.Fatalf("manifest has %d objects", len(m.Objects))
		}
		unpackOnce(t, raw, 20)
		rd, err := NewReader(bytes.NewReader(raw), ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; ; i++ {
			_, body, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(body)
			if !bytes.Equal(got, bodies[i]) {
				t.Fatalf("object %d differs", i)
			}
		}
		rd.Close()
	}
}
