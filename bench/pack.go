package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Pack-mode cases (issue 11): ferry copy --pack against a plain ferry copy
// (and rclone) of the same data between two endpoints, with staging on the
// destination's server.
//
//	case 8: JSON log objects of 2 to 8 KiB (repetitive text)
//	case 9: random (incompressible) objects of 64 KiB

// PackRun is what a pack-mode run reports (its --json summary) and the
// requests that crossed from the source side to the destination side.
type PackRun struct {
	Packed      int64   `json:"objects_packed"`
	Bundles     int64   `json:"bundles"`
	BundleBytes int64   `json:"bundle_bytes"`
	DataBytes   int64   `json:"bundle_data_bytes"`
	Ratio       float64 `json:"pack_ratio"`
	Level       int     `json:"pack_level"`
	Removed     int64   `json:"bundles_removed"`
}

// logKey and logBody make case 8's objects: JSON lines of a web service's
// access log, 2 to 8 KiB, deterministic per index.
func logKey(i int) string { return fmt.Sprintf("logs/%02d/%06d.json", i%40, i) }

var (
	logPaths  = []string{"/api/v1/orders", "/api/v1/users/me", "/static/app.js", "/healthz", "/api/v1/search", "/login"}
	logAgents = []string{"Mozilla/5.0 (X11; Linux x86_64)", "curl/8.5.0", "Go-http-client/2.0", "okhttp/4.12.0"}
	logLevels = []string{"info", "info", "info", "warn", "error"}
)

func logBody(i int) []byte {
	r := rand.New(rand.NewPCG(uint64(i), 11))
	target := 2048 + r.IntN(6144)
	var b bytes.Buffer
	for n := 0; b.Len() < target; n++ {
		fmt.Fprintf(&b, `{"ts":"2026-11-%02dT%02d:%02d:%02d.%03dZ","level":%q,"service":"checkout","host":"web-%02d","request_id":"%016x","method":"GET","path":%q,"status":%d,"bytes":%d,"duration_ms":%.2f,"user_agent":%q}`+"\n",
			1+i%28, r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1000), logLevels[r.IntN(len(logLevels))], r.IntN(16), r.Uint64(),
			logPaths[r.IntN(len(logPaths))], []int{200, 200, 200, 201, 304, 404, 500}[r.IntN(7)], r.IntN(50000), r.Float64()*200,
			logAgents[r.IntN(len(logAgents))])
	}
	return b.Bytes()[:target]
}

func randKey(i int) string { return fmt.Sprintf("media/%02d/%05d.bin", i%20, i) }

func randBody(i int) []byte {
	r := rand.New(rand.NewPCG(uint64(i), 7))
	b := make([]byte, 64<<10)
	for j := 0; j < len(b); j += 8 {
		v := r.Uint64()
		for k := range 8 {
			b[j+k] = byte(v >> (8 * k))
		}
	}
	return b
}

// putGenerated uploads n objects key(i) with body(i), conc at a time, and
// returns their total size.
func putGenerated(ctx context.Context, c *s3.Client, bucket string, n, conc int, key func(int) string, body func(int) []byte) (int64, error) {
	var next, total atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, conc)
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				b := body(i)
				if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key(i)),
					Body: bytes.NewReader(b), ContentLength: aws.Int64(int64(len(b))), ContentType: aws.String("application/json")}); err != nil {
					errc <- fmt.Errorf("put %s: %w", key(i), err)
					return
				}
				total.Add(int64(len(b)))
			}
		})
	}
	wg.Wait()
	close(errc)
	return total.Load(), <-errc
}

// crossRequests counts the requests of a run that crossed from the source
// side to the destination's server b. A plain copy's every request to b
// crosses. In pack mode the unpacker runs at the destination, so its own
// requests to b (one GetObject and one DeleteObject per bundle, one
// PutObject per restored object) do not cross, while the bundles' PUTs do.
func crossRequests(r Run) int64 {
	var n int64
	for k, v := range r.Requests {
		if strings.HasPrefix(k, "b:") {
			n += v
		}
	}
	if r.Pack != nil {
		n -= r.Requests["b:PutObject"] + r.Requests["b:GetObject"] + r.Requests["b:DeleteObject"]
		n += r.Pack.Bundles
	}
	return n
}

func parsePackSummary(out string) (*PackRun, error) {
	out = strings.TrimSpace(out)
	if i := strings.LastIndexByte(out, '\n'); i >= 0 {
		out = out[i+1:]
	}
	var p PackRun
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// renderPack is the pack cases' own table: bytes to staging and requests
// across the boundary against a plain copy, and wall time.
func renderPack(b *strings.Builder, res *Results) {
	var rows []string
	for _, cr := range res.Cases {
		if cr.ID < 6 {
			continue
		}
		first := map[string]Run{}
		walls := map[string][]float64{}
		byRound := map[int]map[string]float64{}
		for _, r := range cr.Runs {
			if !r.OK {
				continue
			}
			if _, ok := first[r.Tool]; !ok {
				first[r.Tool] = r
			}
			walls[r.Tool] = append(walls[r.Tool], r.Wall)
			if byRound[r.Round] == nil {
				byRound[r.Round] = map[string]float64{}
			}
			byRound[r.Round][r.Tool] = r.Wall
		}
		// pack/plain and pack/rclone in the same round, median over rounds.
		var vsPlain, vsRclone []float64
		for _, w := range byRound {
			if w["ferry"] > 0 && w["ferry-pack"] > 0 {
				vsPlain = append(vsPlain, w["ferry-pack"]/w["ferry"])
			}
			if w["rclone"] > 0 && w["ferry-pack"] > 0 {
				vsRclone = append(vsRclone, w["ferry-pack"]/w["rclone"])
			}
		}
		rcloneCol := "not run"
		if len(walls["rclone"]) > 0 {
			rcloneCol = fmt.Sprintf("%.2f s (--pack %.2f× its time)", median(walls["rclone"]), median(vsRclone))
		}
		plain, pack := first["ferry"], first["ferry-pack"]
		if pack.Pack == nil || plain.Tool == "" {
			continue
		}
		p := pack.Pack
		pc, pk := crossRequests(plain), crossRequests(pack)
		rows = append(rows, fmt.Sprintf("| %d | %d | %s | %s (%.3f× the objects' bytes; level %d, ratio %.2f) | %d bundles | %d | %d (%.0f× fewer) | %.2f s | %.2f s (%.2f×) | %s |",
			cr.ID, cr.Objects, mib(cr.Bytes), mib(p.BundleBytes), float64(p.BundleBytes)/float64(cr.Bytes), p.Level, p.Ratio, p.Bundles,
			pc, pk, float64(pc)/float64(max(pk, 1)), median(walls["ferry"]), median(walls["ferry-pack"]), median(vsPlain), rcloneCol))
	}
	if len(rows) == 0 {
		return
	}
	b.WriteString("Pack mode (cases 8 and 9; staging on the destination server; requests across = to server b, less the unpacker's own there, plus the bundle PUTs):\n\n")
	b.WriteString("| Case | Objects | Object bytes | Bytes to staging | Bundles | Requests across, plain copy | Requests across, --pack | Wall, plain (median) | Wall, --pack (median; ×plain, same-round median) | Wall, rclone (median) |\n")
	b.WriteString("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		b.WriteString(r + "\n")
	}
	b.WriteString("\n")
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
