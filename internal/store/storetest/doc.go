// Package storetest is the conformance suite every [store.Store] passes:
// the in-memory, local and S3 stores run [Run] from their own tests.
//
// The suite checks listing order (byte order of the whole key, with tricky
// keys), pagination, Prefix and StartAfter, directory markers, reads of whole
// objects and ranges, metadata, content headers and tags, checksum rejection,
// missing keys, deletes, overwrites, empty objects, multipart uploads (when
// the store implements [store.Multipart]) and the early stop and
// cancellation of listings. Each subtest gets a fresh store from the
// caller's constructor, so a shared backend only needs a unique prefix per
// call.
package storetest
