#!/usr/bin/env bash
# Write throughput with Kafka mirroring off and on, in the same run, against
# three pickple servers, runs interleaved (off, embedded broker,
# pickple-kafka-dev in its own process). The workload is sale orders
# (pickple-bench --scenario hot: one live sale, 10,000 users, every order
# accepted; 64 connections x 16 streams) or, with --workload products,
# POST /api/v1/products with h2load.
# After each run with mirroring on it waits until the backlog is shipped
# and reports how long that took, so no run pays for the previous one's
# backlog. Loopback only.
#
# Usage: bench/kafka_mirror.sh [options]
#   --runs N          runs per mode, interleaved (default 3)
#   --duration S      h2load -D per run (default 10)
#   --warm-up S       h2load --warm-up-time (default 2)
#   --clients N       h2load -c (default 64)
#   --streams N       h2load -m (default 16)
#   --threads N       pickple --threads (default 2)
#   --sync full|none  pickple --sync (default full)
#   --workload W      orders (default) or products
#   --bin DIR         use DIR/pickple and DIR/pickple-kafka-dev; skips deps and build
#                     (orders also needs DIR/bench/pickple-bench)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=bench/kafka_lib.sh
. bench/kafka_lib.sh

runs=3
duration_s=10
warm_up_s=2
clients=64
streams=16
threads=2
sync=full
bin_dir=
workload=orders
while (($# > 0)); do
  case "$1" in
    --runs) positive_int "$1" "${2-}"; runs=$2; shift ;;
    --duration) positive_int "$1" "${2-}"; duration_s=$2; shift ;;
    --warm-up) positive_int "$1" "${2-}"; warm_up_s=$2; shift ;;
    --clients) positive_int "$1" "${2-}"; clients=$2; shift ;;
    --streams) positive_int "$1" "${2-}"; streams=$2; shift ;;
    --threads) positive_int "$1" "${2-}"; threads=$2; shift ;;
    --sync) [[ "${2-}" == full || "${2-}" == none ]] || die "--sync wants full or none"; sync=$2; shift ;;
    --bin) [[ -n "${2-}" ]] || die "--bin wants a directory"; bin_dir=$2; shift ;;
    --workload) [[ "${2-}" == orders || "${2-}" == products ]] || die "--workload wants orders or products"
      workload=$2; shift ;;
    -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
  shift
done
build_or_use "$bin_dir"
bench_bin=$(dirname "$pickple_bin")/bench/pickple-bench
if [[ "$workload" == orders && ! -x "$bench_bin" ]]; then
  [[ -z "$bin_dir" ]] || die "no $bench_bin: build the pickple-bench target in $bin_dir"
  cmake --build build --parallel "$(nproc)" --target pickple-bench >&2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pickple-kafka-mirror.XXXXXX")
declare -A pids urls
kafka_dev_pid=
cleanup() {
  local m
  for m in "${!pids[@]}"; do stop_pid "${pids[$m]}"; done
  stop_pid "$kafka_dev_pid"
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

kport=$(free_port)
start_kafka_dev "$kport" 6 "$tmp/kafka-dev.log"
modes=(off embedded dev)
declare -A brokers=([off]=off [embedded]=embedded [dev]="$host:$kport")
for m in "${modes[@]}"; do
  port=$(free_port)
  urls[$m]=http://$host:$port
  "$pickple_bin" --listen "$host:$port" --data-dir "$tmp/data-$m" --threads "$threads" --sync "$sync" \
    --kafka-brokers "${brokers[$m]}" >"$tmp/pickple-$m.log" 2>&1 &
  pids[$m]=$!
  wait_ready "${urls[$m]}" "${pids[$m]}" 60 || { tail "$tmp/pickple-$m.log" >&2; die "pickple ($m) did not start"; }
done
declare -A tok
for m in "${modes[@]}"; do
  tok[$m]=$("$pickple_bin" token --data-dir "$tmp/data-$m" --user-id 1 --role seller)
done

if [[ "$workload" == orders ]]; then
  echo "kafka_mirror.sh: pickple-bench --scenario hot -c $clients -m $streams -d $duration_s -w $warm_up_s" \
    "(sale orders/s), $runs runs per mode, interleaved; pickple --threads $threads --sync $sync"
else
  echo "kafka_mirror.sh: h2load -c $clients -m $streams -D $duration_s --warm-up-time $warm_up_s POST" \
    "/api/v1/products, $runs runs per mode, interleaved; pickple --threads $threads --sync $sync"
fi
: >"$tmp/rps"
for ((run = 1; run <= runs; run++)); do
  for m in "${modes[@]}"; do
    if [[ "$workload" == orders ]]; then
      out=$tmp/bench-$m-$run.json
      timeout 600 "$bench_bin" --url "${urls[$m]}" --scenario hot --data-dir "$tmp/data-$m" -c "$clients" \
        -m "$streams" -d "$duration_s" -w "$warm_up_s" --json >"$out" 2>"$tmp/bench-$m-$run.err" ||
        { tail -n 20 "$tmp/bench-$m-$run.err" >&2; die "pickple-bench failed ($m, run $run)"; }
      read -r rps ok bad p99 < <(python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
st = r.get("status", {})
print("%.1f" % r["accepted_per_s"], st.get("201", 0), sum(v for k, v in st.items() if k != "201"),
      r["accepted_latency_ms"]["p99"])' "$out")
      line="RESULT mode=$m run=$run rps=$rps 201=$ok other=$bad p99_ms=$p99"
    else
      out=$tmp/h2load-$m-$run.txt
      h2load_products "${urls[$m]}" "${tok[$m]}" "$out" -c "$clients" -m "$streams" -D "$duration_s" \
        --warm-up-time "$warm_up_s"
      rps=$(awk '/^finished in/ { print $4 }' "$out")
      ok=$(awk '/^status codes:/ { print $3 }' "$out")
      bad=$(awk '/^status codes:/ { print $9 + $11 }' "$out")
      max_req=$(awk '/^time for request:/ { print $5 }' "$out")
      line="RESULT mode=$m run=$run rps=$rps 2xx=$ok non2xx=$bad max_request=$max_req"
    fi
    if [[ "$m" != off ]]; then
      t0=$(now_s)
      left=$(kafka_metric "${urls[$m]}" pickple_kafka_backlog_events)
      while [[ "$(kafka_metric "${urls[$m]}" pickple_kafka_backlog_events)" != 0 ]]; do sleep 0.05; done
      line+=" backlog_at_end=$left drained_after_s=$(elapsed "$t0" "$(now_s)")"
    fi
    echo "$line"
    echo "$m $rps" >>"$tmp/rps"
  done
done

median() {
  awk -v t="$1" '$1 == t { print $2 }' "$tmp/rps" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
off_median=$(median off)
for m in "${modes[@]}"; do
  med=$(median "$m")
  echo "RESULT mode=$m stat=median runs=$runs rps=$med vs_off=$(awk -v a="$med" -v b="$off_median" \
    'BEGIN { printf "%.3f\n", a / b }')"
done
