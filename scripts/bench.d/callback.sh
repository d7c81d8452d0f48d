#!/usr/bin/env bash
# WeCom callback benchmark (issue 15): `tapwire run` (release) with one phone (phone-sim
# through a private adb server) and one adapter of every type, the wecom_app one fed
# signed+encrypted callbacks by controller/examples/callback_load.rs from its own process;
# then a Python WXBizMsgCrypt callback server (FastAPI on uvicorn, 2 workers) fed the same.
# Both at an open-loop 5 000 requests/s, then at full speed; last, the same generator
# against a server that does nothing (the ceiling). Prints requests/s, p50, p99,
# the controller's RSS idle and under load, and how fast its active replies went out.
# Run from the repository root: `BENCH=callback scripts/bench`. Knobs: CB_SECONDS (10),
# CB_RATE (5000), CB_CONCURRENCY (64), CB_PY_WORKERS (2); CB_NO_BUILD=1 uses the release
# binaries already in CARGO_TARGET_DIR (or target/); CB_ONLY_TAPWIRE=1 skips Python.
set -euo pipefail

seconds=${CB_SECONDS:-10}
rate=${CB_RATE:-5000}
concurrency=${CB_CONCURRENCY:-64}
py_workers=${CB_PY_WORKERS:-2}
target=${CARGO_TARGET_DIR:-target}
# An open loop against a server that falls behind holds a connection per late request.
ulimit -n 65536 2>/dev/null || true
mkdir -p target

if [ -z "${CB_NO_BUILD:-}" ]; then
    echo "== WeCom callback: build (release)"
    cargo build --release -q -p tapwire --bin tapwire --example callback_load
    cargo build --release -q -p tapwire-phone-sim --bin tapwire-phone-sim
fi
tapwire=$target/release/tapwire
load=$target/release/examples/callback_load
sim=$target/release/tapwire-phone-sim

venv=target/bench-venv
requirements=scripts/bench.d/callback-requirements.txt
# Only for Python's runs: CB_ONLY_TAPWIRE=1 needs neither the venv nor the network.
if [ -z "${CB_ONLY_TAPWIRE:-}" ] && ! cmp -s "$requirements" "$venv/installed.txt" 2>/dev/null; then
    echo "== WeCom callback: Python venv in $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r "$requirements"
    cp "$requirements" "$venv/installed.txt"
fi

