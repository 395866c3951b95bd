# Shared by bench/echo-cachesim.sh and bench/echo-profile.sh (sourced, not run): reads the
# arguments `[server] [connections] [bytes]`, moves to the repository's root, builds the load
# generator and the echo benchmark, and sets `server`, `conns`, `size`, `port` and `exe` (the
# benchmark binary, which serves one echo server with `--server NAME --port N`), and `out`, a
# scratch directory; on exit, error paths included, stops the background jobs named by `pid`
# (the server) and `load` and removes `out`.
# Needs `default_port` set by the caller (the base of its random port range) and `need`,
# the tool it requires (and `need_pkg`, its Debian package, where the names differ).
server=${1:-gorust}
conns=${2:-1000}
size=${3:-64}
port=${PORT:-$((default_port + RANDOM % 90))}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v "$need" >/dev/null || { echo "needs $need (apt-get install ${need_pkg:-$need})" >&2; exit 1; }

cargo build --release -q -p gorust-cli
exe=$(cargo bench -p gorust --bench echo --no-run --message-format=json 2>/dev/null |
    grep -o '"executable":"[^"]*"' | tail -1 | cut -d'"' -f4)
[ -x "$exe" ] || { echo "could not build the echo benchmark" >&2; exit 1; }

# Under `set -e` a failed step exits at once: without this trap it left the server running.
# A script clears `pid` or `load` once it has waited for that job, so that a PID the system
# has since given to another process is never signalled.
out=$(mktemp -d)
pid=
load=
stop_jobs() {
    local p
    for p in $load $pid; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$out"
}
trap stop_jobs EXIT
