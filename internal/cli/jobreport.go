package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/ferry-dev/ferry/internal/job"
	"github.com/ferry-dev/ferry/internal/queue"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/transfer"
)

// jobSnap maps a job's counters to the progress line. bytesLive are bytes
// this process copied that the counters may not include yet.
func jobSnap(st job.State, bytesLive int64) progressSnap {
	k := st.Counters
	s := progressSnap{
		done: k.Finished, todo: k.Enqueued, bytes: max(k.CopiedBytes, bytesLive), totalBytes: k.EnqueuedSize,
		listed: k.Listed, planDone: st.ListingComplete(), skipped: k.Skipped, failed: k.Failed,
	}
	if st.Status != job.Running && st.Status != "" {
		s.status = string(st.Status)
	}
	if st.Message != "" {
		s.status = st.Message
	}
	return s
}

// jobSummary is the JSON summary of a job (the last line of stdout with
// --json): the copy summary's fields plus the job's identity.
type jobSummary struct {
	Job         string    `json:"job_id"`
	Status      string    `json:"status"`
	Command     string    `json:"command"`
	Source      string    `json:"source"`
	Destination string    `json:"destination"`
	Listed      int64     `json:"objects_listed"`
	BytesListed int64     `json:"bytes_listed"`
	Excluded    int64     `json:"objects_excluded"`
	Copied      int64     `json:"objects_copied"`
	Skipped     int64     `json:"objects_skipped"`
	Failed      int64     `json:"objects_failed"`
	Deleted     int64     `json:"objects_deleted"`
	DeleteFail  int64     `json:"deletes_failed"`
	UnsafeN     int64     `json:"objects_skipped_unsafe"`
	ProvLost    int64     `json:"objects_provenance_lost,omitempty"`
	Reconciled  int64     `json:"objects_reconciled"`
	Gaps        int64     `json:"reconcile_gaps"`
	BytesCopied int64     `json:"bytes_copied"`
	BytesSkip   int64     `json:"bytes_skipped"`
	TasksFailed int64     `json:"listing_tasks_failed"`
	Duration    float64   `json:"duration_seconds"`
	Error       string    `json:"error,omitempty"`
	Failures    []dlqLine `json:"failures,omitempty"`
	Unsafe      []dlqLine `json:"skipped_unsafe,omitempty"`
	Missing     []dlqLine `json:"reconcile_gap_keys,omitempty"`
	AuditHash   string    `json:"audit_last_hash,omitempty"`
	AuditLines  int64     `json:"audit_lines,omitempty"`
	// Pack mode (omitted for other jobs): objects written into bundles,
	// bundles written to staging and their (compressed) bytes, the
	// objects' bytes in them, the ratio of the two, the zstd level of the
	// latest bundle (0: stored uncompressed), bundles removed from staging.
	Packed         *int64   `json:"objects_packed,omitempty"`
	Bundles        *int64   `json:"bundles,omitempty"`
	BundleBytes    *int64   `json:"bundle_bytes,omitempty"`
	BundleData     *int64   `json:"bundle_data_bytes,omitempty"`
	PackRatio      *float64 `json:"pack_ratio,omitempty"`
	PackLevel      *int     `json:"pack_level,omitempty"`
	BundlesRemoved *int64   `json:"bundles_removed,omitempty"`
}

type dlqLine struct {
	Key   string `json:"key"`
	Error string `json:"error"`
}

func summarize(st job.State) jobSummary {
	k := st.Counters
	s := jobSummary{
		Job: st.Spec.ID, Status: string(st.Status), Command: st.Spec.Command,
		Source: sideString(st.Spec.Src), Destination: sideString(st.Spec.Dst),
		Listed: k.Listed, BytesListed: k.ListedBytes, Excluded: k.Excluded,
		Copied: k.Copied, Skipped: k.Skipped, Failed: k.Failed, Deleted: k.Deleted, DeleteFail: k.DeleteFailed,
		UnsafeN: k.Unsafe, ProvLost: k.ProvenanceLost, Reconciled: k.Reconciled, Gaps: k.ReconcileGaps, TasksFailed: k.TasksFailed,
		BytesCopied: k.CopiedBytes, BytesSkip: k.SkippedBytes, Duration: st.Duration,
		Error: st.Error, AuditHash: st.AuditHash, AuditLines: st.AuditLines,
	}
	for _, g := range st.Gaps {
		s.Missing = append(s.Missing, dlqLine{Key: g.Key, Error: g.Error})
	}
	if st.Spec.Pack != nil {
		ratio := k.PackRatio()
		s.Packed, s.Bundles, s.BundleBytes, s.BundleData = &k.ObjectsPacked, &k.Bundles, &k.BundleBytes, &k.BundleDataBytes
		s.PackRatio, s.PackLevel, s.BundlesRemoved = &ratio, &k.PackLevel, &k.BundlesRemoved
	}
	return s
}

