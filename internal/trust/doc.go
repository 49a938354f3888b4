// Package trust signs what ferry puts on the queue and checks what it takes
// off it. The queue is a control channel: a work message names stores to
// read and write, so a worker runs only work signed by a key it trusts.
//
// Every message ferry publishes (work, results, dead letters, held
// deletes) carries two headers: [HeaderKey], the signer's ed25519 public
// key as [PublicKey.String] prints it, and [HeaderSig], the base64
// signature over
//
//	"ferry-sig-v1\n" + subject + "\n" + job ID + "\n" + body
//
// so a message moved to another subject or replayed into another job, or a
// body changed by one byte, fails verification. A job's spec is signed the
// same way with the subject "spec". Batches are signed whole: one
// signature per message, not per object.
//
// A [Signer] holds this machine's private key (kept in ferry's secret store
// by [LoadOrCreate]); a [Set] holds the public keys a process trusts, its
// own always among them. Both are safe for concurrent use.
package trust
