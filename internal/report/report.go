package report

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ferry-dev/ferry/internal/audit"
)

// Format of a report.
type Format string

// Formats.
const (
	JSON Format = "json"
	CSV  Format = "csv"
	HTML Format = "html"
)

// ParseFormat checks a --format value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case JSON, CSV, HTML:
		return f, nil
	}
	return "", fmt.Errorf("report format %q: want json, csv or html", s)
}

// Rows selects the per-object rows of a report.
type Rows string

// Row selections.
const (
	AllRows     Rows = "all"      // every object
	ProblemRows Rows = "problems" // failed and unsafe objects only
	NoRows      Rows = "none"     // totals only
	defaultRows      = AllRows
)

// ParseRows checks an --objects value.
func ParseRows(s string) (Rows, error) {
	switch r := Rows(s); r {
	case AllRows, ProblemRows, NoRows:
		return r, nil
	}
	return "", fmt.Errorf("--objects %q: want all, problems or none", s)
}

// Outcomes as a report names them (the audit log's skipped-unsafe is
// "unsafe").
const (
	Copied  = "copied"
	Skipped = "skipped"
	Failed  = "failed"
	Deleted = "deleted"
	Unsafe  = "unsafe"
)

// outcomes in the order reports list them.
var outcomes = []string{Copied, Skipped, Failed, Deleted, Unsafe}

func outcomeOf(o string) string {
	if o == string(audit.SkippedUnsafe) {
		return Unsafe
	}
	return o
}

// Job is what a report says about the job besides its audit log: from the
// job's state in the queue.
type Job struct {
	ID          string
	Command     string
	Source      string
	Destination string
	Status      string
	Error       string
	Created     time.Time
	Finished    *time.Time
	// Duration is how long the job ran, all runs together (seconds).
	Duration float64
	// AuditLines and AuditHash are the log's head the job recorded when
	// it finished: the log must have line AuditLines, hashing to AuditHash.
	AuditLines int64
	AuditHash  string
	// Summary is the job's own tally (its counters), compared with the
	// log's; nil when unknown.
	Summary *Summary
}

// Summary is a job's tally of its objects (its counters).
type Summary struct {
	Listed, Copied, Skipped, Failed, Deleted, DeleteFailed, Unsafe int64
	BytesListed, BytesCopied, BytesSkipped                         int64
}

// Options tune [Write]. The zero value writes JSON with every row.
type Options struct {
	Format Format
	Rows   Rows
	// AllowBroken writes a report of a log whose chain is broken, or that
	// does not end where the job said, flagged at the top, instead of
	// returning [ErrBroken].
	AllowBroken bool
	// Now is the report's generation time (default time.Now).
	Now func() time.Time
}

// ErrBroken: the audit log's hash chain is broken, or the log does not end
// where the job recorded: it was altered or cut.
var ErrBroken = errors.New("audit log failed verification")

