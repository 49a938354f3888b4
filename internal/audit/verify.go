package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// VerifyError names the first line of a log that is not what the chain
// says it should be.
type VerifyError struct {
	Line   int64  // 1-based
	Reason string // what is wrong, one line
}

func (e *VerifyError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }

// Verify reads a whole log and checks that every line is a JSON object
// whose prev is the SHA-256 of the line before (Genesis for the first), and
// whose seq is its line number. It returns the number of lines and the
// hash of the last line (Genesis for an empty log). When the chain is
// broken, err is a *VerifyError naming the first bad line, and lines and
// lastHash describe the good lines before it. Other errors are read errors.
//
// An edited line N is found because line N+1 no longer matches it; Verify
// looks one line further to tell "line N was edited" from "line N+1's prev
// was edited". Only an edit of the last line, or lines removed from the
// end, escape Verify: use [VerifyExpect] with the hash the job summary
// recorded.
func Verify(r io.Reader) (lines int64, lastHash string, err error) {
	return VerifyExpect(r, "")
}

// VerifyExpect is [Verify] that also requires the last line's hash to be
// wantLast (when not ""), as [Log.Head] reported at the end of the job.
func VerifyExpect(r io.Reader, wantLast string) (lines int64, lastHash string, err error) {
	v := verifier{br: bufio.NewReaderSize(r, 64<<10)}
	hashes := []string{Genesis} // hashes[i] is the hash of line i; keep two
	var n int64
	for {
		cur := n + 1
		p, err := v.next(cur)
		if err != nil {
			return n, hashes[len(hashes)-1], err
		}
		if p == nil {
			break
		}
		prev := hashes[len(hashes)-1]
		if p.prev != prev {
			if cur == 1 {
				return 0, Genesis, &VerifyError{Line: 1, Reason: "prev is not the genesis value (64 zeros): lines were removed from the start, or this is not the start of a log"}
			}
			// Line cur is in its place (seq matched) but chained to a
			// different line cur-1. If line cur+1 is chained to line cur
			// as it is, line cur-1 changed; else line cur did.
			q, qerr := v.next(cur + 1)
			if qerr != nil || q == nil || q.prev != p.hash {
				return n, prev, &VerifyError{Line: cur, Reason: fmt.Sprintf("edited or replaced: its prev %s is not the SHA-256 of line %d (%s)", short(p.prev), cur-1, prev)}
			}
			return n - 1, hashes[len(hashes)-2], &VerifyError{Line: n, Reason: fmt.Sprintf("edited: its SHA-256 is %s, but line %d was chained to %s", prev, cur, short(p.prev))}
		}
		n = cur
		hashes = append(hashes[len(hashes)-1:], p.hash)
	}
	last := hashes[len(hashes)-1]
	if wantLast != "" && last != wantLast {
		if n == 0 {
			return 0, last, &VerifyError{Line: 1, Reason: fmt.Sprintf("missing: the log is empty, but its last hash should be %s", short(wantLast))}
		}
		return n, last, &VerifyError{Line: n, Reason: fmt.Sprintf("the last line's SHA-256 is %s, not the expected %s: the last line was edited, or lines after it were removed", last, short(wantLast))}
	}
	return n, last, nil
}

// short quotes an untrusted value for a message, at most 80 bytes.
func short(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return fmt.Sprintf("%q", s)
}

type parsed struct {
	prev, hash string
}

type verifier struct {
	br *bufio.Reader
}

// next reads line number cur: nil, nil at the end of the file; a
// *VerifyError for a line that is not a record in its place.
func (v *verifier) next(cur int64) (*parsed, error) {
	b, err := readLine(v.br)
	if errors.Is(err, io.EOF) && len(b) == 0 {
		return nil, nil
	}
	bad := func(format string, a ...any) (*parsed, error) {
		return nil, &VerifyError{Line: cur, Reason: fmt.Sprintf(format, a...)}
	}
	switch {
	case errors.Is(err, errLong):
		return bad("longer than %d bytes", MaxLineSize)
	case errors.Is(err, io.EOF):
		return bad("cut short: no newline at the end of the file (the log was truncated or a write was interrupted)")
	case err != nil:
		return nil, fmt.Errorf("audit log: read line %d: %w", cur, err)
	}
	if len(b) == 0 {
		return bad("empty line")
	}
	if !json.Valid(b) {
		return bad("not valid JSON")
	}
	var hdr struct {
		Prev *string          `json:"prev"`
		Seq  *json.RawMessage `json:"seq"`
	}
	if err := json.Unmarshal(b, &hdr); err != nil {
		return bad("not a JSON object with a string \"prev\"")
	}
	var seq int64
	if hdr.Prev == nil {
		return bad("no \"prev\" field")
	}
	if hdr.Seq == nil || json.Unmarshal(*hdr.Seq, &seq) != nil {
		return bad("no integer \"seq\" field")
	}
	if seq != cur {
		return bad("seq is %d: lines were removed, inserted or reordered before this one", seq)
	}
	return &parsed{prev: *hdr.Prev, hash: hashLine(b)}, nil
}

var errLong = errors.New("line too long")

// readLine returns the next line without its '\n'; io.EOF with a non-empty
// line means the file ended without one.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		b, err := br.ReadSlice('\n')
		if len(line)+len(b) > MaxLineSize+1 {
			return nil, errLong
		}
		line = append(line, b...)
		switch {
		case err == nil:
			return bytes.TrimSuffix(line, []byte("\n")), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		}
		return line, err
	}
}
