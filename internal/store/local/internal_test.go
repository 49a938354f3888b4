package local

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

func TestCRC32Combine(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	data := make([]byte, 100000)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	for _, cut := range []int{0, 1, 7, 4096, 50000, 99999, 100000} {
		a := crc32.Checksum(data[:cut], castagnoli)
		b := crc32.Checksum(data[cut:], castagnoli)
		if got, want := crc32Combine(a, b, int64(len(data)-cut)), crc32.Checksum(data, castagnoli); got != want {
			t.Errorf("cut %d: combined %08x, want %08x", cut, got, want)
		}
	}
}