work=$(mktemp -d)
pids=()
adb_port=""
stop_all() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    pids=()
    if [ -n "$adb_port" ]; then
        adb -P "$adb_port" kill-server >/dev/null 2>&1 || true
        adb_port=""
    fi
}
trap 'stop_all; rm -rf "$work"' EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_http() { # URL
    for _ in $(seq 1 300); do
        curl -s -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "nothing answers at $1" >&2
    return 1
}
kb() { # PID FIELD: VmRSS or VmHWM, in kB
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
cpu_secs() { # PID: user+system CPU seconds so far
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"
}
sends() { curl -s "$api/stats" | python3 -c 'import json, sys; print(json.load(sys.stdin)["sends"])'; }
# Waits until the stand-in has had WANT sends (the echo of every unique callback), up to
# 300 s; prints how long that took after the load stopped.
# Gives up early when nothing more arrives for 15 s (requests the generator could not send
# have no reply to wait for).
drain() { # WANT LABEL
    local start now got last=-1 moved
    start=$(date +%s.%N)
    moved=$start
    while true; do
        got=$(sends)
        now=$(date +%s.%N)
        if [ "$got" != "$last" ]; then
            last=$got
            moved=$now
        fi
        if [ "$got" -ge "$1" ] || awk -v a="$start" -v b="$now" 'BEGIN { exit !(b - a > 300) }' \
            || awk -v a="$moved" -v b="$now" 'BEGIN { exit !(b - a > 15) }'; then
            break
        fi
        sleep 0.2
    done
    awk -v a="$start" -v b="$now" -v got="$got" -v want="$1" -v l="$2" \
        'BEGIN { printf "%s: active replies (not answered passively) delivered %d of %d, the last %.1f s after the load ended\n", l, got, want, b - a }'
}
# Runs the generator; echoes its result lines and remembers how many unique callbacks it sent.
drive() { # LABEL URL ARGS...
    local label=$1 url=$2
    shift 2
    "$load" drive "$url" --label "$label" --seconds "$seconds" "$@" 2>"$work/$label.err" | tee "$work/$label.out"
    grep -E 'first answer|open loop: sends' "$work/$label.err" || true
    unique=$(sed -n 's/.*unique callbacks \([0-9]*\).*/\1/p' "$work/$label.out")
    passive=$(sed -n 's/.*passive replies \([0-9]*\).*/\1/p' "$work/$label.out")
    # Answered in their callbacks' responses: their echoes never reach message/send.
    active=$((unique - ${passive:-0}))
}

# --- Tapwire -------------------------------------------------------------------------
"$load" stand-in >"$work/stand-in.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
    api=$(sed -n 's/^stand-in listening //p' "$work/stand-in.out")
    [ -n "$api" ] && break
    sleep 0.05
done
[ -n "$api" ] || { echo "the stand-in did not start" >&2; exit 1; }

adb_port=$(free_port)
adb -P "$adb_port" start-server >/dev/null 2>&1
phone_port=$(free_port)
control_port=$(free_port)
"$sim" serve --adb "127.0.0.1:$phone_port" --control "127.0.0.1:$control_port" >"$work/sim.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$control_port/"
adb -P "$adb_port" connect "127.0.0.1:$phone_port" >/dev/null

listen_port=$(free_port)
cat >"$work/tapwire.toml" <<EOF
[storage]
path = "$work/tapwire.db"
[[phones]]
serial = "127.0.0.1:$phone_port"
adb_server = "127.0.0.1:$adb_port"
# One of every adapter type; all but wecom_app point at the stand-in, which knows only
# WeCom's API, so those with a connection of their own keep retrying it, as a controller
# does while a platform is unreachable.
[adapters.app]
type = "wecom_app"
corp_id = "wx5823bf96d3bd56c7"
agent_id = 1000002
secret = "\${BENCH_SECRET}"
token = "QDG6eK"
encoding_aes_key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
base_url = "$api"
[adapters.robot]
type = "wecom_robot"
url = "$api/cgi-bin/webhook/send?key=\${BENCH_SECRET}"
[adapters.aibot]
type = "wecom_aibot"
token = "QDG6eK"
encoding_aes_key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
[adapters.feishu]
type = "feishu"
app_id = "cli_bench"
app_secret = "\${BENCH_SECRET}"
verification_token = "bench"
base_url = "$api"
[adapters.feishu-hook]
type = "feishu_webhook"
url = "$api/open-apis/bot/v2/hook/bench"
[adapters.qq]
type = "qq"
app_id = "102000000"
app_secret = "\${BENCH_SECRET}"
api_base = "$api"
token_url = "$api/app/getAppAccessToken"
[adapters.dingtalk]
type = "dingtalk"
client_id = "dingbench"
client_secret = "\${BENCH_SECRET}"
api_base = "$api"
oapi_base = "$api"
[adapters.dingtalk-hook]
type = "dingtalk_webhook"
url = "$api/robot/send?access_token=bench"
[adapters.ilink]
type = "ilink"
base_url = "$api"
token = "\${BENCH_SECRET}"
[[routes]]
event = "message.received"
handler = "echo"
EOF

start_tapwire() { # CONFIG
    # The shipped log level (warn), whatever this shell has.
    BENCH_SECRET=bench-secret RUST_LOG=warn TAPWIRE_UI_MAPS="$PWD/ui-maps" \
        "$tapwire" run --listen "127.0.0.1:$listen_port" --config "$1" >>"$work/tapwire.log" 2>&1 &
    tapwire_pid=$!
    pids+=("$tapwire_pid")
    wait_http "http://127.0.0.1:$listen_port/healthz"
}
start_tapwire "$work/tapwire.toml"
callback="http://127.0.0.1:$listen_port/callback/app"
sleep 10
idle_rss=$(kb "$tapwire_pid" VmRSS)
idle_cpu0=$(cpu_secs "$tapwire_pid")
sleep 10
idle_cpu=$(awk -v a="$idle_cpu0" -v b="$(cpu_secs "$tapwire_pid")" 'BEGIN { printf "%.1f", (b - a) * 10 }')
echo "tapwire: RSS idle (one phone polled, 9 adapters) $(mib "$idle_rss"); CPU idle ${idle_cpu} % of a core"
if [ -n "${TAPWIRE_API_TOKENS:-}" ]; then
    # One open dashboard: its live view of the phone is what costs (a screenshot per read,
    # decoded and kept while someone watches); the page's assets are static.
    token=${TAPWIRE_API_TOKENS%%,*}
    curl -sN -H "Authorization: Bearer $token" -o "$work/live.out" \
        "http://127.0.0.1:$listen_port/api/v1/phones/127.0.0.1:$phone_port/live" &
    live_pid=$!
    pids+=("$live_pid")
    sleep 15
    grep -q '^event: screen' "$work/live.out" || { echo "the live view sent no screen" >&2; exit 1; }
    echo "tapwire: RSS with one live view open $(mib "$(kb "$tapwire_pid" VmRSS)") (peak $(mib "$(kb "$tapwire_pid" VmHWM)"))"
    kill "$live_pid" 2>/dev/null || true
fi
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) before the runs, $(nproc) cores"

