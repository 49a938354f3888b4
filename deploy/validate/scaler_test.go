package validate

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/tidwall/gjson"

	"github.com/ferry-dev/ferry/internal/job"
	"github.com/ferry-dev/ferry/internal/queue"
	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
)

func scaledObjectTrigger(t *testing.T) kedav1alpha1.ScaleTriggers {
	t.Helper()
	so := find[*kedav1alpha1.ScaledObject](t, decodeManifests(t))
	if len(so.Spec.Triggers) != 1 {
		t.Fatalf("%d triggers, want 1", len(so.Spec.Triggers))
	}
	return so.Spec.Triggers[0]
}

func scaledObjectURL(t *testing.T) *url.URL {
	t.Helper()
	u, err := url.Parse(scaledObjectTrigger(t).Metadata["url"])
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func scaledObjectAccount(t *testing.T) string {
	t.Helper()
	return scaledObjectURL(t).Query().Get("acc")
}

// startNATS starts a NATS server with the accounts of deploy/nats's values
// (the chart's nats.conf "merge"), its FERRY user's public key replaced by
// one whose seed this test holds. It returns the server and the seed file.
func startNATS(t *testing.T) (*server.Server, string) {
	t.Helper()
	dir := t.TempDir()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	seedFile := filepath.Join(dir, "ferry.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}

	conf, ok := dig(t, natsValues(t), "config", "merge").(map[string]any)
	if !ok {
		t.Fatal("config.merge: not a map")
	}
	acc, ok := dig(t, conf, "accounts", scaledObjectAccount(t)).(map[string]any)
	if !ok {
		t.Fatal("the account is not a map")
	}
	acc["users"] = []any{map[string]any{"nkey": pub}}
	conf["host"] = "127.0.0.1"
	conf["port"] = -1
	conf["http_port"] = -1
	conf["server_name"] = "validate"
	conf["jetstream"] = map[string]any{"store_dir": filepath.Join(dir, "js")}
	b, err := json.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	confFile := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(confFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(confFile)
	if err != nil {
		t.Fatalf("the values' nats.conf does not load: %v", err)
	}
	opts.NoSigs, opts.NoLog = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(20 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv, seedFile
}

// TestScalerMetricOnRealNATS runs the ScaledObject's query the way KEDA's
// metrics-api scaler does (GET the url, GJSON valueLocation, a number)
// against a real NATS server holding ferry's streams, and checks that it
// is the work not yet done: queued and in-flight messages of every job,
// down to 0 when they are acknowledged or the job's work is purged.
func TestScalerMetricOnRealNATS(t *testing.T) {
	srv, seedFile := startNATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	conn, err := queue.Connect(ctx, queue.Options{URL: srv.ClientURL(), NKeyFile: seedFile, Name: "validate"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	tr := scaledObjectTrigger(t)
	u := scaledObjectURL(t)
	u.Host = srv.MonitorAddr().String()
	metric := func() float64 {
		t.Helper()
		resp, err := http.Get(u.String())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %v", u, resp.StatusCode, err)
		}
		r := gjson.GetBytes(body, tr.Metadata["valueLocation"])
		if r.Type != gjson.Number {
			t.Fatalf("valueLocation %s: %s, want a number (KEDA fails otherwise); body %s", tr.Metadata["valueLocation"], r.Type, body)
		}
		return r.Float()
	}
	expect := func(want float64, when string) {
		t.Helper()
		if got := metric(); got != want {
			t.Errorf("%s: metric %v, want %v", when, got, want)
		}
	}

	expect(0, "streams created, no job")
	for i := 0; i < 5; i++ {
		if _, err := conn.JS.Publish(ctx, queue.WorkSubject("job1", "copy"), []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		if _, err := conn.JS.Publish(ctx, queue.WorkSubject("job2", "list"), []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	expect(8, "two jobs with queued work")

	// A worker takes job1's messages through the job's consumer (one per
	// job: this is why KEDA's nats-jetstream scaler, which watches one
	// consumer named in advance, cannot be used).
	if job.WorkConsumer("job1") == job.WorkConsumer("job2") {
		t.Fatal("jobs share a consumer now: the nats-jetstream scaler could be used (docs/deploy.md)")
	}
	cons, err := conn.JS.CreateOrUpdateConsumer(ctx, queue.StreamWork, jetstream.ConsumerConfig{
		Durable: job.WorkConsumer("job1"), FilterSubject: queue.WorkFilter("job1"), AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.FetchNoWait(5)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if len(msgs) != 5 {
		t.Fatalf("fetched %d messages, want 5", len(msgs))
	}
	expect(8, "job1's work in flight (not acknowledged)")
	for _, m := range msgs {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	expect(3, "job1's work acknowledged")

	// A finished or cancelled job's leftovers are purged (Coordinator.finish).
	s, err := conn.JS.Stream(ctx, queue.StreamWork)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSubject(queue.WorkFilter("job2"))); err != nil {
		t.Fatal(err)
	}
	expect(0, "job2 finished: no work left, KEDA scales to 0")
}