func printJobJSON(stdio Stdio, st job.State) {
	b, _ := json.Marshal(summarize(st))
	fmt.Fprintf(stdio.Out, "%s\n", b)
}

// reportJob prints a finished job's summary (failures named from the
// dead-letter queue) and returns the exit status it implies.
func reportJob(ctx context.Context, stdio Stdio, conn *queue.Conn, st job.State, jsonOut bool) error {
	s := summarize(st)
	for _, u := range st.Unsafe {
		s.Unsafe = append(s.Unsafe, dlqLine{Key: u.Key, Error: u.Error})
		fmt.Fprintf(stdio.Err, "skipped-unsafe: %q: %s\n", u.Key, u.Error)
	}
	for _, g := range s.Missing {
		fmt.Fprintf(stdio.Err, "missing at the destination: %q: %s\n", g.Key, g.Error)
	}
	if n := st.Counters.ProvenanceLost; n > 0 {
		// Once per job, however many objects.
		fmt.Fprintf(stdio.Err, "note: the destination kept no user metadata on %d copied object(s), %q the first: it drops metadata on such objects (directory markers), so ferry's provenance is not stored there; empty objects are compared by size, so they are not copied again\n", n, st.ProvenanceLost)
	}
	if s.Failed > 0 || s.DeleteFail > 0 || s.TasksFailed > 0 {
		entries, _ := job.ReadDLQ(ctx, conn, st.Spec.ID, 1000)
		for _, e := range entries {
			key := ""
			switch {
			case e.Obj != nil:
				key = e.Obj.K
			case e.Task != nil:
				key = "listing of " + e.Task.String()
			}
			s.Failures = append(s.Failures, dlqLine{Key: key, Error: e.Error})
			fmt.Fprintf(stdio.Err, "failed: %q: %s\n", key, e.Error)
		}
	}
	if jsonOut {
		b, err := json.Marshal(s)
		if err != nil {
			return fmt.Errorf("summary: %w", err)
		}
		fmt.Fprintf(stdio.Out, "%s\n", b)
	} else {
		printJobSummary(stdio.Out, s)
	}
	switch {
	case st.Status == job.Failed:
		return &exitError{code: ExitFailed, err: fmt.Errorf("job %s: %s", st.Spec.ID, st.Error)}
	case s.Failed > 0 || s.DeleteFail > 0 || s.UnsafeN > 0:
		return errFailed
	}
	return nil
}

func printJobSummary(w io.Writer, s jobSummary) {
	fmt.Fprintf(w, "job %s %s: ", s.Job, s.Status)
	printCounts(w, "", counts{copied: s.Copied, bytesCopied: s.BytesCopied, skipped: s.Skipped, bytesSkipped: s.BytesSkip,
		deleted: s.Deleted, failed: s.Failed + s.DeleteFail, unsafe: s.UnsafeN, reconciled: s.Reconciled, duration: s.Duration})
	fmt.Fprintln(w)
	if s.Packed != nil {
		fmt.Fprintf(w, "packed: %d objects in %d bundles, %s of data in %s (ratio %.2f, highest zstd level %d)\n",
			*s.Packed, *s.Bundles, humanBytes(*s.BundleData), humanBytes(*s.BundleBytes), *s.PackRatio, *s.PackLevel)
	}
	if s.Error != "" {
		fmt.Fprintf(w, "stopped: %s\n", s.Error)
	}
}

// abortUploadFunc aborts orphan multipart uploads recorded for a job.
func abortUploadFunc(ctx context.Context, spec job.Spec) func(context.Context, string, []byte) error {
	var once sync.Once
	var dst store.Store
	var openErr error
	return func(actx context.Context, _ string, state []byte) error {
		var st transfer.UploadState
		if err := json.Unmarshal(state, &st); err != nil {
			return fmt.Errorf("decode upload state: %w", err)
		}
		once.Do(func() { dst, openErr = openSpecDst(ctx, spec) })
		if openErr != nil {
			return openErr
		}
		mp, ok := dst.(store.Multipart)
		if !ok {
			return nil
		}
		return mp.AbortMultipart(actx, st.DstKey, st.UploadID)
	}
}
