package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

func (w *world) secretSet(t *testing.T, name, key, secret string) {
	t.Helper()
	c, _, errb := w.cmd("secret", "set", name)
	c.Stdin = strings.NewReader(fmt.Sprintf("aws_access_key_id = %s\naws_secret_access_key = %s\n", key, secret))
	if err := c.Run(); err != nil {
		t.Fatalf("secret set %s: %v: %s", name, err, errb)
	}
}

// waitStatus polls `ferry job status` until cond holds.
func (w *world) waitStatus(t *testing.T, id string, what string, cond func(status, msg string) bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		code, out, _ := w.run("job", "status", id)
		last = out
		if code == 0 {
			status, msg := "", ""
			for _, l := range strings.Split(out, "\n") {
				if v, ok := strings.CutPrefix(l, "status:"); ok {
					v = strings.TrimSpace(v)
					status, msg, _ = strings.Cut(v, " (")
					msg = strings.TrimSuffix(msg, ")")
				}
			}
			if cond(status, msg) {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("job %s never %s; last status:\n%s", id, what, last)
}

// TestCredentialsRevokedAndRotated: the destination's credentials come
// from ferry's secret store. Revoked mid-job (the secret now holds a wrong
// key), the job pauses itself waiting for valid credentials instead of
// failing objects, and resumes when they are fixed. Then the DMS-style
// rotation: pause, secret set, resume continues with the new credentials.
func TestCredentialsRevokedAndRotated(t *testing.T) {
	w := newWorld(t)
	w.env = append(w.env, "FERRY_CREDENTIAL_REFRESH=1s")
	src, dst := mkBucket(t, w.a, "rot-src"), mkBucket(t, w.b, "rot-dst")
	const n = 3000
	seed(t, w.a, src, n, 512)
	w.secretSet(t, "dst-creds", w.b.AccessKey, w.b.SecretKey)
	args := append([]string{"copy", "s3://" + src, "s3://" + dst, "--no-progress", "--concurrency", "1",
		"--dst-endpoint", w.b.Endpoint, "--dst-secret", "dst-creds", "--ca-bundle", w.b.CAFile}, w.srcA()...)
	c, out, errb := w.cmd(args...)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	p := &procOut{c: c, out: out, err: errb}
	t.Cleanup(func() { _ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL); p.wait() })
	deadline := time.Now().Add(30 * time.Second)
	for (!jobIDRE.MatchString(errb.String()) || countKeys(t, w.b, dst) == 0) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	id := jobID(t, errb.String())

	// Revoke: the secret now holds a key the server does not know (as
	// when IAM deactivates a key; note the SDK keeps signing keys derived
	// per access key ID for a day, so a new secret for the same ID is not
	// a revocation a client can observe).
	w.secretSet(t, "dst-creds", "REVOKED"+w.b.AccessKey, w.b.SecretKey)
	w.waitStatus(t, id, "paused waiting for credentials", func(s, msg string) bool {
		return s == "paused" && strings.Contains(msg, "waiting for valid credentials for destination s3://"+dst)
	})
	a := countKeys(t, w.b, dst)
	time.Sleep(1500 * time.Millisecond)
	if b := countKeys(t, w.b, dst); b != a {
		t.Fatalf("copying went on without valid credentials: %d -> %d", a, b)
	}
	if got := w.status(id); got.Counters.Failed != 0 {
		t.Fatalf("revoked credentials failed %d objects", got.Counters.Failed)
	}
	// Fixed: the job resumes by itself.
	w.secretSet(t, "dst-creds", w.b.AccessKey, w.b.SecretKey)
	w.waitStatus(t, id, "resumed", func(s, _ string) bool { return s == "running" })
	for countKeys(t, w.b, dst) <= a && time.Now().Before(time.Now().Add(20*time.Second)) {
		time.Sleep(100 * time.Millisecond)
	}

	// Rotation while paused: pause, store (bad) new credentials, resume:
	// the job uses them at once (and pauses itself again); then pause,
	// store good ones, resume: it completes.
	if code, _, errs := w.run("job", "pause", id); code != 0 {
		t.Fatalf("pause: %s", errs)
	}
	w.secretSet(t, "dst-creds", "WRONG"+w.b.AccessKey, w.b.SecretKey)
	if code, _, errs := w.run("job", "resume", id); code != 0 {
		t.Fatalf("resume: %s", errs)
	}
	w.waitStatus(t, id, "paused by the new credentials", func(s, msg string) bool {
		return s == "paused" && strings.HasPrefix(msg, "waiting for valid credentials")
	})
	if code, _, errs := w.run("job", "pause", id); code != 0 {
		t.Fatalf("pause: %s", errs)
	}
	w.secretSet(t, "dst-creds", w.b.AccessKey, w.b.SecretKey)
	if code, _, errs := w.run("job", "resume", id); code != 0 {
		t.Fatalf("resume: %s", errs)
	}
	done := make(chan int, 1)
	go func() { done <- p.wait() }()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("copy: exit %d\n%s", code, errb.String())
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("copy did not finish\n%s", errb.String())
	}
	if got := countKeys(t, w.b, dst); got != n {
		t.Fatalf("destination has %d objects, want %d", got, n)
	}
	st := w.status(id)
	if st.Status != "done" || st.Counters.Failed != 0 {
		t.Fatalf("final status %+v", st)
	}
}
