// Package testenv starts the real servers ferry's tests run against and
// creates what they need: a MinIO subprocess per test ([StartMinIO]), TLS
// certificates from a throwaway CA ([NewCA]), AWS shared credentials and
// config files ([WriteCredentialsFile]), and a reverse proxy in front of a
// MinIO that makes it answer like another S3-compatible server
// ([StartS3Proxy], [RawListKeys]).
//
// External binaries are pinned and installed by scripts/install-tools.sh into
// $FERRY_TOOLS_DIR (default $HOME/.cache/ferry/tools). When a binary is
// missing, a test is skipped on a laptop but fails when $CI is set: CI must
// never silently skip a real-server test.
//
// Every helper takes a [testing.TB], calls t.Helper, fails the test on error
// and releases what it started with t.Cleanup. Servers listen on 127.0.0.1
// only.
package testenv
