// Package uitest holds ferry's dashboard test in a real headless browser
// (Debian's chromium, driven by chromedp). It is a module of its own so
// chromedp stays out of ferry's go.mod; it builds the ferry binary from the
// parent directory and runs a real job with --ui-addr. Run it with
// `make test-ui`.
package uitest
