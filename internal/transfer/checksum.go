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
