package transfer

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32cBase64 encodes a CRC32C as S3 expects it: base64 (std) of the
// big-endian 4 bytes.
func crc32cBase64(sum uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], sum)
	return base64.StdEncoding.EncodeToString(b[:])
}

// fullObjectCRC returns s when it is a full-object base64 CRC32C, or "" when
// it is empty or a composite multipart checksum ("xxxx==-3").
func fullObjectCRC(s string) string {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != 4 {
		return ""
	}
	return s
}

// isPlainMD5 reports whether etag is a plain MD5: 32 hex digits, no "-N"
// multipart suffix.
func isPlainMD5(etag string) bool {
	if len(etag) != 32 {
		return false
	}
	_, err := hex.DecodeString(etag)
	return err == nil
}

// sseKMS is the SSE value of objects encrypted with KMS, whose ETag is not
// the MD5 of the bytes.
const sseKMS = "aws:kms"

// castagnoliReversed is the CRC32C polynomial in the bit-reflected form
// hash/crc32 uses: bit 31 is the coefficient of x^0.
const castagnoliReversed = 0x82f63b78

// crc32cCombine returns the CRC32C of the concatenation a‖b from the CRC32Cs
// of a and b and the length of b, without the bytes (zlib's crc32_combine,
// for the Castagnoli polynomial): shifting a's CRC by 8·lenB zero bits is a
// multiplication by x^(8·lenB) modulo the polynomial, and the conditioning
// (initial value and final xor) cancels out. It costs O(log lenB).
func crc32cCombine(crcA, crcB uint32, lenB int64) uint32 {
	return crcMulMod(xPow8n(lenB), crcA) ^ crcB
}

// crcMulMod multiplies a and b as polynomials over GF(2) modulo the CRC32C
// polynomial, both bit-reflected.
func crcMulMod(a, b uint32) uint32 {
	var p uint32
	for m := uint32(1) << 31; m != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
		}
		if b&1 != 0 {
			b = b>>1 ^ castagnoliReversed
		} else {
			b >>= 1
		}
	}
	return p
}

// xPow8n returns x^(8n) modulo the CRC32C polynomial, bit-reflected, by
// repeated squaring.
func xPow8n(n int64) uint32 {
	p := uint32(1) << 31  // x^0
	sq := uint32(1) << 30 // x^1
	for range 3 {
		sq = crcMulMod(sq, sq) // x^8 after three squarings
	}
	for ; n > 0; n >>= 1 {
		if n&1 != 0 {
			p = crcMulMod(sq, p)
		}
		sq = crcMulMod(sq, sq)
	}
	return p
}

// parseCRC32C decodes a base64 CRC32C as [crc32cBase64] encodes it.
func parseCRC32C(s string) (uint32, bool) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(b), true
}
