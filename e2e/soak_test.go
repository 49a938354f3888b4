package e2e

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/testenv"
)

// soakParams are the soak's settings, from the environment.
type soakParams struct {
	objects   int
	duration  time.Duration
	killEvery time.Duration
	rate      float64
}

func soakEnv(t *testing.T) soakParams {
	t.Helper()
	p := soakParams{objects: 100_000, duration: 15 * time.Minute, killEvery: 30 * time.Second, rate: 0.05}
	if v := os.Getenv("FERRY_SOAK_OBJECTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("FERRY_SOAK_OBJECTS=%q: want a positive number", v)
		}
		p.objects = n
	}
	for name, d := range map[string]*time.Duration{"FERRY_SOAK_DURATION": &p.duration, "FERRY_SOAK_KILL_EVERY": &p.killEvery} {
		if v := os.Getenv(name); v != "" {
			x, err := time.ParseDuration(v)
			if err != nil || x <= 0 {
				t.Fatalf("%s=%q: want a positive duration", name, v)
			}
			*d = x
		}
	}
	if v := os.Getenv("FERRY_SOAK_RATE"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r < 0 || r >= 1 {
			t.Fatalf("FERRY_SOAK_RATE=%q: want a fraction in [0, 1)", v)
		}
		p.rate = r
	}
	return p
}

// soakBody is the 64 bytes stored at key: they depend only on the key.
func soakBody(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return append(h[:], h[:]...)
}

// soakRound is one job of the soak: the source copied into a new bucket.
type soakRound struct {
	bucket, id       string
	kills            int
	status           string
	copied, skipped  int64
	failed           int64
	dlq              int
	missing, corrupt int
	orphans          int
	took             time.Duration
}

