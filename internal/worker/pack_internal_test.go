package worker

import (
	"crypto/rand"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-dev/ferry/internal/bundle"
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
