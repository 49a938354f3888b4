package worker

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/job"
	"github.com/ferry-dev/ferry/internal/queue"
)

// TestLevelChoiceSamplesFirstAndEvery: the first bundle is sampled (and
// any bundle while no choice exists yet, however many start at once),
// then every resampleEvery-th; the others reuse the last choice, which
// follows the data when it changes.
func TestLevelChoiceSamplesFirstAndEvery(t *testing.T) {
	builder := func(body []byte) *bundle.Builder {
		b, err := bundle.NewBuilder(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		if err := b.AddBytes(bundle.Object{Key: "k"}, body); err != nil {
			t.Fatal(err)
		}
		return b
	}
	text := []byte(strings.Repeat(`{"level":"info","msg":"request served","status":200}`+"\n", 4000))
	random := make([]byte, 256<<10)
	_, _ = rand.Read(random)

	var l levelChoice
	var wg sync.WaitGroup
	for range 4 { // concurrent first bundles: none may get the zero choice
		wg.Go(func() {
			c, err := l.choose(builder(text))
			if err != nil || c.Level == bundle.LevelStore {
				t.Errorf("first bundles of text: %+v %v", c, err)
			}
		})
	}
	wg.Wait()
	// The data turns incompressible: within resampleEvery bundles the
	// choice follows.
	stored := false
	for range resampleEvery {
		c, err := l.choose(builder(random))
		if err != nil {
			t.Fatal(err)
		}
		stored = stored || c.Level == bundle.LevelStore
	}
	if !stored {
		t.Fatalf("%d bundles of random data never chose to store", resampleEvery)
	}
}

// TestLevelChoiceIgnoresTinySamples: a first bundle of a few tiny objects
// (which zstd cannot shrink) does not decide the level of the job's next
// bundles.
func TestLevelChoiceIgnoresTinySamples(t *testing.T) {
	var l levelChoice
	tiny, err := bundle.NewBuilder(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer tiny.Close()
	if err := tiny.AddBytes(bundle.Object{Key: "a"}, []byte("x1")); err != nil {
		t.Fatal(err)
	}
	if c, err := l.choose(tiny); err != nil || c.Level != bundle.LevelStore {
		t.Fatalf("tiny bundle: %+v %v", c, err)
	}
	text, err := bundle.NewBuilder(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer text.Close()
	if err := text.AddBytes(bundle.Object{Key: "b"}, []byte(strings.Repeat(`{"level":"info","msg":"ok"}`+"\n", 20000))); err != nil {
		t.Fatal(err)
	}
	if c, err := l.choose(text); err != nil || c.Level == bundle.LevelStore {
		t.Fatalf("text after a tiny bundle: %+v %v", c, err)
	}
}

// TestUnpackOneChild: an unpack item with objects to retry and objects it
// did not get to (the job stopped) leaves one child holding its bundle,
// the next attempt with all of them, so that no sibling removes the bundle
// while another still needs it; a pack item keeps its two children.
func TestUnpackOneChild(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := queue.Connect(ctx, queue.Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	w := &Worker{opts: Options{Log: slog.New(slog.DiscardHandler), Observer: nopObserver{}, RetryBase: time.Millisecond}}
	jr := &jobRun{w: w, spec: job.Spec{ID: "j1"}}
	work := job.Work{V: job.WireVersion, Job: "j1", Kind: job.KindCopy, ID: "w1", Attempt: 2}
	out := func() *batchOut {
		return &batchOut{
			retry: []job.Obj{{K: "a", S: 1}}, retryErrs: []string{"503 Slow Down"},
			rest: []job.Obj{{K: "b", S: 2}, {K: "c", S: 3}},
		}
	}
	pub := &publisher{conn: conn, job: "j1"}
	ref := &job.BundleRef{Key: "bundles/x.ferry-bundle", ID: "x"}
	ch := out().children(jr, pub, work, ref)
	pub2 := &publisher{conn: conn, job: "j2"}
	pack := out().children(jr, pub2, job.Work{V: job.WireVersion, Job: "j2", Kind: job.KindCopy, ID: "w2", Attempt: 2}, nil)
	for _, p := range []*publisher{pub, pub2} {
		if err := p.wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(ch) != 1 || len(pack) != 2 {
		t.Fatalf("unpack item: %d children, pack item: %d; want 1 and 2", len(ch), len(pack))
	}
	// The child as published.
	stream, err := conn.JS.Stream(ctx, queue.StreamWork)
	if err != nil {
		t.Fatal(err)
	}
	m, err := stream.GetLastMsgForSubject(ctx, queue.WorkSubject("j1", job.KindCopy))
	if err != nil {
		t.Fatal(err)
	}
	var got job.Work
	if err := json.Unmarshal(m.Data, &got); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range got.Objs {
		keys = append(keys, o.K)
	}
	if got.ID != ch[0].ID || got.Attempt != 3 || got.Bundle == nil || got.Bundle.Key != ref.Key ||
		!slices.Equal(keys, []string{"a", "b", "c"}) || len(got.Errs) != 3 || got.Errs[0] != "503 Slow Down" {
		t.Fatalf("child %+v (objects %q)", got, keys)
	}
}
