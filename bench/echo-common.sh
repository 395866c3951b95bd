# Shared by bench/echo-cachesim.sh and bench/echo-profile.sh (sourced, not run): reads the
# arguments `[server] [connections] [bytes]`, moves to the repository's root, builds the load
# generator and the echo benchmark, and sets `server`, `conns`, `size`, `port` and `exe` (the
# benchmark binary, which serves one echo server with `--server NAME --port N`).
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
