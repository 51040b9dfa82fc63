# shellcheck shell=bash
# Helpers shared by bench/kafka_drain.sh and bench/kafka_mirror.sh (sourced,
# not run; the caller sets $tmp). Loopback only.
# shellcheck disable=SC2034,SC2154 # pickple_bin, kafka_dev_pid are for the caller; tmp is the caller's

host=127.0.0.1

die() {
  echo "${0##*/}: $*" >&2
  exit 1
}

positive_int() {
  [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "$1 wants a positive integer, got '$2'"
}

# build_or_use DIR: sets pickple_bin and kafka_dev_bin; builds build/ when
# DIR is empty (after scripts/deps.sh --bench), else uses DIR as is.
build_or_use() {
  local dir=$1
  if [[ -z "$dir" ]]; then
    scripts/deps.sh --bench >&2
    cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
    cmake --build build --parallel "$(nproc)" --target pickple pickple-kafka-dev >&2
    dir=build
  fi
  pickple_bin=$(cd "$dir" && pwd)/pickple
  kafka_dev_bin=$(cd "$dir" && pwd)/pickple-kafka-dev
  [[ -x "$pickple_bin" && -x "$kafka_dev_bin" ]] || die "no pickple and pickple-kafka-dev in $dir"
  command -v h2load >/dev/null || die "h2load missing: run scripts/deps.sh"
}

free_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

stop_pid() {
  local pid=$1 i
  [[ -n "$pid" ]] || return 0
  kill -CONT "$pid" 2>/dev/null || true
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 300; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# wait_ready URL PID SECONDS
wait_ready() {
  local url=$1 pid=$2 limit_s=$3 i
  for ((i = 0; i < limit_s * 20; i++)); do
    curl -fsS -o /dev/null --max-time 1 "$url/readyz" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# kafka_metric URL NAME: the sum over shards of a pickple_kafka_* series.
kafka_metric() {
  curl -fsS --max-time 5 "$1/metrics" | awk -v n="$2" '$1 ~ "^" n "[{ ]" || $1 == n { s += $2; f = 1 }
    END { if (f) print s; else print "none" }'
}

now_s() {
  date +%s.%N
}

elapsed() {
  awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", b - a }'
}

# start_kafka_dev PORT PARTITIONS LOG: starts pickple-kafka-dev, sets kafka_dev_pid.
start_kafka_dev() {
  "$kafka_dev_bin" --listen "$host:$1" --partitions "$2" >"$3.out" 2>"$3" &
  kafka_dev_pid=$!
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -s "$3.out" ]] && return 0
    sleep 0.05
  done
  die "pickple-kafka-dev did not start ($3)"
}

# h2load_products URL TOKEN OUT ARGS...: POST /api/v1/products with h2load.
h2load_products() {
  local url=$1 token=$2 out=$3
  shift 3
  printf '{"name":"bench","price":100,"stock":5}' >"$tmp/product.json"
  timeout 3600 h2load "$@" -d "$tmp/product.json" -H 'content-type: application/json' \
    -H "authorization: Bearer $token" "$url/api/v1/products" >"$out" 2>&1 ||
    { tail -n 20 "$out" >&2; die "h2load failed ($out)"; }
}
