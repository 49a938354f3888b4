// Package mem implements [store.Store] and [store.Multipart] in memory, for
// unit tests of the logic above the stores.
//
// Like S3 it keeps keys sorted in byte order, reports MD5 ETags ("<hex>" for
// a Put, "<hex of the MD5 of the parts' MD5s>-N" for a multipart upload),
// checks CRC32C and Content-MD5 checksums, and treats keys as opaque strings
// (no path rules; a key ending in "/" is a directory marker only by
// convention). Tests can inject errors with [Store.SetFault], control time
// with [Store.SetClock] and count calls with [Store.Calls].
package mem
