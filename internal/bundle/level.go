package bundle

import (
	"runtime"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Levels a bundle is written with: 0 stores the tar stream, 1 to 4 are
// zstd's fastest, default, better and best.
const (
	LevelStore   = 0
	LevelFastest = 1
	LevelDefault = 2
	LevelBetter  = 3
	LevelBest    = 4
)

// MinRatio is the sampled compression ratio below which compressing is
// not worth its CPU: the data is stored (already-compressed media).
const MinRatio = 1.1

// BetterRate is the rate (bytes per second on one core) at which the
// better level must compress the sample for it to be chosen: fast enough
// that a packer stays ahead of a 1 Gb/s link per core.
const BetterRate = 128 << 20

// SampleBytes is how much of a bundle's data is sampled.
const SampleBytes = 1 << 20

// Choice is the level chosen for a sample and the ratio measured.
type Choice struct {
	Level int
	// Ratio is the sample's size over its compressed size at the fastest
	// level (1 when nothing was sampled).
	Ratio float64
}

// ChooseLevel samples data: data that the fastest level shrinks by less
// than [MinRatio] is stored; otherwise the better level is chosen when it
// compresses the sample at [BetterRate] or more and saves at least 5%
// more, else the fastest.
func ChooseLevel(sample []byte) Choice {
	if len(sample) == 0 {
		return Choice{Level: LevelFastest, Ratio: 1}
	}
	fast := compressedLen(sample, zstd.SpeedFastest)
	ratio := float64(len(sample)) / float64(max(fast, 1))
	if ratio < MinRatio {
		return Choice{Level: LevelStore, Ratio: ratio}
	}
	start := time.Now()
	better := compressedLen(sample, zstd.SpeedBetterCompression)
	secs := time.Since(start).Seconds()
	if secs > 0 && float64(len(sample))/secs >= BetterRate && float64(better) <= 0.95*float64(fast) {
		return Choice{Level: LevelBetter, Ratio: ratio}
	}
	return Choice{Level: LevelFastest, Ratio: ratio}
}

// Sampling encoders, made once: EncodeAll may be called concurrently (each
// call runs on one goroutine), and making an encoder per sample cost more
// CPU than compressing the sample (issue 11's case 9 profile).
var (
	fastEncoder   = sync.OnceValue(func() *zstd.Encoder { return sampleEncoder(zstd.SpeedFastest) })
	betterEncoder = sync.OnceValue(func() *zstd.Encoder { return sampleEncoder(zstd.SpeedBetterCompression) })
)

func sampleEncoder(l zstd.EncoderLevel) *zstd.Encoder {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(l), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
	if err != nil {
		return nil
	}
	return enc
}

func compressedLen(b []byte, l zstd.EncoderLevel) int {
	enc := fastEncoder()
	if l != zstd.SpeedFastest {
		enc = betterEncoder()
	}
	if enc == nil {
		return len(b)
	}
	dst := samplePool.Get().(*[]byte)
	defer samplePool.Put(dst)
	*dst = enc.EncodeAll(b, (*dst)[:0])
	return len(*dst)
}

var samplePool = sync.Pool{New: func() any { b := make([]byte, 0, SampleBytes+SampleBytes/8); return &b }}
