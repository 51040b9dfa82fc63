#!/usr/bin/env bash
# HTTP/2 throughput of pickple against Debian's h2o serving a static file,
# measured with h2load over cleartext HTTP/2 (h2c, prior knowledge) on
# loopback only. See bench/README.md for how to read the output.
#
# Usage: bench/http.sh [options]
#   --runs N          measurements per target, interleaved (default 3)
#   --duration S      h2load main duration per run in seconds (default 10)
#   --warm-up S       h2load warm-up per run in seconds (default 2)
#   --clients N       h2load -c (default 64)
#   --streams N       h2load -m, concurrent streams per client (default 16)
#   --threads N       pickple --threads and h2o num-threads (default 2)
#   --targets LIST    comma-separated subset of healthz,users_me,h2o_static
#                     (default: all three)
#   --bin PATH        benchmark this pickple binary; skips deps and build
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

runs=3
duration_s=10
warm_up_s=2
clients=64
streams=16
threads=2
pickple_bin=
target_list=healthz,users_me,h2o_static
host=127.0.0.1 # loopback only, by design: never point this at another host

die() {
  echo "http.sh: $*" >&2
  exit 1
}

positive_int() {
  [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "$1 wants a positive integer, got '$2'"
}

while (($# > 0)); do
  case "$1" in
    --runs) positive_int "$1" "${2-}"; runs=$2; shift ;;
    --duration) positive_int "$1" "${2-}"; duration_s=$2; shift ;;
    --warm-up) positive_int "$1" "${2-}"; warm_up_s=$2; shift ;;
    --clients) positive_int "$1" "${2-}"; clients=$2; shift ;;
    --streams) positive_int "$1" "${2-}"; streams=$2; shift ;;
    --threads) positive_int "$1" "${2-}"; threads=$2; shift ;;
    --bin) [[ -n "${2-}" ]] || die "--bin wants a path"; pickple_bin=$2; shift ;;
    --targets) target_list=${2-}; shift ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
  shift
done

IFS=, read -r -a targets <<<"$target_list"
((${#targets[@]} > 0)) || die "--targets is empty"
with_pickple=0
with_h2o=0
with_users_me=0
for target in "${targets[@]}"; do
  case "$target" in
    healthz) with_pickple=1 ;;
    users_me) with_pickple=1; with_users_me=1 ;;
    h2o_static) with_h2o=1 ;;
    *) die "unknown target '$target' (healthz, users_me, h2o_static)" ;;
  esac
done

# --- build --------------------------------------------------------------

if [[ -z "$pickple_bin" ]]; then
  scripts/deps.sh --bench >&2
  if ((with_pickple)); then
    # run.sh configures and builds build/ and then execs the binary; asking
    # it for --version builds and proves the binary starts.
    scripts/run.sh --version >&2
  fi
  pickple_bin=$root/build/pickple
fi
if ((with_pickple)); then
  [[ -x "$pickple_bin" ]] || die "no executable pickple at $pickple_bin"
fi
command -v h2load >/dev/null || die "h2load missing: run scripts/deps.sh"

h2o_bin=
if ((with_h2o)); then
  if [[ -x /usr/sbin/h2o ]]; then
    h2o_bin=/usr/sbin/h2o
  else
    h2o_bin=$(command -v h2o || true)
  fi
  [[ -n "$h2o_bin" ]] || die "h2o missing: run scripts/deps.sh --bench"
fi

# --- processes and cleanup ----------------------------------------------

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pickple-bench.XXXXXX")
pickple_pid=
h2o_pid=

