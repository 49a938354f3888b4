// Package lister runs one listing task of a distributed job: it lists a key
// range of the source and the destination, merges them into a plan (see
// [plan.Decide]), emits copy and delete batches, and splits off sub-tasks so
// other workers list in parallel. It executes nothing: the caller (a worker
// pulling tasks from the queue) publishes what [Run] emits.
//
// # Tasks and the partition invariant
//
// A [Task] covers the keys k with Prefix as a prefix and StartAfter < k <=
// End (End "" is unbounded). Run plans every key of its range, on either
// side, exactly once, or hands it to exactly one sub-task, so a job started
// with one task for the whole location plans every key once however its
// tasks split:
//
//   - A level task (both stores implement [store.LevelLister]) lists one
//     level by delimiter. It plans the objects of the level itself and emits
//     one level task per common prefix (the union of both sides: a prefix
//     only at the destination holds deletes), restricted to the range: the
//     common prefix holding StartAfter gets that StartAfter, the one holding
//     End gets that End. Common prefixes after End are left to the task that
//     owns them.
//   - A range task lists recursively with [store.Store.List] from StartAfter
//     and stops at End. Stores without LevelLister run level tasks this way.
//   - After Options.SplitKeys keys (source and destination merged) without
//     reaching End, a task picks mid strictly between what it has handled
//     and its upper bound ([keyspace.Mid]), emits the task (mid, End], and
//     continues with End = mid. What it has handled is its last key, or, for
//     a common prefix it fanned out, every key below that prefix: mid is then
//     at least [store.PrefixEnd] of the prefix. The upper bound is End or,
//     when End is beyond the prefix, [store.PrefixEnd] of Prefix.
//
// Because the byte midpoint knows nothing of where keys are, a split probes
// the upper half with one listing per side: when neither side has a key
// there, the task emits it anyway (it is cheap and keeps the partition) and
// halves its own range again, up to a bound, so a task whose keys fill a
// small part of its range still hands half of them to another worker.
//
// A task that fails must be retried whole. A retry re-emits what the failed
// attempt emitted (batches, and sub-tasks that overlap the retry's own
// splits), so keys may be planned twice, never lost; the caller may dedupe
// emissions, which are deterministic for an unchanged listing.
package lister
