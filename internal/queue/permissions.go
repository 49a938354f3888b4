package queue

import (
	"fmt"
	"io"
	"strings"
)

// Role is what a NATS user does for ferry: [Coordinator] or [Worker].
type Role string

// Roles for [Permissions].
const (
	// Coordinator creates and runs jobs (copy, sync, job, dlq, ui): it
	// creates and manages ferry's streams and buckets, and nothing else.
	Coordinator Role = "coordinator"
	// Worker runs work (ferry worker): it takes work from FERRY_WORK,
	// publishes results, dead letters, held deletes and the work it finds
	// while listing, reads the jobs (and may pause one) and the ledger,
	// and keeps resumable uploads. It cannot create, delete or purge a
	// stream, take a job's lock, or read the results and dead letters.
	Worker Role = "worker"
)

// kvStream is the stream behind a key-value bucket.
func kvStream(bucket string) string { return "KV_" + bucket }

// Permissions returns the subjects a role may publish to and subscribe
// to on a NATS server: ferry's subjects and the JetStream API subjects
// of ferry's streams and buckets, nothing more. NATS wildcards are whole
// tokens, so every stream is named.
func Permissions(r Role) (publish, subscribe []string) {
	api := func(verbs []string, streams ...string) {
		for _, s := range streams {
			for _, v := range verbs {
				publish = append(publish, "$JS.API."+v+"."+s)
			}
		}
	}
	consumer := func(streams ...string) {
		for _, s := range streams {
			publish = append(publish,
				"$JS.API.CONSUMER.CREATE."+s, "$JS.API.CONSUMER.CREATE."+s+".>",
				"$JS.API.CONSUMER.INFO."+s+".*", "$JS.API.CONSUMER.DELETE."+s+".*",
				"$JS.API.CONSUMER.MSG.NEXT."+s+".*",
				"$JS.ACK."+s+".>", "$JS.FC."+s+".>")
		}
	}
	kv := func(buckets ...string) {
		for _, b := range buckets {
			publish = append(publish, "$KV."+b+".>")
		}
	}
	get := func(streams ...string) {
		for _, s := range streams {
			publish = append(publish, "$JS.API.DIRECT.GET."+s, "$JS.API.DIRECT.GET."+s+".>", "$JS.API.STREAM.MSG.GET."+s)
		}
	}
	publish = append(publish, "$JS.API.INFO")
	streams := []string{StreamWork, StreamResults, StreamDLQ, StreamDeletes}
	buckets := []string{BucketJobs, BucketUploads, BucketLocks, BucketLedger}
	var kvs []string
	for _, b := range buckets {
		kvs = append(kvs, kvStream(b))
	}
	switch r {
	case Coordinator:
		publish = append(publish, "ferry.>")
		kv(buckets...)
		all := append(append([]string{}, streams...), kvs...)
		api([]string{"STREAM.INFO", "STREAM.CREATE", "STREAM.UPDATE", "STREAM.PURGE", "STREAM.MSG.DELETE",
			"CONSUMER.LIST", "CONSUMER.NAMES"}, all...)
		for _, s := range all {
			publish = append(publish, "$JS.API.CONSUMER.DURABLE.CREATE."+s+".*")
		}
		get(all...)
		consumer(all...)
	case Worker:
		publish = append(publish, "ferry.work.>", "ferry.results.>", "ferry.dlq.>", "ferry.deletes.>")
		kv(BucketJobs, BucketUploads)
		all := append(append([]string{}, streams...), kvs...)
		api([]string{"STREAM.INFO"}, all...)
		get(kvStream(BucketJobs), kvStream(BucketUploads), kvStream(BucketLedger))
		publish = append(publish, "$JS.API.CONSUMER.INFO."+StreamWork+".*", "$JS.API.CONSUMER.MSG.NEXT."+StreamWork+".*", "$JS.ACK."+StreamWork+".>")
		consumer(kvStream(BucketJobs), kvStream(BucketUploads))
	}
	return publish, []string{"_INBOX.>"}
}

// WritePermissions writes a nats-server authorization block: one
// permission set per role, and users with those permissions (the nkeys
// given, else placeholders to replace).
func WritePermissions(w io.Writer, coordinators, workers []string) error {
	var b strings.Builder
	b.WriteString("# ferry's least-privilege NATS permissions ('ferry nats-permissions'; docs/security.md).\n")
	b.WriteString("# Include this in the nats-server configuration (its JetStream enabled) and give each\n")
	b.WriteString("# user its nkey seed: ferry --nats-nkey FILE. Run a coordinator command first\n")
	b.WriteString("# (ferry job list --nats URL) so that ferry's streams exist: workers cannot create them.\n")
	for _, r := range []Role{Coordinator, Worker} {
		pub, sub := Permissions(r)
		fmt.Fprintf(&b, "FERRY_%s = {\n  publish: {\n    allow: [\n", strings.ToUpper(string(r)))
		for _, s := range pub {
			fmt.Fprintf(&b, "      %q\n", s)
		}
		b.WriteString("    ]\n  }\n  subscribe: {\n    allow: [\n")
		for _, s := range sub {
			fmt.Fprintf(&b, "      %q\n", s)
		}
		b.WriteString("    ]\n  }\n}\n")
	}
	if len(coordinators) == 0 || len(workers) == 0 {
		b.WriteString("# Replace the placeholder keys with the users' public nkeys ('nk -gen user -pubout'):\n")
		b.WriteString("# nats-server refuses this file until then.\n")
	}
	if len(coordinators) == 0 {
		coordinators = []string{"UCOORDINATOR_NKEY_REPLACE_ME"}
	}
	if len(workers) == 0 {
		workers = []string{"UWORKER_NKEY_REPLACE_ME"}
	}
	b.WriteString("authorization {\n  users: [\n")
	for _, k := range coordinators {
		fmt.Fprintf(&b, "    { nkey: %q, permissions: $FERRY_COORDINATOR }\n", k)
	}
	for _, k := range workers {
		fmt.Fprintf(&b, "    { nkey: %q, permissions: $FERRY_WORKER }\n", k)
	}
	b.WriteString("  ]\n}\n")
	_, err := io.WriteString(w, b.String())
	return err
}
