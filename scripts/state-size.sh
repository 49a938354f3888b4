#!/usr/bin/env bash
# Measures how big ferry's state directory gets: a local-to-local copy of
# N small objects (default 100,000 of 100 bytes), then `ferry job prune`
# without and with --audit. The numbers are in docs/design.md ("State that
# does not grow"). Usage: scripts/state-size.sh [N]   (needs bin/ferry: make build)
set -euo pipefail
n=${1:-100000}
ferry=${FERRY:-bin/ferry}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export FERRY_CONFIG_DIR=$work/config XDG_STATE_HOME=$work/xdg
state=$work/state
mkdir -p "$work/src"
python3 - "$work/src" "$n" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
body = b"x" * 99 + b"\n"
for i in range(n):
    d = os.path.join(root, "p%03d" % (i % 1000))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "obj-%07d" % i), "wb") as f:
        f.write(body)
PY
size() { du -sb "$1" 2>/dev/null | cut -f1 || echo 0; }
report() {
  echo "$1: state $(size "$state") bytes (jetstream $(size "$state/jetstream"), audit $(size "$state/audit"), snapshots $(size "$state/jobs"))"
}
start=$(date +%s)
"$ferry" copy "$work/src" "$work/dst" --state-dir "$state" --no-progress --json > "$work/summary.json" &
copy=$!
# The largest the queue's files got while the job ran, sampled every second,
# in all and per stream (the buckets are the KV_* streams).
peak=0
declare -A speak=()
while kill -0 "$copy" 2>/dev/null; do
  s=$(size "$state/jetstream"); s=${s:-0}
  (( s > peak )) && peak=$s
  for d in "$state"/jetstream/jetstream/*/streams/*/; do
    [[ -d $d ]] || continue
    name=$(basename "$d"); v=$(size "$d"); v=${v:-0}
    (( v > ${speak[$name]:-0} )) && speak[$name]=$v
  done
  sleep 1
done
wait "$copy"
echo "copied $n objects in $(( $(date +%s) - start ))s: $(tail -c 300 "$work/summary.json")"
echo "largest jetstream size while the job ran: $peak bytes"
for name in "${!speak[@]}"; do echo "  largest $name: ${speak[$name]} bytes"; done
report "after the job"
for d in "$state"/jetstream/jetstream/*/streams/*/; do echo "  $(basename "$d"): $(size "$d") bytes"; done
"$ferry" job prune --older-than 0s --state-dir "$state"
report "after job prune (audit log kept)"
# prune --audit would also have removed the audit log counted above.
