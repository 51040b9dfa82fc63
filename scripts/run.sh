#!/usr/bin/env bash
# Installs what is missing, builds pickple (RelWithDebInfo) into build/ and
# runs it with the given options; without options the defaults apply
# (127.0.0.1:8080, ./pickple-data, embedded Kafka). See docs for the options.
#
# Usage: scripts/run.sh [pickple options...]
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

scripts/deps.sh >&2
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
cmake --build build --parallel "$(nproc)" --target pickple >&2
exec build/pickple "$@"
