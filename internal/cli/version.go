package cli

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// Version is the semantic version, set by the build:
//
//	-ldflags "-X github.com/ferry-dev/ferry/internal/cli.Version=v1.2.3"
//
// (the Makefile does this from 'git describe'). When it is not set, the
// module version 'go install ...@v1.2.3' records is used.
var Version = ""

// Commit is the VCS revision, set by the build like Version; the
// revision the Go toolchain records (vcs.revision) takes precedence.
var Commit = ""

// devVersion is the version of a build that knows no other.
const devVersion = "v0.0.0-dev"

// buildInfo is what 'ferry version' prints.
type buildInfo struct {
	Version  string
	Commit   string // "" when unknown
	Modified bool   // built from a work tree with uncommitted changes
	Go       string
	Platform string
}

// readBuildInfo combines the ldflags Version with what the Go toolchain
// records in the binary (module version, VCS revision, Go version).
func readBuildInfo() buildInfo {
	b := buildInfo{Version: Version, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		if b.Version == "" || b.Version == "dev" {
			if v := bi.Main.Version; v != "" && v != "(devel)" {
				b.Version = v
			}
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Commit = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
		if bi.GoVersion != "" {
			b.Go = bi.GoVersion
		}
	}
	if b.Version == "" || b.Version == "dev" {
		b.Version = devVersion
	}
	if b.Commit == "" {
		b.Commit = Commit
	}
	return b
}

// String renders "ferry v1.2.3 (commit 0123456789ab, go1.26.0 linux/amd64)".
func (b buildInfo) String() string {
	commit := b.Commit
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if commit == "" {
		commit = "unknown"
	}
	if b.Modified {
		commit += ", modified"
	}
	return fmt.Sprintf("ferry %s (commit %s, %s %s)", b.Version, commit, b.Go, b.Platform)
}

func newVersionCmd(stdio Stdio) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print ferry's version, commit and Go version",
		Example: "  ferry version\n  ferry --version",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(*cobra.Command, []string) error {
			_, err := io.WriteString(stdio.Out, readBuildInfo().String()+"\n")
			return err
		},
	}
}

// versionTemplate is the root's --version output: the same line.
func versionTemplate() string {
	return strings.ReplaceAll(readBuildInfo().String(), "{{", "{{`{{`}}") + "\n"
}
