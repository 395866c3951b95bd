#!/usr/bin/env bash
# The echo server's user-space work per round trip under callgrind's cache model: instructions
# and cache misses, deterministic where the machine's timings swing ±10% from run to run.
#
#   bench/echo-cachesim.sh [gorust|readable|futures|eventloop|tokio] [connections] [message bytes]
#
# The model's last level is set to this machine's L2 (512 KiB, 8-way): a line that misses
# it comes from L3 or memory. Only the server's own accesses are modelled (not the kernel's,
# which evict more on real hardware), so compare servers and builds with it, and read
# absolute times from `cargo bench -p gorust --bench echo`. Needs valgrind; takes ~30 s.
set -euo pipefail
default_port=7700
need=valgrind
# shellcheck source=echo-common.sh
source "$(dirname "$0")/echo-common.sh"

taskset -c 0 valgrind --tool=callgrind --cache-sim=yes --D1=32768,8,64 --LL=524288,8,64 \
    --callgrind-out-file="$out/cg" "$exe" --server "$server" --port "$port" \
    >"$out/server.log" 2>&1 &
pid=$!
# The server prints "ready" once it listens (slow under valgrind).
for _ in $(seq 100); do grep -q ready "$out/server.log" 2>/dev/null && break; sleep 0.2; done
taskset -c 1 target/release/gorust load "127.0.0.1:$port" -c "$conns" --size "$size" \
    -d 10s --json >"$out/load.json"
kill -INT "$pid"
for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
pid=

requests=$(grep -o '"requests":[0-9]*' "$out/load.json" | cut -d: -f2)
totals=$(callgrind_annotate --show=Ir,DLmr,DLmw "$out/cg" 2>/dev/null | grep 'PROGRAM TOTALS')
python3 - "$requests" "$totals" "$server" "$conns" "$size" <<'EOF'
import re, sys
req = int(sys.argv[1])
ir, lr, lw = (int(x.replace(',', '')) for x in re.findall(r'([\d,]+) \(', sys.argv[2]))
print(f"{sys.argv[3]} {sys.argv[4]} x {sys.argv[5]} B, {req} round trips: "
      f"{ir / req:.0f} instructions, {(lr + lw) / req:.2f} L2 misses "
      f"({lr / req:.2f} reads, {lw / req:.2f} writes) per round trip")
EOF