stop_pid() {
  local pid=$1 i
  [[ -n "$pid" ]] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  stop_pid "$pickple_pid"
  stop_pid "$h2o_pid"
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A free loopback port, chosen by the kernel. Another process could take it
# before the server binds; the readiness checks below would then fail loudly.
free_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# wait_for URL PID SECONDS: polls until URL answers 200 or PID dies.
wait_for() {
  local url=$1 pid=$2 limit_s=$3 i
  for ((i = 0; i < limit_s * 10; i++)); do
    if curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# Fails unless URL is answered over HTTP/2 with prior knowledge, as h2load
# will speak to it.
check_h2c() {
  local url=$1 version
  version=$(curl -sS --http2-prior-knowledge --max-time 5 -o /dev/null \
    -w '%{http_version}' "$url") || die "no answer over h2c from $url"
  [[ "$version" == 2 ]] || die "$url answered HTTP/$version, not h2c"
}

# --- pickple --------------------------------------------------------------

pickple_url=
token=
if ((with_pickple)); then
  pickple_port=$(free_port)
  pickple_url=http://$host:$pickple_port
  admin_password=bench-admin-password
  "$pickple_bin" --listen "$host:$pickple_port" --data-dir "$tmp/data" \
    --threads "$threads" --kafka-brokers off --admin-password "$admin_password" \
    --sync full >"$tmp/pickple.log" 2>&1 &
  pickple_pid=$!
  if ! wait_for "$pickple_url/readyz" "$pickple_pid" 60; then
    tail -n 30 "$tmp/pickple.log" >&2 || true
    die "pickple did not become ready on $pickple_url"
  fi
  check_h2c "$pickple_url/healthz"
fi

# post PATH JSON: prints the body of a 2xx answer, fails on anything else.
post() {
  curl -sS --fail-with-body --max-time 10 -H 'content-type: application/json' \
    --data "$2" "$pickple_url$1"
}

if ((with_users_me)); then
  user=bench_$$
  password=bench-password-$$
  post /api/v1/auth/sign-up \
    "{\"username\":\"$user\",\"password\":\"$password\",\"email\":\"$user@example.invalid\"}" \
    >/dev/null || die "sign-up failed"
  token=$(post /api/v1/auth/sign-in "{\"username\":\"$user\",\"password\":\"$password\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])') ||
    die "sign-in failed"
  [[ -n "$token" ]] || die "sign-in returned no token"
  me_status=$(curl -sS -o /dev/null -w '%{http_code}' -H "authorization: Bearer $token" \
    "$pickple_url/api/v1/users/me")
  [[ "$me_status" == 200 ]] || die "GET /api/v1/users/me answered $me_status"
fi

# --- h2o ----------------------------------------------------------------

h2o_port=
if ((with_h2o)); then
  h2o_port=$(free_port)
  mkdir -p "$tmp/static"
  printf '0123456789abcdefghi\n' >"$tmp/static/file.txt" # 20 bytes
  # h2o started as root drops to user nobody, which must read the files.
  chmod a+rx "$tmp" "$tmp/static"
  chmod a+r "$tmp/static/file.txt"
  cat >"$tmp/h2o.conf" <<CONF
listen:
  host: $host
  port: $h2o_port
num-threads: $threads
error-log: $tmp/h2o-error.log
hosts:
  default:
    paths:
      "/":
        file.dir: $tmp/static
CONF
  "$h2o_bin" -c "$tmp/h2o.conf" >"$tmp/h2o.log" 2>&1 &
  h2o_pid=$!
  if ! wait_for "http://$host:$h2o_port/file.txt" "$h2o_pid" 30; then
    cat "$tmp/h2o.log" "$tmp/h2o-error.log" >&2 2>/dev/null || true
    die "h2o did not start on port $h2o_port"
  fi
  check_h2c "http://$host:$h2o_port/file.txt"
fi

# --- measurements -------------------------------------------------------

# run_h2load TARGET RUN: one bounded h2load run; prints a RESULT line and
# appends "TARGET RPS" to $tmp/rps.
run_h2load() {
  local target=$1 run=$2 out rps succeeded failed ok2xx
  local args=(-c "$clients" -m "$streams" -D "$duration_s" --warm-up-time "$warm_up_s")
  case "$target" in
    healthz) args+=("$pickple_url/healthz") ;;
    users_me) args+=(-H "authorization: Bearer $token" "$pickple_url/api/v1/users/me") ;;
    h2o_static) args+=("http://$host:$h2o_port/file.txt") ;;
  esac
  out=$tmp/h2load-$target-$run.txt
  if ! timeout $((duration_s + warm_up_s + 60)) h2load "${args[@]}" >"$out" 2>&1; then
    tail -n 20 "$out" >&2
    die "h2load failed for $target run $run"
  fi
  rps=$(awk '/^finished in/ { print $4 }' "$out")
  succeeded=$(awk '/^requests:/ { print $8 }' "$out")
  failed=$(awk '/^requests:/ { print $10 + $12 + $14 }' "$out")
  ok2xx=$(awk '/^status codes:/ { print $3 }' "$out")
  [[ -n "$rps" ]] || die "could not read req/s from h2load output ($out)"
  echo "RESULT target=$target run=$run rps=$rps succeeded=$succeeded 2xx=$ok2xx failed=$failed"
  if [[ "${ok2xx:-0}" != "${succeeded:-0}" || "${failed:-0}" != 0 ]]; then
    echo "http.sh: warning: $target run $run had non-2xx or failed requests" >&2
  fi
  echo "$target $rps" >>"$tmp/rps"
}

echo "http.sh: h2load -c $clients -m $streams -D $duration_s --warm-up-time $warm_up_s," \
  "$runs runs per target, interleaved; pickple --threads $threads --sync full"
: >"$tmp/rps"
for ((run = 1; run <= runs; run++)); do
  for target in "${targets[@]}"; do
    run_h2load "$target" "$run"
  done
done

median() {
  awk -v t="$1" '$1 == t { print $2 }' "$tmp/rps" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

declare -A medians
for target in "${targets[@]}"; do
  medians[$target]=$(median "$target")
  echo "RESULT target=$target stat=median runs=$runs rps=${medians[$target]}"
done

ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f\n", a / b; else print "nan" }'
}
if ((with_h2o)); then
  for target in "${targets[@]}"; do
    [[ "$target" != h2o_static ]] || continue
    echo "RESULT ratio=$target/h2o_static value=$(ratio "${medians[$target]}" "${medians[h2o_static]}")"
  done
fi

echo
printf '%-12s' target
for ((run = 1; run <= runs; run++)); do printf ' %12s' "run$run"; done
printf ' %12s %10s\n' median "vs h2o"
for target in "${targets[@]}"; do
  printf '%-12s' "$target"
  awk -v t="$target" '$1 == t { printf " %12.0f", $2 }' "$tmp/rps"
  vs=-
  if ((with_h2o)) && [[ "$target" != h2o_static ]]; then
    vs=$(ratio "${medians[$target]}" "${medians[h2o_static]}")
  fi
  printf ' %12.0f %10s\n' "${medians[$target]}" "$vs"
done
echo "(req/s; h2load -c $clients -m $streams over h2c on loopback)"

# --- metrics --------------------------------------------------------------

((with_pickple)) || exit 0
metrics_status=$(curl -sS -o "$tmp/metrics.txt" -w '%{http_code}' --max-time 5 \
  "$pickple_url/metrics" || true)
if [[ "$metrics_status" == 200 ]]; then
  echo
  echo "# /metrics, group commit:"
  grep -E '^pickple_commit_batch' "$tmp/metrics.txt" ||
    echo "# (no pickple_commit_batch series exposed)"
else
  echo "# /metrics answered ${metrics_status:-nothing}; skipped"
fi
