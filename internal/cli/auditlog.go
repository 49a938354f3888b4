package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/job"
)

// jobAudit writes a job's results to its audit log (docs/audit.md).
type jobAudit struct {
	log *audit.Log
}

var _ job.Auditor = (*jobAudit)(nil)

// openJobAudit opens (or continues) the audit log of a job.
func openJobAudit(path string) (*jobAudit, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit log %s: %w", path, err)
	}
	l, err := audit.Open(path)
	if err != nil {
		return nil, fmt.Errorf("audit log %s: %w", path, err)
	}
	return &jobAudit{log: l}, nil
}

func (a *jobAudit) Record(r job.Result) error {
	var out audit.Outcome
	switch r.Outcome {
	case job.OutcomeCopied:
		out = audit.Copied
	case job.OutcomeSkipped:
		out = audit.Skipped
	case job.OutcomeUnsafe:
		out = audit.SkippedUnsafe
	case job.OutcomeDeleted:
		out = audit.Deleted
	default:
		out = audit.Failed
	}
	size := r.Size
	if size == 0 {
		size = r.ListedSize
	}
	return a.log.Record(audit.Record{
		Time: r.Ended, Job: r.Job, Key: r.Key, Size: size,
		SrcETag: r.SrcETag, SrcVersion: r.SrcVersion, CRC32C: r.CRC32C,
		DstETag: r.DstETag, DstVersion: r.DstVersion, Outcome: out, Error: r.Error,
		Attempts: r.Attempts, Worker: r.Worker, Started: r.Started, Finished: r.Ended,
	})
}

func (a *jobAudit) Sync() error           { return a.log.Sync() }
func (a *jobAudit) Head() (int64, string) { return a.log.Head() }
func (a *jobAudit) Close() error          { return a.log.Close() }
