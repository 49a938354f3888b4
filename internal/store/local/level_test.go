package local_test

import (
	"testing"

	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/storetest"
)

func TestLevelConformance(t *testing.T) {
	opts := storetest.Options{NoETag: true, ModTime: true, NoMetadata: true}
	storetest.RunLevel(t, func(t *testing.T) store.Store {
		s, _ := newStore(t)
		return s
	}, opts)
}
