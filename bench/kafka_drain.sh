#!/usr/bin/env bash
# How long pickple takes to ship a Kafka backlog: writes N events with
# mirroring off (POST /api/v1/products with h2load), then starts
# pickple-kafka-dev and pickple pointed at it, and times until every event
# is acknowledged (backlog 0 in /metrics) and until every acknowledged row
# is trimmed from the outbox. Loopback only.
#
# Usage: bench/kafka_drain.sh [options]
#   --events N        backlog size (default 1000000)
#   --threads N       pickple --threads (default 2)
#   --partitions N    partitions per topic of the development broker (default 6)
#   --bin DIR         use DIR/pickple and DIR/pickple-kafka-dev; skips deps and build
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=bench/kafka_lib.sh
. bench/kafka_lib.sh

events=1000000
threads=2
partitions=6
bin_dir=
while (($# > 0)); do
  case "$1" in
    --events) positive_int "$1" "${2-}"; events=$2; shift ;;
    --threads) positive_int "$1" "${2-}"; threads=$2; shift ;;
    --partitions) positive_int "$1" "${2-}"; partitions=$2; shift ;;
    --bin) [[ -n "${2-}" ]] || die "--bin wants a directory"; bin_dir=$2; shift ;;
    -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
  shift
done
build_or_use "$bin_dir"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pickple-kafka-drain.XXXXXX")
pickple_pid=
kafka_dev_pid=
cleanup() {
  stop_pid "$pickple_pid"
  stop_pid "$kafka_dev_pid"
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port=$(free_port)
url=http://$host:$port
common=(--listen "$host:$port" --data-dir "$tmp/data" --threads "$threads")

# 1. The backlog, written with mirroring off (--sync none: how fast it is
#    written is not what is measured).
"$pickple_bin" "${common[@]}" --kafka-brokers off --sync none >"$tmp/pickple-1.log" 2>&1 &
pickple_pid=$!
wait_ready "$url" "$pickple_pid" 60 || { tail "$tmp/pickple-1.log" >&2; die "pickple did not start"; }
token=$("$pickple_bin" token --data-dir "$tmp/data" --user-id 1 --role seller)
echo "kafka_drain.sh: writing $events events (POST /api/v1/products, mirroring off)"
h2load_products "$url" "$token" "$tmp/h2load.txt" -n "$events" -c 8 -m 32
ok=$(awk '/^status codes:/ { print $3 }' "$tmp/h2load.txt")
[[ "$ok" == "$events" ]] || die "only $ok of $events requests succeeded"
stop_pid "$pickple_pid"
pickple_pid=

# 2. The broker, then pickple pointed at it: the clock runs from pickple's
#    start until the backlog is 0, then until the outbox is empty.
kport=$(free_port)
start_kafka_dev "$kport" "$partitions" "$tmp/kafka-dev.log"
t0=$(now_s)
"$pickple_bin" "${common[@]}" --kafka-brokers "$host:$kport" --sync full >"$tmp/pickple-2.log" 2>&1 &
pickple_pid=$!
wait_ready "$url" "$pickple_pid" 60 || { tail "$tmp/pickple-2.log" >&2; die "pickple did not start"; }
t_ready=$(now_s)
t_drained=
while :; do
  backlog=$(kafka_metric "$url" pickple_kafka_backlog_events)
  [[ "$backlog" != none ]] || die "no kafka metrics"
  if [[ -z "$t_drained" && "$backlog" == 0 ]]; then
    t_drained=$(now_s)
  fi
  if [[ -n "$t_drained" ]]; then
    rows=$(kafka_metric "$url" pickple_kafka_outbox_rows)
    [[ "$rows" == 0 ]] && break
  fi
  sleep 0.1
done
t_trimmed=$(now_s)
delivered=$(kafka_metric "$url" pickple_kafka_delivered_total)
drain_s=$(elapsed "$t0" "$t_drained")
rate=$(awk -v n="$delivered" -v s="$drain_s" 'BEGIN { printf "%.0f\n", n / s }')
echo "RESULT events=$delivered ready_s=$(elapsed "$t0" "$t_ready") drain_s=$drain_s" \
  "events_per_s=$rate trimmed_s=$(elapsed "$t0" "$t_trimmed") partitions=$partitions threads=$threads"
grep -E 'kafka: (backlog|shard=)' "$tmp/pickple-2.log" | head -n 5 || true
