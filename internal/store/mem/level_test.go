package mem_test

import (
	"testing"

	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/mem"
	"github.com/ferry-dev/ferry/internal/store/storetest"
)

func TestLevelConformance(t *testing.T) {
	storetest.RunLevel(t, func(t *testing.T) store.Store { return mem.New(t.Name()) }, storetest.Options{})
}
