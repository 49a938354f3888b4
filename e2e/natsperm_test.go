package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/ferry-dev/ferry/internal/queue"
	"github.com/ferry-dev/ferry/internal/testenv"
)

// nkeyUser makes an nkey user and writes its seed to a 0600 file.
func nkeyUser(t *testing.T) (pub, seedFile string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, err = kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	seedFile = filepath.Join(t.TempDir(), "seed.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	return pub, seedFile
}

// TestNATSPermissions: a real nats-server configured with the block
// 'ferry nats-permissions' prints lets a coordinator and a worker (each
// with its own nkey) complete a job, and denies the worker what it should
// not do: delete or purge ferry's streams, take a job's lock, read the
// results.
func TestNATSPermissions(t *testing.T) {
	w := newMemWorld(t)
	wk := w.machine(t)
	coordPub, coordSeed := nkeyUser(t)
	workerPub, workerSeed := nkeyUser(t)
	code, conf, errs := w.run("nats-permissions", "--coordinator", coordPub, "--worker", workerPub)
	if code != 0 {
		t.Fatalf("nats-permissions: exit %d %s", code, errs)
	}
	if code, _, errs := w.run("nats-permissions", "--worker", "not-a-key"); code != 2 || strings.Count(errs, "\n") != 1 {
		t.Fatalf("bad key: exit %d %q", code, errs)
	}
	srv := testenv.StartNATSConfig(t, conf)
	coordKey, workerKey := w.key(t), wk.key(t)
	coordArgs := []string{"--nats", srv.URL, "--nats-nkey", coordSeed, "--trust", workerKey}

	// The coordinator creates ferry's streams; the worker cannot.
	if code, _, errs := wk.run("worker", "--nats", srv.URL, "--nats-nkey", workerSeed, "--trust", coordKey); code != 2 || !strings.Contains(errs, "Permissions Violation") || !strings.Contains(errs, "ferry job list") || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Fatalf("worker before the streams exist: exit %d %s", code, errs)
	}
	if code, _, errs := w.run(append([]string{"job", "list"}, coordArgs...)...); code != 0 {
		t.Fatalf("job list: exit %d %s\n%s", code, errs, srv.LogTail(20))
	}
	worker := wk.startProc(append([]string{"worker", "--nats", srv.URL, "--nats-nkey", workerSeed, "--trust", coordKey, "--concurrency", "8"}, w.allowAB()...)...)

	src, dst := mkBucket(t, w.a, "perm-src"), mkBucket(t, w.b, "perm-dst")
	var keys []string
	for i := range 50 {
		keys = append(keys, "d"+strconv.Itoa(i%5)+"/k"+strconv.Itoa(i))
	}
	putKeys(t, w.a, src, keys)
	code, out, errs := w.run(append(append(append([]string{"copy", "s3://" + src, "s3://" + dst, "--workers", "0", "--no-progress", "--json"}, coordArgs...), w.srcA()...), w.dstB()...)...)
	if s := parseSummary(t, out, errs); code != 0 || s.Copied != 50 {
		t.Fatalf("copy: exit %d %+v\n%s\nworker:\n%s\nserver:\n%s", code, s, errs, worker.err, srv.LogTail(30))
	}
	if strings.Contains(worker.err.String(), "ermission") {
		t.Errorf("the worker hit a permission error:\n%s", worker.err)
	}

	// The worker's user is denied the rest.
	errc := make(chan error, 16)
	nkOpt, err := nats.NkeyOptionFromSeed(workerSeed)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.URL, nkOpt, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errc <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for _, subj := range []string{"$JS.API.STREAM.DELETE." + queue.StreamWork, "$JS.API.STREAM.PURGE." + queue.StreamResults, "$KV." + queue.BucketLocks + ".job"} {
		if err := nc.Publish(subj, []byte("{}")); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errc:
			if !strings.Contains(err.Error(), "ermissions violation") || !strings.Contains(err.Error(), subj) {
				t.Errorf("publish to %s: %v", subj, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("publish to %s was not denied", subj)
		}
	}
	if _, err := nc.SubscribeSync("ferry.results.>"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !strings.Contains(err.Error(), "ermissions violation") {
			t.Errorf("subscribe to the results: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("subscribing to the results was not denied")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	coord, err := queue.Connect(ctx, queue.Options{URL: srv.URL, NKeyFile: coordSeed})
	if err != nil {
		t.Fatalf("coordinator after the denials: %v", err)
	}
	coord.Close()
}