// TestSoak is issue 10's soak (make soak; FERRY_SOAK=1): 100,000 objects
// of 64 bytes, copied between two MinIO servers behind fault proxies
// injecting all fault kinds (5% of the requests), the ferry process
// SIGKILLed every 30 s and the job resumed, for at least 15 minutes: when
// a job ends before, another copies the source into a new bucket. Then
// every destination object's MD5 is checked with a plain S3 client. It
// prints objects, faults by kind, requests, kills survived and the
// verification. FERRY_SOAK_OBJECTS, FERRY_SOAK_DURATION,
// FERRY_SOAK_KILL_EVERY and FERRY_SOAK_RATE change the settings.
func TestSoak(t *testing.T) {
	if os.Getenv("FERRY_SOAK") != "1" {
		t.Skip("the soak runs with FERRY_SOAK=1 (make soak)")
	}
	p := soakEnv(t)
	w := newMemWorld(t)
	e := &faultEnv{w: w, src: mkBucket(t, w.a, "soak-src"), want: make(map[string]string, p.objects)}
	keys := make([]string, p.objects)
	for i := range keys {
		keys[i] = fmt.Sprintf("soak/p%02d/%06d", i%50, i)
		sum := md5.Sum(soakBody(keys[i]))
		e.want[keys[i]] = hex.EncodeToString(sum[:])
	}
	seedStart := time.Now()
	putBodies(t, w.a, e.src, keys, soakBody)
	t.Logf("seeded %d objects of 64 bytes in %.1f s", p.objects, time.Since(seedStart).Seconds())
	e.srcProxy = testenv.StartFaultProxy(t, w.a.Endpoint, nil)
	e.dstProxy = testenv.StartFaultProxy(t, w.b.Endpoint, w.b.TLSConfig())
	e.srcProxy.SetFaults(sideFaults(11, mixedChances(p.rate)))
	e.dstProxy.SetFaults(sideFaults(12, mixedChances(p.rate)))

	start := time.Now()
	var rounds []*soakRound
	kills := 0
	for len(rounds) == 0 || time.Since(start) < p.duration {
		r := &soakRound{bucket: mkBucket(t, w.b, fmt.Sprintf("soak-dst-%d", len(rounds)))}
		rounds = append(rounds, r)
		roundStart := time.Now()
		args := []string{"copy", "s3://" + e.src, "s3://" + r.bucket, "--no-progress", "--json", "--concurrency", "32",
			"--stall-timeout", "1s",
			"--src-endpoint", e.srcProxy.URL, "--src-profile", "a", "--dst-endpoint", e.dstProxy.URL, "--dst-profile", "b"}
		for {
			proc := w.startProc(args...)
			exited := make(chan int, 1)
			go func() { exited <- proc.wait() }()
			var code int
			select {
			case code = <-exited:
			case <-time.After(p.killEvery):
				_ = syscall.Kill(-proc.c.Process.Pid, syscall.SIGKILL)
				code = <-exited
				if code == -1 || code == 137 {
					kills++
					r.kills++
					code = -1
				}
			}
			if r.id == "" {
				if m := jobIDRE.FindStringSubmatch(proc.err.String()); m != nil {
					r.id = m[1]
				}
			}
			errs := proc.err.String()
			switch {
			case code == -1 && r.id == "":
				continue // killed before the job was created: start it again
			case code == -1:
				st := w.status(r.id)
				t.Logf("kill %d after %s: job %s, %d of %d objects finished (%d copied, %d skipped, %d failed)",
					kills, time.Since(start).Round(time.Second), r.id, st.Counters.Finished, p.objects, st.Counters.Copied, st.Counters.Skipped, st.Counters.Failed)
				args = []string{"job", "resume", r.id, "--no-progress", "--json", "--concurrency", "32", "--stall-timeout", "1s"}
				continue
			case code == 1:
				t.Logf("round %d: exit 1\n%s", len(rounds), tail(errs, 3000))
			case code == 0 || (code == 2 && strings.Contains(errs, "already finished")):
			default:
				t.Fatalf("round %d: exit %d\n%s", len(rounds), code, tail(errs, 3000))
			}
			break
		}
		r.took = time.Since(roundStart)
		st := w.status(r.id)
		r.status, r.copied, r.skipped, r.failed = st.Status, st.Counters.Copied, st.Counters.Skipped, st.Counters.Failed
		t.Logf("round %d: job %s %s after %.1f s, %d kills; %d copied, %d skipped, %d failed",
			len(rounds), r.id, r.status, r.took.Seconds(), r.kills, r.copied, r.skipped, r.failed)
	}
	e.srcProxy.SetFaults(nil)
	e.dstProxy.SetFaults(nil)
	elapsed := time.Since(start)
	src, dst := e.srcProxy.Stats(), e.dstProxy.Stats()
	all := statsSum(src, dst)

	var copiedObjects, missingTotal, corruptTotal, orphanTotal, dlqTotal int
	for i, r := range rounds {
		dlq := w.dlqKeys(r.id)
		r.dlq = len(dlq)
		missing, corrupt := e.checkDst(t, r.bucket)
		r.missing, r.corrupt = len(missing), len(corrupt)
		r.orphans = openUploads(t, w.b, r.bucket)
		var lost []string
		for _, k := range missing {
			if !dlq[k] {
				lost = append(lost, k)
			}
		}
		if len(corrupt) > 0 {
			t.Errorf("round %d: %d objects differ from the source: %v", i+1, len(corrupt), first(corrupt, 10))
		}
		if len(lost) > 0 {
			t.Errorf("round %d: %d objects missing and not in the DLQ: %v", i+1, len(lost), first(lost, 10))
		}
		if r.orphans > 0 {
			t.Errorf("round %d: %d multipart uploads left open", i+1, r.orphans)
		}
		copiedObjects += p.objects - r.missing
		missingTotal += r.missing
		corruptTotal += r.corrupt
		orphanTotal += r.orphans
		dlqTotal += r.dlq
	}
	var b strings.Builder
	fmt.Fprintf(&b, "soak: %d objects of 64 bytes, mixed faults at %.0f%% of the requests, %s of copying (%d rounds), ferry SIGKILLed every %s\n",
		p.objects, p.rate*100, elapsed.Round(time.Second), len(rounds), p.killEvery)
	fmt.Fprintf(&b, "kills survived: %d\n", kills)
	fmt.Fprintf(&b, "requests through the proxies: %d (source %d, destination %d), %.2f per object copied\n",
		all.Requests, src.Requests, dst.Requests, float64(all.Requests)/float64(max(copiedObjects, 1)))
	fmt.Fprintf(&b, "faults: %d 5xx, %d resets before an answer, %d body resets, %d truncations, %d flipped bits, %d stalls\n",
		all.Statuses, all.Resets, all.BodyResets, all.Truncations, all.Flips, all.Stalls)
	for i, r := range rounds {
		fmt.Fprintf(&b, "round %d: job %s %s in %.1f s, %d kills; counters: %d copied, %d skipped, %d failed; DLQ %d\n",
			i+1, r.id, r.status, r.took.Seconds(), r.kills, r.copied, r.skipped, r.failed, r.dlq)
	}
	fmt.Fprintf(&b, "verification (MD5 of every destination object, plain S3 client): %d objects checked, %d identical, %d missing (%d in the DLQ), %d corrupt, %d open uploads\n",
		len(rounds)*p.objects, copiedObjects, missingTotal, dlqTotal, corruptTotal, orphanTotal)
	t.Log(b.String())
}