// Write writes job's report from its audit log, which open opens (it is
// read twice). It returns [ErrBroken] (wrapped, naming the line) before
// writing anything when the log fails verification, unless AllowBroken.
// ctx is checked as lines are read.
func Write(ctx context.Context, w io.Writer, open func() (io.ReadCloser, error), j Job, o Options) error {
	if o.Format == "" {
		o.Format = JSON
	}
	if o.Rows == "" {
		o.Rows = defaultRows
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	var rw rowWriter
	switch o.Format {
	case JSON:
		rw = &jsonWriter{}
	case CSV:
		rw = &csvWriter{}
	case HTML:
		rw = &htmlWriter{}
	default:
		return fmt.Errorf("report: unknown format %q", o.Format)
	}
	sum, err := scan(ctx, open, j)
	if err != nil {
		return err
	}
	if sum.integrity.Problem != "" && !o.AllowBroken {
		return fmt.Errorf("%w: %s", ErrBroken, sum.integrity.Problem)
	}
	sum.generated = o.Now().UTC()
	sum.job = j
	sum.rows = o.Rows
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := rw.begin(bw, sum); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if o.Rows != NoRows {
		if err := writeRows(ctx, open, j, sum, o.Rows, func(r Row) error { return rw.row(r) }); err != nil {
			return err
		}
	}
	if err := rw.end(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// Row is one object of a report.
type Row struct {
	Line       int64  `json:"line"`
	Time       string `json:"time"`
	Key        string `json:"key"`
	KeyBase64  string `json:"key_base64,omitempty"`
	Outcome    string `json:"outcome"`
	Size       int64  `json:"size"`
	SrcETag    string `json:"src_etag,omitempty"`
	SrcVersion string `json:"src_version,omitempty"`
	CRC32C     string `json:"crc32c,omitempty"`
	MD5        string `json:"md5,omitempty"`
	DstETag    string `json:"dst_etag,omitempty"`
	DstVersion string `json:"dst_version,omitempty"`
	Attempts   int    `json:"attempts"`
	Worker     string `json:"worker,omitempty"`
	Started    string `json:"started,omitempty"`
	Finished   string `json:"finished,omitempty"`
	// Reason says why an object was skipped, failed or deleted.
	Reason string `json:"reason,omitempty"`
}

// Reasons given for outcomes the log records without an error text.
const (
	ReasonSkipped = "already identical at the destination"
	ReasonDeleted = "not at the source (sync --delete)"
)

func rowOf(e audit.Entry) Row {
	r := Row{
		Line: e.Seq, Time: e.Time, Key: e.Key, KeyBase64: e.KeyBase64, Outcome: outcomeOf(e.Outcome), Size: e.Size,
		SrcETag: e.SrcETag, SrcVersion: e.SrcVersion, CRC32C: e.CRC32C, MD5: e.MD5,
		DstETag: e.DstETag, DstVersion: e.DstVersion, Attempts: e.Attempts, Worker: e.Worker,
		Started: e.Started, Finished: e.Finished, Reason: e.Error,
	}
	if r.Reason == "" {
		switch r.Outcome {
		case Skipped:
			r.Reason = ReasonSkipped
		case Deleted:
			r.Reason = ReasonDeleted
		}
	}
	return r
}

// Count is a number of objects and their bytes.
type Count struct {
	Objects int64 `json:"objects"`
	Bytes   int64 `json:"bytes"`
}

// Integrity is what checking the log against its chain and the job's
// recorded head found.
type Integrity struct {
	// Lines in the log, and the SHA-256 of the last good one.
	Lines    int64  `json:"lines"`
	LastHash string `json:"last_hash"`
	// ExpectedLines and ExpectedHash are the head the job recorded.
	ExpectedLines int64  `json:"expected_lines,omitempty"`
	ExpectedHash  string `json:"expected_hash,omitempty"`
	// Verified: the chain holds from line 1 to the end, and line
	// ExpectedLines hashes to ExpectedHash (when the job recorded one).
	Verified bool `json:"verified"`
	// Problem says what failed, naming the line; "" when Verified.
	Problem string `json:"problem,omitempty"`
	// OtherJobs counts lines of other jobs in the same file (a shared
	// --audit-log); they are chained, not reported.
	OtherJobs int64 `json:"other_jobs_lines,omitempty"`
}

// summary is what the first pass over the log found.
type summary struct {
	job       Job
	rows      Rows
	generated time.Time
	totals    map[string]*Count
	objects   int64 // this job's lines
	first     time.Time
	last      time.Time
	chart     *chart
	integrity Integrity
}

// span is the job's running time: the recorded duration, or the time
// between the first and last outcome.
func (s *summary) span() float64 {
	if s.job.Duration > 0 {
		return s.job.Duration
	}
	if !s.first.IsZero() && s.last.After(s.first) {
		return s.last.Sub(s.first).Seconds()
	}
	return 0
}

const ctxEvery = 1 << 14

// scan reads the log once: checks its chain and the job's recorded head,
// adds up the totals and fills the chart.
func scan(ctx context.Context, open func() (io.ReadCloser, error), j Job) (*summary, error) {
	rc, err := open()
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	defer rc.Close()
	s := &summary{totals: map[string]*Count{}, chart: newChart(j.Created)}
	for _, o := range outcomes {
		s.totals[o] = &Count{}
	}
	in := &s.integrity
	in.LastHash, in.ExpectedLines, in.ExpectedHash = audit.Genesis, j.AuditLines, j.AuditHash
	var atExpected string
	for e, err := range audit.Read(rc) {
		if err != nil {
			var ve *audit.VerifyError
			if !errors.As(err, &ve) {
				return nil, err
			}
			in.Problem = "line " + fmt.Sprint(ve.Line) + ": " + ve.Reason
			break
		}
		if e.Seq%ctxEvery == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		in.Lines, in.LastHash = e.Seq, e.Hash
		if e.Seq == j.AuditLines {
			atExpected = e.Hash
		}
		if j.ID != "" && e.Job != j.ID {
			in.OtherJobs++
			continue
		}
		s.add(e)
	}
	if in.Problem == "" && j.AuditHash != "" {
		switch {
		case in.Lines < j.AuditLines:
			in.Problem = fmt.Sprintf("the log has %d lines, but the job recorded %d: lines were removed from the end", in.Lines, j.AuditLines)
		case atExpected != j.AuditHash:
			in.Problem = fmt.Sprintf("line %d's SHA-256 is %s, not %s as the job recorded: the line was edited, or the log replaced", j.AuditLines, atExpected, j.AuditHash)
		}
	}
	in.Verified = in.Problem == ""
	return s, nil
}

func (s *summary) add(e audit.Entry) {
	o := outcomeOf(e.Outcome)
	c := s.totals[o]
	if c == nil {
		c = &Count{}
		s.totals[o] = c
	}
	c.Objects++
	c.Bytes += e.Size
	s.objects++
	if t, err := time.Parse(time.RFC3339Nano, e.Started); err == nil && (s.first.IsZero() || t.Before(s.first)) {
		s.first = t
	}
	end := e.Finished
	if end == "" {
		end = e.Time
	}
	t, err := time.Parse(time.RFC3339Nano, end)
	if err != nil {
		return
	}
	if s.first.IsZero() || t.Before(s.first) {
		s.first = t
	}
	if t.After(s.last) {
		s.last = t
	}
	var b int64
	if o == Copied {
		b = e.Size
	}
	s.chart.add(t, 1, b)
}

// writeRows reads the log again and hands each of the job's rows that
// sel selects to fn. The log must still chain to the same line it did in
// the first pass (lines appended since are left out).
func writeRows(ctx context.Context, open func() (io.ReadCloser, error), j Job, s *summary, sel Rows, fn func(Row) error) error {
	rc, err := open()
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	defer rc.Close()
	var hash string
	var lines int64
	for e, err := range audit.Read(rc) {
		if e.Seq > s.integrity.Lines || err != nil {
			break // the first pass found the end, or the break
		}
		if e.Seq%ctxEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		lines, hash = e.Seq, e.Hash
		if j.ID != "" && e.Job != j.ID {
			continue
		}
		r := rowOf(e)
		if sel == ProblemRows && r.Outcome != Failed && r.Outcome != Unsafe {
			continue
		}
		if err := fn(r); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	if lines != s.integrity.Lines || hash != s.integrity.LastHash {
		return fmt.Errorf("audit log changed while the report was written (line %d): %w", lines, ErrBroken)
	}
	return nil
}

// rowWriter is one output format.
type rowWriter interface {
	begin(w *bufio.Writer, s *summary) error
	row(r Row) error
	end() error
}

// consistency compares the log's totals with the job's own tally and
// names every difference.
func (s *summary) consistency() []string {
	k := s.job.Summary
	if k == nil {
		return nil
	}
	var out []string
	cmp := func(what string, log, job int64) {
		if log != job {
			out = append(out, fmt.Sprintf("%s: %d in the audit log, %d in the job's summary", what, log, job))
		}
	}
	cmp("objects copied", s.totals[Copied].Objects, k.Copied)
	cmp("bytes copied", s.totals[Copied].Bytes, k.BytesCopied)
	cmp("objects skipped", s.totals[Skipped].Objects, k.Skipped)
	cmp("objects failed (copies and deletes)", s.totals[Failed].Objects, k.Failed+k.DeleteFailed)
	cmp("objects deleted", s.totals[Deleted].Objects, k.Deleted)
	cmp("objects unsafe", s.totals[Unsafe].Objects, k.Unsafe)
	return out
}