cpu0=$(cpu_secs "$tapwire_pid")
drive tapwire-rate "$callback" --rate "$rate"
echo "tapwire-rate: CPU $(awk -v a="$cpu0" -v b="$(cpu_secs "$tapwire_pid")" 'BEGIN { printf "%.1f", b - a }') s during the run"
rate_hwm=$(kb "$tapwire_pid" VmHWM)
echo "tapwire: RSS peak under ${rate}/s $(mib "$rate_hwm"), now $(mib "$(kb "$tapwire_pid" VmRSS)")"
expected=$active
drain "$expected" tapwire-rate

cpu0=$(cpu_secs "$tapwire_pid")
drive tapwire-full "$callback" --concurrency "$concurrency"
echo "tapwire-full: CPU $(awk -v a="$cpu0" -v b="$(cpu_secs "$tapwire_pid")" 'BEGIN { printf "%.1f", b - a }') s during the run"
echo "tapwire: RSS peak after full speed $(mib "$(kb "$tapwire_pid" VmHWM)"), now $(mib "$(kb "$tapwire_pid" VmRSS)")"
expected=$((expected + active))
drain "$expected" tapwire-full
echo "tapwire: RSS after the replies drained $(mib "$(kb "$tapwire_pid" VmRSS)")"
kill "$tapwire_pid"
wait "$tapwire_pid" 2>/dev/null || true

# The same at the fixed rate with the store on tmpfs, where a write or fsync never waits
# for the disk: what the disk adds to the callback's latency.
if [ -d /dev/shm ] && [ -z "${CB_NO_TMPFS:-}" ]; then
    shm=$(mktemp -d /dev/shm/tapwire-bench.XXXXXX)
    sed "s#^path = .*#path = \"$shm/tapwire.db\"#" "$work/tapwire.toml" >"$work/tmpfs.toml"
    start_tapwire "$work/tmpfs.toml"
    sleep 5
    drive tapwire-tmpfs-rate "$callback" --rate "$rate"
    expected=$((expected + active))
    drain "$expected" tapwire-tmpfs-rate
    kill "$tapwire_pid"
    wait "$tapwire_pid" 2>/dev/null || true
    rm -rf "$shm"
fi
if grep -qE 'callback refused|adapter=app' "$work/tapwire.log"; then
    echo "tapwire log, wecom_app's warnings (first 5):"
    grep -E 'callback refused|adapter=app' "$work/tapwire.log" | head -5
fi
stop_all
# CB_ONLY_TAPWIRE=1: Tapwire's runs alone (comparing two builds of it).
[ -n "${CB_ONLY_TAPWIRE:-}" ] && exit 0

# --- Python ------------------------------------------------------------------------------
py_port=$(free_port)
"$venv/bin/uvicorn" --app-dir scripts/bench.d wecom_callback_server:app --host 127.0.0.1 \
    --port "$py_port" --workers "$py_workers" --no-access-log --log-level warning >"$work/python.log" 2>&1 &
py_pid=$!
pids+=("$py_pid")
wait_http "http://127.0.0.1:$py_port/docs"
sleep 2
py_url="http://127.0.0.1:$py_port/callback"
drive python-rate "$py_url" --rate "$rate"
drive python-full "$py_url" --concurrency "$concurrency"
py_rss=0
for pid in $py_pid $(cat "/proc/$py_pid/task/"*/children 2>/dev/null); do
    py_rss=$((py_rss + $(kb "$pid" VmRSS)))
done
echo "python: RSS after the runs, uvicorn and its $py_workers workers together $(mib "$py_rss")"
stop_all

# --- Ceiling -----------------------------------------------------------------------------
# The same generator at full speed against a server that answers 200 and does nothing
# else: the most callbacks any server could be answered at here, beside which "N× Python"
# is to be read.
"$load" ceiling >"$work/ceiling.out" 2>&1 &
pids+=($!)
ceiling=""
for _ in $(seq 50); do
    ceiling=$(sed -n 's/^ceiling listening //p' "$work/ceiling.out")
    [ -n "$ceiling" ] && break
    sleep 0.1
done
[ -n "$ceiling" ] || { echo "the ceiling server did not start" >&2; exit 1; }
drive ceiling-full "$ceiling/callback" --concurrency "$concurrency"
