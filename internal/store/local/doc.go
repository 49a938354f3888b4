// Package local implements [store.Store] and [store.Multipart] on a local
// directory.
//
// Keys are slash-separated paths relative to the root directory. Regular files
// are objects; an empty directory is a directory marker ("dir/", size 0).
// Symbolic links, special files, names that are not valid UTF-8 and ferry's
// own temporary files (".ferry-tmp-*") are never listed.
//
// # Listing order
//
// [Store.List] yields keys in ascending byte order of the whole key, the order
// of S3. A sorted directory walk is not enough: "a-b" sorts before "a/b"
// because '-' < '/', so each directory's entries are sorted with directory
// names compared as name+"/". The walk streams: it holds the sorted names of
// the directories along the current path, never the whole listing, and skips
// subtrees that lie entirely outside ListOptions.Prefix or at or before
// ListOptions.StartAfter.
//
// # Safety
//
// Every operation validates its key (see [SafePath]): keys with NUL, empty,
// "." or ".." segments, a leading "/", or a segment starting with
// ".ferry-tmp-" are rejected with an error wrapping [store.ErrUnsafeKey]; keys
// that are not valid UTF-8 or longer than 1024 bytes with
// [store.ErrInvalidKey]. All file system access goes through an [os.Root], so
// nothing outside the root directory is ever read, created or replaced, and
// every directory on a key's path is opened without following symbolic
// links: a symlink (or a file) where a directory is expected fails with
// [store.ErrUnsafeKey].
//
// # Atomic writes
//
// [Store.Put] writes a temporary file ".ferry-tmp-<random>" beside the final
// name, checks the optional CRC32C and MD5, syncs it, sets its modification
// time, stores the metadata, renames it over the final name and syncs the
// directory. A failed Put removes the temporary file; readers never see a
// partial object. Multipart uploads write their parts concurrently into one
// temporary file at (n-1)*PartSize and rename it on completion.
//
// # Metadata
//
// Content headers, user metadata, tags and the object's CRC32C are kept as
// JSON in the extended attribute "user.ferry.meta". This is best effort: on a
// file system without user extended attributes they are dropped, with one
// warning per [Store]. The stored CRC32C is reported by Stat only while the
// file's size and modification time are those it was written with.
package local
