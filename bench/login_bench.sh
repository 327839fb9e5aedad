#!/usr/bin/env bash
# Measures login_service in each --mode on this machine: wrk drives POST /login (Argon2id +
# SQLite per request) while a second wrk samples GET /health on one connection, one request per
# HEALTH_INTERVAL_MS (10). Prints a Markdown table of logins/s, /health p50/p99 and the server's
# peak RSS (VmHWM).
#   bench/login_bench.sh [path/to/login_service]     (DURATION=10s CONNECTIONS=32 to change)
# The sampler is paced because it shares the cores with the server: sending back to back, it
# and the loop answering it kept a core busy at normal priority, which measured how the load
# generator competes with the pool's low-priority workers rather than the server.
set -euo pipefail
bin="${1:-build/default/example/login_service}"
duration="${DURATION:-10s}"
connections="${CONNECTIONS:-32}"
health_interval_ms="${HEALTH_INTERVAL_MS:-10}"
command -v wrk > /dev/null || { echo "login_bench.sh: needs wrk (apt-get install wrk)" >&2; exit 2; }
tmp="$(mktemp -d)"
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2> /dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
cat > "$tmp/login.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "user=alice&password=wonderland"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
LUA
cat > "$tmp/health.lua" <<LUA
function delay() return $health_interval_ms end
LUA

field() { # field FILE PATTERN: the value after PATTERN on its line
    awk -v p="$2" '$0 ~ p { print $2; exit }' "$1"
}

echo "| mode | logins/s | /health p50 | /health p99 | /health requests | peak RSS |"
echo "|---|---|---|---|---|---|"
for mode in pool inline thread-per-request; do
    "$bin" --mode "$mode" --db "$tmp/users.db" --init-db --port 0 > "$tmp/server.out" 2>&1 &
    server=$!
    for _ in $(seq 100); do grep -q "listening on" "$tmp/server.out" && break; sleep 0.1; done
    port="$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$tmp/server.out")"
    wrk -t1 -c"$connections" -d"$duration" --timeout 30s -s "$tmp/login.lua" "http://127.0.0.1:$port/login" \
        > "$tmp/login.txt" &
    load=$!
    sleep 1 # let the logins saturate the pool before sampling
    wrk -t1 -c1 -d"$duration" --timeout 30s --latency -s "$tmp/health.lua" "http://127.0.0.1:$port/health" > "$tmp/health.txt" || true
    wait "$load" || true
    # The server's high-water mark of resident memory over the whole mode, read before it exits.
    hwm="$(awk '/^VmHWM:/ { printf "%.0f MiB", $2 / 1024 }' "/proc/$server/status" 2> /dev/null || true)"
    kill "$server"; wait "$server" 2> /dev/null || true; server=""
    rps="$(awk '/^Requests\/sec/ { print $2 }' "$tmp/login.txt")"
    p50="$(awk '/^ +50%/ { print $2 }' "$tmp/health.txt")"
    p99="$(awk '/^ +99%/ { print $2 }' "$tmp/health.txt")"
    n="$(awk '/requests in/ { print $1 }' "$tmp/health.txt")"
    echo "| $mode | ${rps:-?} | ${p50:-timeout} | ${p99:-timeout} | ${n:-0} | ${hwm:-?} |"
done
