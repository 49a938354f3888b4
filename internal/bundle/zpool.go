package bundle

import (
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Encoders and decoders are reused across bundles: making one allocates
// its history window (megabytes), which cost more than packing a bundle of
// small objects (BenchmarkThroughput).

var encoders [LevelBest + 1]sync.Pool

// getEncoder returns an encoder of level writing to w; putEncoder takes it
// back after Close.
func getEncoder(w io.Writer, level int) (*zstd.Encoder, error) {
	if e, ok := encoders[level].Get().(*zstd.Encoder); ok {
		e.Reset(w)
		return e, nil
	}
	return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.EncoderLevel(level)), zstd.WithEncoderConcurrency(1))
}

func putEncoder(e *zstd.Encoder, level int) {
	e.Reset(nil)
	encoders[level].Put(e)
}

var decoders sync.Pool

// getDecoder returns a decoder reading r; putDecoder takes it back.
func getDecoder(r io.Reader) (*zstd.Decoder, error) {
	if d, ok := decoders.Get().(*zstd.Decoder); ok {
		if err := d.Reset(r); err == nil {
			return d, nil
		}
		d.Close()
	}
	return zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
}

func putDecoder(d *zstd.Decoder) {
	if err := d.Reset(nil); err != nil {
		d.Close()
		return
	}
	decoders.Put(d)
}
