package report

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html"
	"strconv"
	"time"
)

// Header is the part of a JSON report before its rows.
type Header struct {
	Report    string            `json:"report"` // "ferry job report"
	Version   int               `json:"version"`
	Generated time.Time         `json:"generated"`
	Job       JobInfo           `json:"job"`
	Timing    Timing            `json:"timing"`
	Totals    map[string]*Count `json:"totals"`
	// JobSummary is the job's own tally; Differences name where it and
	// the log's totals disagree.
	JobSummary  *Summary  `json:"job_summary,omitempty"`
	Differences []string  `json:"differences,omitempty"`
	Integrity   Integrity `json:"integrity"`
	Throughput  Chart     `json:"throughput"`
	Rows        Rows      `json:"rows"`
}

// JobInfo identifies the job in a JSON report.
type JobInfo struct {
	ID          string     `json:"id"`
	Command     string     `json:"command,omitempty"`
	Source      string     `json:"source,omitempty"`
	Destination string     `json:"destination,omitempty"`
	Status      string     `json:"status,omitempty"`
	Error       string     `json:"error,omitempty"`
	Created     *time.Time `json:"created,omitempty"`
	Finished    *time.Time `json:"finished,omitempty"`
}

// Timing is when the job's objects were worked on and how fast.
type Timing struct {
	FirstStarted   *time.Time `json:"first_started,omitempty"`
	LastFinished   *time.Time `json:"last_finished,omitempty"`
	Duration       float64    `json:"duration_seconds"`
	ObjectsPerSec  float64    `json:"objects_per_second"`
	BytesPerSecond float64    `json:"bytes_copied_per_second"`
}

// Chart is the throughput chart's data.
type Chart struct {
	Start         *time.Time `json:"start,omitempty"`
	BucketSeconds float64    `json:"bucket_seconds"`
	Buckets       []Bucket   `json:"buckets"`
}

