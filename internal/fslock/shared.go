package fslock

import "os"

// TryLockShared takes a shared lock on f (many holders at once, none while
// an exclusive lock is held) or fails at once with [ErrLocked].
func TryLockShared(f *os.File) error { return lockShared(f) }
