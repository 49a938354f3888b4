// Command ferry moves object storage between S3 endpoints and local
// directories, verified. See README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/ferry-dev/ferry/internal/cli"
)

func main() {
	os.Exit(run())
}

func run() int {
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return cli.Main(ctx, os.Args[1:], cli.Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
}
