package audit

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
)

// Entry is one line of a log as read back: its place in the chain (Seq,
// Hash) and the record's fields, in their wire form (docs/audit.md).
// Times are RFC 3339 strings, as written.
type Entry struct {
	Prev       string `json:"prev"`
	Seq        int64  `json:"seq"`
	Time       string `json:"time"`
	Job        string `json:"job"`
	Key        string `json:"key"`
	KeyBase64  string `json:"key_base64,omitempty"`
	Size       int64  `json:"size"`
	SrcETag    string `json:"src_etag,omitempty"`
	SrcVersion string `json:"src_version,omitempty"`
	CRC32C     string `json:"crc32c,omitempty"`
	MD5        string `json:"md5,omitempty"`
	DstETag    string `json:"dst_etag,omitempty"`
	DstVersion string `json:"dst_version,omitempty"`
	Outcome    string `json:"outcome"`
	Error      string `json:"error,omitempty"`
	Attempts   int    `json:"attempts"`
	Worker     string `json:"worker,omitempty"`
	Started    string `json:"started,omitempty"`
	Finished   string `json:"finished,omitempty"`

	// Hash is the SHA-256 of the line (what the next line's prev must be).
	Hash string `json:"-"`
}

// Read streams the entries of a log, checking the chain as it reads: each
// line is a JSON object whose seq is its line number and whose prev is the
// SHA-256 of the line before (Genesis for the first). It holds one line at
// a time. The first line that breaks the chain ends the sequence with a
// [*VerifyError] as the last pair (read errors likewise, wrapped); every
// entry yielded before it is chained to the start of the file. Use
// [Verify] for a finer diagnosis of which of two lines was edited.
func Read(r io.Reader) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		br := bufio.NewReaderSize(r, 64<<10)
		prev := Genesis
		for cur := int64(1); ; cur++ {
			b, err := readLine(br)
			if errors.Is(err, io.EOF) && len(b) == 0 {
				return
			}
			bad := func(format string, a ...any) {
				yield(Entry{}, &VerifyError{Line: cur, Reason: fmt.Sprintf(format, a...)})
			}
			switch {
			case errors.Is(err, errLong):
				bad("longer than %d bytes", MaxLineSize)
				return
			case errors.Is(err, io.EOF):
				bad("cut short: no newline at the end of the file (the log was truncated or a write was interrupted)")
				return
			case err != nil:
				yield(Entry{}, fmt.Errorf("audit log: read line %d: %w", cur, err))
				return
			}
			if len(b) == 0 {
				bad("empty line")
				return
			}
			var e Entry
			if err := json.Unmarshal(b, &e); err != nil {
				bad("not an audit record: %v", err)
				return
			}
			switch {
			case e.Seq != cur:
				bad("seq is %d: lines were removed, inserted or reordered before this one", e.Seq)
				return
			case e.Prev != prev && cur == 1:
				bad("prev is not the genesis value (64 zeros): lines were removed from the start, or this is not the start of a log")
				return
			case e.Prev != prev:
				bad("edited or replaced: its prev %s is not the SHA-256 of line %d (%s); run 'ferry audit verify' for details", short(e.Prev), cur-1, prev)
				return
			}
			e.Hash = hashLine(b)
			prev = e.Hash
			if !yield(e, nil) {
				return
			}
		}
	}
}
