// Package fslock takes advisory whole-file locks (flock(2) on Unix) so that
// two ferry processes do not update the same secret store or append to the
// same audit log at once. On systems without flock the locks are no-ops.
package fslock

import (
	"errors"
	"os"
)

// ErrLocked is returned by [TryLock] when another process holds the lock.
var ErrLocked = errors.New("locked by another process")

// Lock blocks until it holds an exclusive lock on f. The lock is released
// when f is closed (or by [Unlock]).
func Lock(f *os.File) error { return lock(f, true) }

// TryLock takes an exclusive lock on f or fails at once with [ErrLocked].
func TryLock(f *os.File) error { return lock(f, false) }

// Unlock releases a lock taken with [Lock] or [TryLock].
func Unlock(f *os.File) error { return unlock(f) }
