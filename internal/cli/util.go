package cli

import (
	"context"
	"io"
	"iter"
	"os"

	"github.com/ferry-dev/ferry/internal/store"
)

// readable checks that path is a readable regular file.
func readable(path string) (os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, unwrapPath(err)
	}
	defer f.Close()
	return f.Stat()
}

// emptyStore stands in for a local destination that a dry run does not
// create: it lists nothing. Only List and String are ever called.
type emptyStore struct {
	store.Store
	name string
}

func (e emptyStore) List(context.Context, store.ListOptions) iter.Seq2[store.Object, error] {
	return func(func(store.Object, error) bool) {}
}

func (e emptyStore) String() string { return e.name }

var _ io.Writer = (*console)(nil)
