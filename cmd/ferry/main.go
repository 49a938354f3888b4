// Command ferry moves object storage between S3 endpoints and local
// directories, verified. See README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"

	"github.com/ferry-dev/ferry/internal/cli"
	"github.com/ferry-dev/ferry/internal/transfer"
)

// gcPercent and memoryHeadroom tune the collector unless GOGC / GOMEMLIMIT
// say otherwise. Small-object copies allocate a lot of short-lived garbage
// (SDK requests and responses) over a small live heap, so the default
// GOGC=100 collects every few MiB; 400 collects a quarter as often. The soft
// memory limit (the transfer buffer budget plus headroom for everything
// else) makes the collector work harder before the heap outgrows what the
// budget promises, so large copies stay bounded as before.
const (
	gcPercent      = 400
	memoryHeadroom = 256 << 20
)

func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(transfer.DefaultMemoryLimit + memoryHeadroom)
	}
}

func main() {
	os.Exit(run())
}

func run() int {
	tuneGC()
	// FERRY_CPUPROFILE=FILE writes a CPU profile of the whole run (for
	// docs/performance.md work).
	if path := os.Getenv("FERRY_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "ferry: FERRY_CPUPROFILE: %v\n", err)
			return cli.ExitUsage
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(os.Stderr, "ferry: FERRY_CPUPROFILE: %v\n", err)
			return cli.ExitUsage
		}
		defer pprof.StopCPUProfile()
	}
	// FERRY_MEMPROFILE=FILE writes the allocation profile of the whole run
	// when it ends (what was allocated where: go tool pprof -sample_index
	// alloc_space or alloc_objects).
	if path := os.Getenv("FERRY_MEMPROFILE"); path != "" {
		defer func() {
			if err := writeAllocs(path); err != nil {
				fmt.Fprintf(os.Stderr, "ferry: FERRY_MEMPROFILE: %v\n", err)
			}
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return cli.Main(ctx, os.Args[1:], cli.Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
}

func writeAllocs(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
