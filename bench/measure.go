package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
)

// Usage is what measureMain reports about the measured child.
type Usage struct {
	Wall      float64 `json:"wall_s"`
	User      float64 `json:"user_s"`
	Sys       float64 `json:"sys_s"`
	MaxRSSKiB int64   `json:"max_rss_kib"`
	Exit      int     `json:"exit"`
}

// measureMain runs `bench -measure OUT -- BIN ARGS...`: it starts BIN with
// this process's stdio and environment, waits, and writes the child's wall
// time and rusage to OUT as JSON, exiting with the child's code.
//
// Why a separate small process: Go starts children with vfork semantics
// (CLONE_VM), and Linux carries the parent's peak RSS into the child's
// ru_maxrss across exec. Spawned from the harness, every tool would report
// at least the harness's own peak RSS; spawned from this fresh, small
// process the floor is a few MiB.
func measureMain(args []string) int {
	if len(args) < 3 || args[1] != "--" {
		fmt.Fprintln(os.Stderr, "usage: bench -measure OUT -- BIN ARGS...")
		return 2
	}
	out, argv := args[0], args[2:]
	signal.Ignore(syscall.SIGINT) // the harness kills the process group
	// SIGTERM is passed on to the child (case 7 stops its workers so), and
	// this process stays to report the child's usage.
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	start := time.Now()
	err := cmd.Start()
	if err == nil {
		go func() {
			for s := range term {
				_ = cmd.Process.Signal(s)
			}
		}()
		err = cmd.Wait()
	}
	u := Usage{Wall: time.Since(start).Seconds(), Exit: -1}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		fmt.Fprintf(os.Stderr, "measure: %v\n", err)
		return 125
	}
	if ps := cmd.ProcessState; ps != nil {
		u.Exit = ps.ExitCode()
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			u.User = time.Duration(ru.Utime.Nano()).Seconds()
			u.Sys = time.Duration(ru.Stime.Nano()).Seconds()
			u.MaxRSSKiB = ru.Maxrss
		}
	}
	b, _ := json.Marshal(u)
	if err := os.WriteFile(out, b, 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "measure: %v\n", err)
		return 125
	}
	if u.Exit < 0 {
		return 125
	}
	return u.Exit
}
