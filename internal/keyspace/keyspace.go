// Package keyspace does arithmetic on object keys as points of the key space,
// ordered byte by byte (S3's UTF-8 binary order).
package keyspace

import (
	"unicode/utf8"
)

// top is greater than every valid UTF-8 string: no UTF-8 sequence starts
// with 0xf5 or above.
const top = "\xf5"

// Mid returns a key strictly between after and end that splits the range
// roughly in half, reading keys as base-256 fractions (the midpoint of the
// byte strings, shortened where the precision is not needed). end "" means
// unbounded: the top of the UTF-8 key space. ok is false when no string lies
// between them (end is after+"\x00") or end <= after.
//
// When after and end are valid UTF-8 so is mid: a byte midpoint falling
// inside a multi-byte sequence is rounded to a whole rune, or mid is
// after+"\x00" when nothing else fits. (MinIO accepts any bytes as
// StartAfter, but S3 keys are UTF-8 and other servers may reject the rest.)
func Mid(after, end string) (mid string, ok bool) {
	utf := utf8.ValidString(after) && utf8.ValidString(end)
	if end == "" {
		end = top
		if after >= top {
			// Not UTF-8: the midpoint with a string of 0xff bytes longer
			// than after, which is greater.
			b := make([]byte, len(after)+1)
			for i := range b {
				b[i] = 0xff
			}
			end = string(b)
		}
	}
	if end <= after || end == after+"\x00" {
		return "", false
	}
	m := midpoint(after, end)
	if !utf || utf8.ValidString(m) {
		return m, true
	}
	return roundUTF8(after, end, m), true
}

// midpoint returns the shortest string at the byte midpoint of after < end
// (strings read as base-256 fractions), strictly between them.
func midpoint(after, end string) string {
	n := 0 // common prefix
	for n < len(after) && n < len(end) && after[n] == end[n] {
		n++
	}
	// Digits after the common prefix, one more than the longer string so
	// the halved difference is at least 128 in the last place and the
	// midpoint is strictly inside.
	l := max(len(after), len(end)) - n + 1
	sum := make([]int, l+1) // sum[0] is the carry
	for i := range l {
		if n+i < len(after) {
			sum[i+1] += int(after[n+i])
		}
		if n+i < len(end) {
			sum[i+1] += int(end[n+i])
		}
	}
	for i := l; i > 0; i-- {
		sum[i-1] += sum[i] >> 8
		sum[i] &= 0xff
	}
	// Halve: sum[0] is 0 or 1, the halved value has l digits.
	b := make([]byte, 0, n+l)
	b = append(b, after[:n]...)
	rem := sum[0]
	for i := 1; i <= l; i++ {
		v := rem<<8 | sum[i]
		b = append(b, byte(v>>1))
		rem = v & 1
	}
	// Trailing zero bytes change the string but not its position: a
	// shorter string with the same fraction sorts before the longer, so
	// drop them only while it stays after after.
	for len(b) > n && b[len(b)-1] == 0 && string(b[:len(b)-1]) > after {
		b = b[:len(b)-1]
	}
	// Cut the midpoint short, to 4 bytes beyond the common prefix or just
	// past where it departs from after, whichever is longer: a prefix of b
	// is below end, and above after once it includes the first byte that
	// differs.
	j := n
	for j < len(after) && j < len(b) && after[j] == b[j] {
		j++
	}
	if i := max(n+4, j+1); i < len(b) {
		b = b[:i]
	}
	return string(b)
}

// roundUTF8 returns a valid UTF-8 string strictly between after and end
// (both valid) near m, which is not valid.
func roundUTF8(after, end, m string) string {
	i := 0 // the first invalid byte
	for i < len(m) {
		r, size := utf8.DecodeRuneInString(m[i:])
		if r == utf8.RuneError && size <= 1 {
			break
		}
		i += size
	}
	head, tail := m[:i], m[i:]
	var cands []string
	if r, ok := ceilRune(tail); ok {
		cands = append(cands, head+string(r))
	}
	if r, ok := floorRune(tail); ok {
		// The greatest rune below, followed by the greatest rune: as close
		// below m as a short string gets.
		cands = append(cands, head+string(r)+string(utf8.MaxRune), head+string(r))
	}
	cands = append(cands, head, after+"\x00")
	for _, c := range cands {
		if c > after && c < end && utf8.ValidString(c) {
			return c
		}
	}
	return after + "\x00" // unreachable: after+"\x00" < end, both valid
}

// ceilRune returns the least rune whose encoding sorts after s, which starts
// with an invalid sequence; ok is false when there is none.
func ceilRune(s string) (rune, bool) {
	lo, hi := rune(0), rune(utf8.MaxRune)+1 // first rune with enc > s is in [lo, hi]
	for lo < hi {
		mid := lo + (hi-lo)/2
		if enc(mid) > s {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	if lo > utf8.MaxRune {
		return 0, false
	}
	return valid(lo, +1), true
}

// floorRune returns the greatest rune whose encoding sorts before s, which
// starts with an invalid sequence; ok is false when there is none.
func floorRune(s string) (rune, bool) {
	r, ok := ceilRune(s)
	if !ok {
		return utf8.MaxRune, true
	}
	if r == 0 {
		return 0, false
	}
	return valid(r-1, -1), true
}

// enc encodes r, surrogates as the nearest rune above (utf8.EncodeRune
// would give U+FFFD), keeping the order of encodings monotone.
func enc(r rune) string {
	return string(valid(r, +1))
}

// valid steps r out of the surrogate range in direction dir.
func valid(r rune, dir int) rune {
	if r >= 0xd800 && r <= 0xdfff {
		if dir > 0 {
			return 0xe000
		}
		return 0xd7ff
	}
	return r
}
