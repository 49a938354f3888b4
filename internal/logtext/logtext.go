// Package logtext formats text that ends up on one line: log fields, error
// summaries, dead-letter entries and audit records, where a newline inside
// a server's error message would break a line-oriented format.
package logtext

import "strings"

// OneLine folds every run of white space in s (newlines and tabs included)
// into one space and trims both ends.
func OneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