func tp(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func (s *summary) header() Header {
	j := s.job
	tot := map[string]*Count{"all": {Objects: s.objects}}
	for o, c := range s.totals {
		tot[o] = c
		tot["all"].Bytes += c.Bytes
	}
	h := Header{
		Report: "ferry job report", Version: 1, Generated: s.generated,
		Job: JobInfo{ID: j.ID, Command: j.Command, Source: j.Source, Destination: j.Destination, Status: j.Status, Error: j.Error,
			Created: tp(j.Created), Finished: j.Finished},
		Timing:      Timing{FirstStarted: tp(s.first), LastFinished: tp(s.last), Duration: s.span()},
		Totals:      tot,
		JobSummary:  j.Summary,
		Differences: s.consistency(),
		Integrity:   s.integrity,
		Throughput:  Chart{Start: tp(s.chart.start), BucketSeconds: s.chart.width.Seconds(), Buckets: s.chart.buckets()},
		Rows:        s.rows,
	}
	if d := h.Timing.Duration; d > 0 {
		h.Timing.ObjectsPerSec = float64(s.objects) / d
		h.Timing.BytesPerSecond = float64(s.totals[Copied].Bytes) / d
	}
	return h
}

// jsonWriter writes one JSON object: the header's fields, then "objects",
// an array written row by row.
type jsonWriter struct {
	w     *bufio.Writer
	enc   *json.Encoder
	first bool
}

func (j *jsonWriter) begin(w *bufio.Writer, s *summary) error {
	j.w, j.first = w, true
	b, err := json.Marshal(s.header())
	if err != nil {
		return err
	}
	// The header's object, left open for "objects".
	w.Write(b[:len(b)-1])
	w.WriteString(`,"objects":[`)
	j.enc = json.NewEncoder(w)
	j.enc.SetEscapeHTML(false)
	return nil
}

func (j *jsonWriter) row(r Row) error {
	if !j.first {
		j.w.WriteByte(',')
	}
	j.first = false
	return j.enc.Encode(r) // its newline keeps rows one per line
}

func (j *jsonWriter) end() error {
	_, err := j.w.WriteString("]}\n")
	return err
}

// csvColumns are the CSV report's columns, one row per object.
var csvColumns = []string{"line", "time", "key", "key_base64", "outcome", "size", "src_etag", "src_version", "crc32c", "md5",
	"dst_etag", "dst_version", "attempts", "worker", "started", "finished", "reason"}

type csvWriter struct {
	w *csv.Writer
}

func (c *csvWriter) begin(w *bufio.Writer, _ *summary) error {
	c.w = csv.NewWriter(w)
	return c.w.Write(csvColumns)
}

func (c *csvWriter) row(r Row) error {
	return c.w.Write([]string{strconv.FormatInt(r.Line, 10), r.Time, r.Key, r.KeyBase64, r.Outcome, strconv.FormatInt(r.Size, 10),
		r.SrcETag, r.SrcVersion, r.CRC32C, r.MD5, r.DstETag, r.DstVersion, strconv.Itoa(r.Attempts), r.Worker, r.Started, r.Finished, r.Reason})
}

func (c *csvWriter) end() error {
	c.w.Flush()
	return c.w.Error()
}

// htmlWriter writes one self-contained page: inline CSS, an inline SVG
// chart, no script, nothing fetched.
type htmlWriter struct {
	w     *bufio.Writer
	table bool // the objects table is open
}

const htmlStyle = `body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em;color:#222;max-width:1200px}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f0f0f0}td.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{background:#e6f4ea;border:1px solid #34a853;padding:.6em}.bad{background:#fce8e6;border:2px solid #d93025;padding:.6em;font-weight:bold}
.copied{color:#137333}.failed,.unsafe{color:#c5221f;font-weight:bold}.skipped{color:#555}.deleted{color:#8430ce}
code{font-size:.85em;word-break:break-all}`

func (h *htmlWriter) begin(w *bufio.Writer, s *summary) error {
	h.w = w
	hd := s.header()
	e := html.EscapeString
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Transfer report: job %s</title><style>%s</style></head><body>\n", e(hd.Job.ID), htmlStyle)
	p("<h1>Transfer report: job %s</h1>\n", e(hd.Job.ID))
	p("<p>This report lists what the file transfer tool ferry did with every object of one job: which were copied, which were already present (skipped), which failed and why. It was drawn from the job's audit log, whose lines are linked by SHA-256 hashes so that any change to them can be detected.</p>\n")
	in := hd.Integrity
	if in.Verified {
		p(`<p class="ok">Audit log verified: %d lines, hash chain intact`, in.Lines)
		if in.ExpectedHash != "" {
			p(`, and it ends where the job recorded (line %d)`, in.ExpectedLines)
		}
		p(`. Last hash <code>%s</code>.</p>`+"\n", e(in.LastHash))
	} else {
		p(`<p class="bad">WARNING: the audit log FAILED verification: %s. The log may have been altered or cut; do not rely on this report without investigating.</p>`+"\n", e(in.Problem))
	}
	p("<h2>Job</h2>\n<table>\n")
	kv := func(k, v string) {
		if v != "" {
			p("<tr><th>%s</th><td>%s</td></tr>\n", k, e(v))
		}
	}
	kv("Job ID", hd.Job.ID)
	kv("Command", hd.Job.Command)
	kv("Source", hd.Job.Source)
	kv("Destination", hd.Job.Destination)
	kv("Status", hd.Job.Status)
	kv("Error", hd.Job.Error)
	kv("Created", stampOf(hd.Job.Created))
	kv("Finished", stampOf(hd.Job.Finished))
	kv("First object started", stampOf(hd.Timing.FirstStarted))
	kv("Last object finished", stampOf(hd.Timing.LastFinished))
	kv("Running time", (time.Duration(hd.Timing.Duration * float64(time.Second))).Round(time.Millisecond).String())
	kv("Throughput", fmt.Sprintf("%s/s copied, %.1f objects/s", humanBytes(int64(hd.Timing.BytesPerSecond)), hd.Timing.ObjectsPerSec))
	kv("Report generated", hd.Generated.Format(time.RFC3339))
	p("</table>\n<h2>Totals</h2>\n<table><tr><th>Outcome</th><th>Meaning</th><th>Objects</th><th>Bytes</th></tr>\n")
	meaning := map[string]string{
		Copied:  "written to the destination and verified",
		Skipped: "already identical at the destination; nothing written",
		Failed:  "could not be copied (or deleted) after every attempt",
		Deleted: "removed from the destination because the source no longer has it",
		Unsafe:  "not copied: the key is not a safe name at the destination",
		"all":   "every object of the job",
	}
	for _, o := range append(outcomes[:len(outcomes):len(outcomes)], "all") {
		c := hd.Totals[o]
		p(`<tr><td class="%s">%s</td><td>%s</td><td class="n">%d</td><td class="n">%s</td></tr>`+"\n", o, o, meaning[o], c.Objects, humanBytes(c.Bytes))
	}
	p("</table>\n")
	if len(hd.Differences) > 0 {
		p(`<p class="bad">The audit log and the job's own summary disagree:</p><ul>`)
		for _, d := range hd.Differences {
			p("<li>%s</li>", e(d))
		}
		p("</ul>\n")
	} else if hd.JobSummary != nil {
		p("<p>The totals agree with the job's own summary.</p>\n")
	}
	p("<h2>Throughput</h2>\n<p>Bars: bytes copied per second; line: objects finished per second; each bar is %s.</p>\n", time.Duration(hd.Throughput.BucketSeconds*float64(time.Second)))
	if err := s.chart.svg(w); err != nil {
		return err
	}
	switch s.rows {
	case NoRows:
		return nil
	case ProblemRows:
		p("\n<h2>Objects that failed or were unsafe</h2>\n")
	default:
		p("\n<h2>Objects</h2>\n")
	}
	p("<p>Checksums: CRC32C (base64, as S3 shows it) and MD5 (hex) of the bytes copied; ETags as the stores reported them.</p>\n")
	h.table = true
	p("<table><tr><th>#</th><th>Key</th><th>Outcome</th><th>Size</th><th>Checksums</th><th>Attempts</th><th>Finished</th><th>Reason</th></tr>\n")
	return nil
}

func stampOf(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func (h *htmlWriter) row(r Row) error {
	e := html.EscapeString
	w := h.w
	w.WriteString("<tr><td class=\"n\">")
	w.WriteString(strconv.FormatInt(r.Line, 10))
	w.WriteString("</td><td><code>")
	w.WriteString(e(r.Key))
	w.WriteString("</code></td><td class=\"")
	w.WriteString(e(r.Outcome))
	w.WriteString("\">")
	w.WriteString(e(r.Outcome))
	w.WriteString("</td><td class=\"n\">")
	w.WriteString(strconv.FormatInt(r.Size, 10))
	w.WriteString("</td><td><code>")
	sep := ""
	for _, kv := range [][2]string{{"crc32c", r.CRC32C}, {"md5", r.MD5}, {"src etag", r.SrcETag}, {"dst etag", r.DstETag}} {
		if kv[1] != "" {
			w.WriteString(sep + kv[0] + " " + e(kv[1]))
			sep = "<br>"
		}
	}
	w.WriteString("</code></td><td class=\"n\">")
	w.WriteString(strconv.Itoa(r.Attempts))
	w.WriteString("</td><td>")
	w.WriteString(e(r.Finished))
	w.WriteString("</td><td>")
	_, err := w.WriteString(e(r.Reason) + "</td></tr>\n")
	return err
}

func (h *htmlWriter) end() error {
	if h.table {
		h.w.WriteString("</table>\n")
	}
	_, err := h.w.WriteString("</body></html>\n")
	return err
}
