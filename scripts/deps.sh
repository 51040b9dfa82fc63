#!/usr/bin/env bash
# Installs, from Debian's archive with apt-get only, every package pickple
# needs to build and test (and, with --bench, to run bench/run and
# bench/http.sh: h2o, redis-server with redis-benchmark, gnuplot).
# Idempotent: packages already installed are left alone, and `apt-get update`
# runs only when something is missing.
#
# Usage: scripts/deps.sh [--bench]
set -euo pipefail

usage() {
  echo "usage: scripts/deps.sh [--bench]" >&2
}

with_bench=0
for arg in "$@"; do
  case "$arg" in
    --bench) with_bench=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "deps.sh: unknown option: $arg" >&2; usage; exit 2 ;;
  esac
done

build_packages=(
  build-essential cmake pkg-config
  libh2o-evloop-dev libh2o-dev-common libssl-dev libck-dev libjemalloc-dev
  libmsgpack-dev liblmdb-dev librdkafka-dev libjansson-dev libnghttp2-dev
)
test_packages=(python3 curl nghttp2-client kcat lmdb-utils)
bench_packages=(h2o redis-server redis-tools gnuplot-nox)

wanted=("${build_packages[@]}" "${test_packages[@]}")
if ((with_bench)); then
  wanted+=("${bench_packages[@]}")
fi

# A package counts as present only when dpkg says it is fully installed
# ("install ok installed"); half-configured or removed-with-config packages
# are reinstalled.
missing=()
for pkg in "${wanted[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "deps.sh: all ${#wanted[@]} packages present"
  exit 0
fi

as_root=()
if ((EUID != 0)); then
  if command -v sudo >/dev/null 2>&1; then
    # Ask for a password only when someone is there to type it.
    if [[ -t 0 ]]; then as_root=(sudo); else as_root=(sudo -n); fi
  else
    echo "deps.sh: missing packages (${missing[*]}) and not root, no sudo" >&2
    exit 1
  fi
fi

echo "deps.sh: installing ${missing[*]}"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "deps.sh: done"
