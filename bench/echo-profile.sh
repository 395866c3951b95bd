#!/usr/bin/env bash
# Where the echo server's CPU goes per round trip, from `perf record` samples: user and kernel
# time in µs per round trip, and the top symbols in ns per round trip.
#
#   bench/echo-profile.sh [c-epoll|c-et|gorust|readable|futures|eventloop|tokio] [connections] [bytes]
#
# TOP=N (default 15) prints the N busiest symbols instead.
#
# Server on CPU 0, `gorust load` on CPU 1, 6 s of load with 4 s sampled in the middle. The
# sampling is kept light on purpose: 1 kHz and no call graphs. With `-g` at 4 kHz the profiler's
# own unwinding evicted enough cache and TLB state to cut gorust's throughput by ~20% and to
# inflate exactly the stalls one looks for (session 6, bench/RESULTS.md). Run it two or three
# times per server, alternating: one run swings ±10% with the machine.
# Needs perf; prints one block per run.
set -euo pipefail
default_port=7900
need=perf
need_pkg=linux-perf
[[ ${TOP:-15} =~ ^[0-9]+$ ]] || { echo "TOP must be a number of symbols" >&2; exit 2; }
# shellcheck source=echo-common.sh
source "$(dirname "$0")/echo-common.sh"
if [ "$server" = c-epoll ] || [ "$server" = c-et ]; then
    cbin=$out/echo-c
    cc -O2 -pthread -o "$cbin" bench/c/echo_epoll.c
    cmd=("$cbin" "$port")
    if [ "$server" = c-et ]; then cmd+=(et); fi
else
    cmd=("$exe" --server "$server" --port "$port")
fi

# Kernel samples of another process need perf_event_paranoid of 1 or less, or root; without
# them perf quietly kept user samples only, and the kernel column read 0 as if measured
# (review, session 30).
if [ "$(id -u)" != 0 ] && [ "$(cat /proc/sys/kernel/perf_event_paranoid)" -gt 1 ]; then
    echo "needs root or kernel.perf_event_paranoid <= 1 to sample kernel time" \
        "(sysctl kernel.perf_event_paranoid=1)" >&2
    exit 1
fi

taskset -c 0 "${cmd[@]}" >"$out/server.log" 2>&1 &
pid=$!
ok=
for _ in $(seq 50); do grep -q ready "$out/server.log" 2>/dev/null && ok=1 && break; sleep 0.1; done
[ -n "$ok" ] || { echo "the server did not start:" >&2; cat "$out/server.log" >&2; exit 1; }
taskset -c 1 target/release/gorust load "127.0.0.1:$port" -c "$conns" --size "$size" \
    -d 6s --json >"$out/load.json" &
load=$!
sleep 1
if ! perf record -q -F 1000 -p "$pid" -o "$out/perf.data" -- sleep 4 >"$out/perf.log" 2>&1; then
    echo "perf record failed:" >&2
    cat "$out/perf.log" >&2
    exit 1
fi
wait "$load"
load=
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
pid=

requests=$(grep -o '"requests":[0-9]*' "$out/load.json" | cut -d: -f2)
samples=$(perf script -i "$out/perf.data" -F ip 2>/dev/null | wc -l)
perf report -i "$out/perf.data" --no-children --stdio --sort sym 2>/dev/null |
    grep -E '^ +[0-9]' >"$out/syms.txt" || true
python3 - "$requests" "$samples" "$out/syms.txt" "$server" "$conns" "$size" <<'EOF'
import os, re, sys
req, samples = int(sys.argv[1]), int(sys.argv[2])
# The load ran 6 s, the profile covered 4 of them; one sample is 1 ms of CPU.
rts = req * 4 / 6
cpu_us = samples * 1000 / rts
rows = []
for line in open(sys.argv[3]):
    m = re.match(r'\s+([\d.]+)%\s+\[(.)\]\s+(.*)', line)
    if m:
        rows.append((float(m[1]) / 100, m[2] == 'k', m[3].strip()))
top = int(os.environ.get("TOP", "15"))
kern = sum(p for p, k, _ in rows if k)
user = sum(p for p, k, _ in rows if not k)
print(f"{sys.argv[4]} {sys.argv[5]} x {sys.argv[6]} B: {req / 6:.0f} round trips/s, "
      f"server busy {samples / 4000:.2f} of a CPU, {cpu_us:.2f} µs per round trip "
      f"(user {user * cpu_us:.2f}, kernel {kern * cpu_us:.2f})")
for p, k, s in rows[:top]:
    print(f"  {p * cpu_us * 1000:6.0f} ns  {'kernel' if k else 'user  '}  {s[:90]}")
EOF
