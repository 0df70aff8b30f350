#!/usr/bin/env bash
# Builds bus-core's native library (cachelines.c) into $1 with the machine's gcc. Without gcc, or off x86-64, it says
# so and builds nothing: dev.jvbus.core.memory.CacheLines then reports eviction as unavailable, and the bus runs
# without it. Never fails the build for that; a compile error in the source does fail it.
set -euo pipefail
out=$1
src=$(dirname "$0")/cachelines.c
if [ "$(uname -m)" != x86_64 ]; then echo "cachelines: not built (the eviction is x86-64 only; this is $(uname -m))"; exit 0; fi
if ! command -v gcc >/dev/null; then echo "cachelines: not built (no gcc on this machine): the bus runs without cache-line eviction"; exit 0; fi
mkdir -p "$out"
lib="$out/libjvbuslines.so"
if [ -f "$lib" ] && [ "$lib" -nt "$src" ]; then exit 0; fi
gcc -O2 -Wall -Wextra -Werror -shared -fPIC -o "$lib.tmp" "$src"
mv "$lib.tmp" "$lib"
