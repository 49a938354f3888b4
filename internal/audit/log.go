package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ferry-dev/ferry/internal/fslock"
)

// Genesis is the prev of a log's first line: 64 zeros.
var Genesis = strings.Repeat("0", 64)

// MaxLineSize bounds one line; Verify rejects longer lines.
const MaxLineSize = 1 << 20

// Defaults for the zero values of [Options].
const (
	DefaultSyncEvery    = 1000
	DefaultSyncInterval = time.Second
)

// ErrClosed is returned by [Log.Record] after [Log.Close].
var ErrClosed = errors.New("audit: log closed")

// Options tune [OpenOptions]. The zero value is the default policy.
type Options struct {
	// SyncEvery fsyncs after this many records (default 1000).
	SyncEvery int
	// SyncInterval bounds how long a record may stay written but not
	// fsynced (default 1s).
	SyncInterval time.Duration
}

// Log appends hash-chained records to one file. It is safe for concurrent
// use.
//
// Durability: each [Log.Record] writes its whole line with one write(2) to
// a file opened O_APPEND, so once Record returns the line survives a crash
// of ferry. The file is fsynced every SyncEvery records, SyncInterval after
// the first record not yet synced, and by [Log.Sync] and [Log.Close]; a
// crash of the machine loses at most that much, and can leave the last line
// cut short, which [Verify] and [Open] report.
//
// A write error is sticky: every later Record returns it, since the chain's
// state on disk is then unknown.
type Log struct {
	opts Options
	path string

	mu       sync.Mutex
	f        *os.File
	seq      int64
	prev     string
	unsynced int
	timer    *time.Timer
	err      error
}

// Open opens path for appending with the default [Options], creating it
// (0600) when missing; see [OpenOptions].
func Open(path string) (*Log, error) { return OpenOptions(path, Options{}) }

// OpenOptions opens path for appending, creating it (0600) when missing.
// When the file has lines, the new ones continue its chain from the last
// line (a resumed job continues its log); Open checks that last line only
// (run [Verify] for the whole file) and refuses a file whose last line is
// cut short or not a record. It takes an exclusive lock on the file, so a
// second Log on the same file, in any process, fails.
func OpenOptions(path string, opts Options) (*Log, error) {
	if opts.SyncEvery <= 0 {
		opts.SyncEvery = DefaultSyncEvery
	}
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = DefaultSyncInterval
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	if err := fslock.TryLock(f); err != nil {
		f.Close()
		if errors.Is(err, fslock.ErrLocked) {
			return nil, fmt.Errorf("audit log %s: in use by another ferry process", path)
		}
		return nil, fmt.Errorf("audit log: %w", err)
	}
	seq, prev, err := tail(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit log %s: %w", path, err)
	}
	return &Log{opts: opts, path: path, f: f, seq: seq, prev: prev}, nil
}

// tail reads the last line of f and returns its seq and hash, or 0 and
// Genesis for an empty file.
func tail(f *os.File) (int64, string, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, "", err
	}
	size := fi.Size()
	if size == 0 {
		return 0, Genesis, nil
	}
	n := min(size, MaxLineSize+1)
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, size-n); err != nil && !errors.Is(err, io.EOF) {
		return 0, "", err
	}
	if buf[len(buf)-1] != '\n' {
		return 0, "", errors.New("the last line is cut short (no newline at the end of the file); run 'ferry audit verify' and keep this log as evidence, then start a new one")
	}
	last := buf[:len(buf)-1]
	i := bytes.LastIndexByte(last, '\n')
	if i < 0 && n < size {
		return 0, "", errors.New("the last line is longer than 1 MiB")
	}
	last = last[i+1:]
	var hdr struct {
		Prev *string `json:"prev"`
		Seq  *int64  `json:"seq"`
	}
	if err := json.Unmarshal(last, &hdr); err != nil || hdr.Prev == nil || hdr.Seq == nil || *hdr.Seq < 1 {
		return 0, "", errors.New("the last line is not an audit record; is this an audit log?")
	}
	return *hdr.Seq, hashLine(last), nil
}

func hashLine(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Record appends one record. It returns an error for a record with an
// invalid Outcome, after Close, or when writing failed (then and ever
// after).
func (l *Log) Record(r Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return ErrClosed
	}
	if l.err != nil {
		return l.err
	}
	ln, err := toLine(r, l.prev, l.seq+1, time.Now())
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ln); err != nil { // appends '\n'
		return fmt.Errorf("audit: record %q: %w", r.Key, err)
	}
	b := buf.Bytes()
	if len(b) > MaxLineSize {
		return fmt.Errorf("audit: record %q: line longer than %d bytes", r.Key, MaxLineSize)
	}
	if _, err := l.f.Write(b); err != nil {
		l.err = fmt.Errorf("audit log %s: write: %w", l.path, err)
		return l.err
	}
	l.seq++
	l.prev = hashLine(b[:len(b)-1])
	l.unsynced++
	switch {
	case l.unsynced >= l.opts.SyncEvery:
		l.syncLocked()
	case l.timer == nil:
		l.timer = time.AfterFunc(l.opts.SyncInterval, func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.timer = nil
			if l.f != nil && l.unsynced > 0 {
				l.syncLocked()
			}
		})
	}
	return l.err
}

func (l *Log) syncLocked() {
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	if l.err == nil {
		if err := l.f.Sync(); err != nil {
			l.err = fmt.Errorf("audit log %s: fsync: %w", l.path, err)
		}
	}
	l.unsynced = 0
}

// Sync fsyncs the records written so far.
func (l *Log) Sync() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return ErrClosed
	}
	l.syncLocked()
	return l.err
}

// Head returns the number of lines in the log and the SHA-256 of the last
// one (Genesis when there is none): record both in the job summary, so
// that a log cut short can be detected ([VerifyExpect]).
func (l *Log) Head() (lines int64, lastHash string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq, l.prev
}

// Path returns the log's file name.
func (l *Log) Path() string { return l.path }

// Close fsyncs and closes the file. It returns the first error of any
// write, sync or close; a second Close returns ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return ErrClosed
	}
	l.syncLocked()
	if err := l.f.Close(); err != nil && l.err == nil {
		l.err = fmt.Errorf("audit log %s: close: %w", l.path, err)
	}
	l.f = nil
	return l.err
}
