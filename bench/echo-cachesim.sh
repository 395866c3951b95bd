#!/usr/bin/env bash
# The echo server's user-space work per round trip under callgrind's cache model: instructions
# and cache misses, deterministic where the machine's timings swing ±10% from run to run.
#
#   bench/echo-cachesim.sh [gorust|readable|futures|eventloop|tokio] [connections] [message bytes]
#
# The model's last level is set to this machine's L2 (1 MiB, 8-way; until session 30 it was
# 512 KiB, which is not this machine's): a line that misses it comes from L3 or memory. Only
# the server's own accesses are modelled (not the kernel's, which evict more on real
# hardware), so compare servers and builds with it, and read absolute times from
# `cargo bench -p gorust --bench echo`. Needs valgrind; takes ~1 min.
set -euo pipefail
default_port=7700
need=valgrind
# shellcheck source=echo-common.sh
source "$(dirname "$0")/echo-common.sh"

# One server under the model, loaded for $1; prints "round-trips instructions reads writes"
# (the last three over the server's whole life, start-up and teardown included).
measure() {
    taskset -c 0 valgrind --tool=callgrind --cache-sim=yes --D1=32768,8,64 --LL=1048576,8,64 \
        --callgrind-out-file="$out/cg" "$exe" --server "$server" --port "$port" \
        >"$out/server.log" 2>&1 &
    pid=$!
    # The server prints "ready" once it listens (slow under valgrind).
    local ok=
    for _ in $(seq 100); do grep -q ready "$out/server.log" 2>/dev/null && ok=1 && break; sleep 0.2; done
    [ -n "$ok" ] || { echo "the server did not start:" >&2; cat "$out/server.log" >&2; exit 1; }
    taskset -c 1 target/release/gorust load "127.0.0.1:$port" -c "$conns" --size "$size" \
        -d "$1" --json >"$out/load.json"
    kill -INT "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=
    local requests totals
    requests=$(grep -o '"requests":[0-9]*' "$out/load.json" | cut -d: -f2)
    totals=$(callgrind_annotate --show=Ir,DLmr,DLmw "$out/cg" 2>/dev/null | grep 'PROGRAM TOTALS')
    echo "$requests $(grep -o '[0-9,]* (' <<<"$totals" | tr -d ',(' | tr '\n' ' ')"
    port=$((port + 1))
}

# The figures of a short and a long run are subtracted: what remains is the round trips' own
# work. Divided whole, the start-up (the loader, the runtime, 1,000 accepts and stacks) and the
# teardown counted as round trips' work, and differently for each server (review, session 30).
# Not in `$(…)`: a subshell's `pid` would not reach the exit trap that stops the server.
measure 4s >"$out/short"
measure 12s >"$out/long"
python3 - "$(cat "$out/short")" "$(cat "$out/long")" "$server" "$conns" "$size" <<'EOF2'
import sys
(r1, i1, l1, w1), (r2, i2, l2, w2) = (map(int, a.split()) for a in sys.argv[1:3])
req = r2 - r1
if req <= 0:
    sys.exit(f"the long run made no more round trips than the short one ({r2} against {r1})")
ir, lr, lw = i2 - i1, l2 - l1, w2 - w1
print(f"{sys.argv[3]} {sys.argv[4]} x {sys.argv[5]} B, {req} round trips (12 s run less 4 s run): "
      f"{ir / req:.0f} instructions, {(lr + lw) / req:.2f} L2 misses "
      f"({lr / req:.2f} reads, {lw / req:.2f} writes) per round trip")
EOF2
