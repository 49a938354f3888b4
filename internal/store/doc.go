// Package store defines ferry's object store abstraction: a [Store] rooted at
// a location lists in key order, reads, writes atomically and deletes.
// Optional capabilities are separate interfaces: [Multipart] for concurrent
// part uploads and [Copier] for server-side copies. Implementations live in
// sub-packages (s3, local, mem); storetest holds the conformance suite every
// implementation passes.
package store
