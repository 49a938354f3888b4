package uitest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// findChromium returns the browser to drive, or skips (fails under CI,
// where make test-ui installs it).
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no chromium on PATH: install Debian's chromium package (apt-get install -y chromium) to run the dashboard browser test"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// artifactDir is where the screenshot goes: $FERRY_ARTIFACTS, or the
// test's temporary directory.
func artifactDir(t *testing.T) string {
	if d := os.Getenv("FERRY_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// syncBuffer collects a process's output for failure messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var dashboardLine = regexp.MustCompile(`dashboard: (http://127\.0\.0\.1:\d+/)#token=([0-9a-f]+)`)

// TestDashboardInBrowser runs a real, rate-limited local copy with
// --ui-addr, checks the API's auth with plain HTTP, then opens the page in
// headless chromium: the job must advance on the page without a reload,
// pause and resume from its buttons, and the page is saved as a
// screenshot. The job must then finish complete.
func TestDashboardInBrowser(t *testing.T) {
	chromium := findChromium(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()

	bin := filepath.Join(dir, "ferry")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/ferry")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build ferry: %v\n%s", err, out)
	}

	// 1000 objects of 4 KiB read at 200 KiB/s: about 20 seconds, in
	// batches of 100 objects whose results arrive one after another.
	const objects = 1000
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	for d := range 10 {
		if err := os.MkdirAll(filepath.Join(src, fmt.Sprintf("d%d", d)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 4096)
	for i := range objects {
		_, _ = rand.Read(buf)
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("d%d/obj-%04d", i%10, i)), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	cmd := exec.CommandContext(ctx, bin, "copy", src, dst, "--state-dir", filepath.Join(dir, "state"),
		"--bwlimit", "200k", "--ui-addr", "127.0.0.1:0", "--no-progress", "--json")
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	var stdout, stderr syncBuffer
	cmd.Stdout = &stdout
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		pw.Close()
		exited <- err
	}()
	found := make(chan []string, 1)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			fmt.Fprintln(&stderr, sc.Text())
			if m := dashboardLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
		<-scanned
	})
	var base, token string
	select {
	case m := <-found:
		base, token = m[1], m[2]
	case err := <-exited:
		t.Fatalf("ferry copy ended before the dashboard started: %v\n%s", err, stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("no dashboard line on stderr:\n%s", stderr.String())
	}

	// The job's ID, from the API (read-only calls need no token on
	// loopback).
	var jobID string
	waitFor(t, 30*time.Second, "the job in /api/state", func() bool {
		var st struct {
			Jobs []struct {
				ID string `json:"id"`
			} `json:"jobs"`
		}
		code, body := call(t, ctx, "GET", base+"api/state", nil)
		if code != http.StatusOK || json.Unmarshal(body, &st) != nil || len(st.Jobs) != 1 {
			return false
		}
		jobID = st.Jobs[0].ID
		return true
	})

	// Actions without the token are refused, and change nothing.
	for name, h := range map[string]map[string]string{
		"no token":    nil,
		"wrong token": {"X-Ferry-Token": strings.Repeat("0", len(token))},
		"cross-site":  {"X-Ferry-Token": token, "Origin": "https://evil.example"},
	} {
		for _, action := range []string{"pause", "cancel", "redrive"} {
			if code, body := call(t, ctx, "POST", base+"api/jobs/"+jobID+"/"+action, h); code != http.StatusForbidden {
				t.Fatalf("%s %s: HTTP %d %s, want 403", name, action, code, body)
			}
		}
	}

	// The page, in a real browser.
	actx, acancel := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1200, 1000))...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	card := `article[data-job="` + jobID + `"]`
	if err := chromedp.Do(bctx,
		chromedp.Navigate(base+"#token="+token),
		chromedp.WaitVisible(chromedp.CSS(card)),
	); err != nil {
		t.Fatalf("open the dashboard: %v\n%s", err, stderr.String())
	}
	finished := func() int64 {
		v, err := chromedp.Run(bctx, chromedp.AttributeValue(chromedp.CSS(card+` [data-k="objtxt"]`), "data-value"))
		if err != nil {
			t.Fatalf("read the page: %v", err)
		}
		n, _ := strconv.ParseInt(v.Value, 10, 64)
		return n
	}
	status := func() string {
		v, err := chromedp.Run(bctx, chromedp.AttributeValue(chromedp.CSS(card), "data-status"))
		if err != nil {
			t.Fatalf("read the page: %v", err)
		}
		return v.Value
	}
	first := finished()
	waitFor(t, 30*time.Second, "the page to show the job advancing", func() bool { return finished() > first && status() == "running" })
	second := finished()
	if second >= objects {
		t.Fatalf("the job finished before it could be watched (%d objects); slow it down", second)
	}
	t.Logf("the page showed %d, then %d of %d objects finished, without a reload", first, second, objects)

	// Pause and resume from the page's buttons (the token came with the
	// URL's fragment).
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(card+` button[data-act="pause"]`))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the page to show the job paused", func() bool { return status() == "paused" })
	paused := finished()
	time.Sleep(2 * time.Second)
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(card+` button[data-act="resume"]`))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the page to show the job running again", func() bool { return status() == "running" })
	waitFor(t, 30*time.Second, "the job to advance after resume", func() bool { return finished() > paused })

	// Rates, the chart's history and the worker reached the page too.
	workers, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll("#workers tbody tr").length`))
	if err != nil {
		t.Fatal(err)
	}
	rate, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(card+` [data-k="brate"]`)))
	if err != nil {
		t.Fatal(err)
	}
	if workers < 1 || !strings.HasSuffix(rate, "/s") {
		t.Fatalf("workers rows %d, bytes rate %q", workers, rate)
	}
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(artifactDir(t), "dashboard.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)

	// The job completes.
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("ferry copy: %v\n%s", err, stderr.String())
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("the job did not finish\n%s", stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var sum struct {
		Status string `json:"status"`
		Copied int    `json:"objects_copied"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil || sum.Status != "done" || sum.Copied != objects {
		t.Fatalf("summary: %+v %v\n%s", sum, err, stdout.String())
	}
}

func call(t *testing.T, ctx context.Context, method, url string, h map[string]string) (int, []byte) {
	t.Helper()
	r, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		r.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
