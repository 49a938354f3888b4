package report

import (
	"fmt"
	"io"
	"time"
)

// chartBuckets is the number of time buckets of the throughput chart.
const chartBuckets = 120

// chart adds up objects and bytes per time bucket, in a fixed number of
// buckets: when an outcome falls past the last one, neighbouring buckets
// merge in pairs and the width doubles. Memory does not grow with the job.
type chart struct {
	start   time.Time
	width   time.Duration
	n       int // buckets in use
	objects [chartBuckets]int64
	bytes   [chartBuckets]int64
}

func newChart(start time.Time) *chart {
	return &chart{start: start, width: time.Second}
}

func (c *chart) add(t time.Time, objects, bytes int64) {
	if c.start.IsZero() {
		c.start = t.Truncate(time.Second)
	}
	d := t.Sub(c.start)
	if d < 0 {
		d = 0 // before the job's creation (clock skew between workers)
	}
	i := int(d / c.width)
	for i >= chartBuckets {
		for j := 0; j < chartBuckets/2; j++ {
			c.objects[j] = c.objects[2*j] + c.objects[2*j+1]
			c.bytes[j] = c.bytes[2*j] + c.bytes[2*j+1]
		}
		for j := chartBuckets / 2; j < chartBuckets; j++ {
			c.objects[j], c.bytes[j] = 0, 0
		}
		c.width *= 2
		c.n = (c.n + 1) / 2
		i = int(d / c.width)
	}
	c.objects[i] += objects
	c.bytes[i] += bytes
	c.n = max(c.n, i+1)
}

// Bucket is one time bucket of the throughput chart.
type Bucket struct {
	// Offset is the bucket's start, seconds after the chart's start.
	Offset  float64 `json:"offset_seconds"`
	Objects int64   `json:"objects"`
	Bytes   int64   `json:"bytes_copied"`
}

func (c *chart) buckets() []Bucket {
	out := make([]Bucket, 0, c.n)
	for i := range c.n {
		out = append(out, Bucket{Offset: (time.Duration(i) * c.width).Seconds(), Objects: c.objects[i], Bytes: c.bytes[i]})
	}
	return out
}

// svg draws the chart: bars of bytes copied per second, and a line of
// objects finished per second, each scaled to its own maximum.
func (c *chart) svg(w io.Writer) error {
	const W, H, left, bottom, top = 720.0, 220.0, 70.0, 30.0, 20.0
	sec := c.width.Seconds()
	var maxB, maxO float64
	for i := range c.n {
		maxB = max(maxB, float64(c.bytes[i])/sec)
		maxO = max(maxO, float64(c.objects[i])/sec)
	}
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %.0f %.0f" width="100%%" role="img" aria-label="throughput over time">`, W, H)
	p(`<rect x="0" y="0" width="%.0f" height="%.0f" fill="#fafafa"/>`, W, H)
	plotW, plotH := W-left-10, H-bottom-top
	p(`<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#888"/>`, left, H-bottom, W-10, H-bottom)
	p(`<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#888"/>`, left, top, left, H-bottom)
	if c.n == 0 {
		p(`<text x="%.0f" y="%.0f" font-size="12">no objects</text></svg>`, left+10, top+20)
		return nil
	}
	bw := plotW / float64(c.n)
	if maxB > 0 {
		for i := range c.n {
			h := float64(c.bytes[i]) / sec / maxB * plotH
			p(`<rect x="%.2f" y="%.2f" width="%.2f" height="%.2f" fill="#4a90d9"><title>%s/s</title></rect>`,
				left+float64(i)*bw, H-bottom-h, max(bw-1, 0.5), h, humanBytes(int64(float64(c.bytes[i])/sec)))
		}
	}
	if maxO > 0 {
		p(`<polyline fill="none" stroke="#d9822b" stroke-width="2" points="`)
		for i := range c.n {
			p("%.2f,%.2f ", left+(float64(i)+0.5)*bw, H-bottom-float64(c.objects[i])/sec/maxO*plotH)
		}
		p(`"/>`)
	}
	p(`<text x="%.0f" y="%.0f" font-size="11" text-anchor="end" fill="#4a90d9">%s/s</text>`, left-4, top+10, humanBytes(int64(maxB)))
	p(`<text x="%.0f" y="%.0f" font-size="11" text-anchor="end" fill="#d9822b">%.1f obj/s</text>`, left-4, top+24, maxO)
	p(`<text x="%.0f" y="%.0f" font-size="11" text-anchor="end">0</text>`, left-4, H-bottom)
	p(`<text x="%.0f" y="%.0f" font-size="11">0 s</text>`, left, H-bottom+16)
	p(`<text x="%.0f" y="%.0f" font-size="11" text-anchor="end">%s</text>`, W-10, H-bottom+16, (time.Duration(c.n) * c.width).String())
	p(`</svg>`)
	return nil
}

// humanBytes prints n bytes in binary units.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
