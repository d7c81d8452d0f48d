#!/usr/bin/env bash
# REST API send benchmark (issue 17): `tapwire run` (release) with the API on and a WeCom
# app adapter whose API is callback_load's stand-in; controller/examples/api_load.rs, from
# its own process, POSTs /api/v1/messages with a new Idempotency-Key each time, so every
# request is a new action written to the outbox before its 202. Prints requests/s, p50,
# p99 and max at 1 and at 8 connections. Run from the repository root:
# `BENCH=api scripts/bench`. Knobs: API_REQUESTS (2000); API_NO_BUILD=1 uses the release
# binaries already in CARGO_TARGET_DIR (or target/).
set -euo pipefail

requests=${API_REQUESTS:-2000}
target=${CARGO_TARGET_DIR:-target}
if [ -z "${API_NO_BUILD:-}" ]; then
    echo "== REST API: build (release)"
    cargo build --release -q -p tapwire --bin tapwire --example api_load --example callback_load
fi
tapwire=$target/release/tapwire
load=$target/release/examples/api_load
stand_in=$target/release/examples/callback_load

work=$(mktemp -d)
pids=()
stop_all() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap 'stop_all; rm -rf "$work"' EXIT

"$stand_in" stand-in >"$work/stand-in.out" 2>&1 &
pids+=($!)
api=""
for _ in $(seq 1 100); do
    api=$(sed -n 's/^stand-in listening //p' "$work/stand-in.out")
    [ -n "$api" ] && break
    sleep 0.05
done
[ -n "$api" ] || { echo "the stand-in did not start" >&2; exit 1; }

cat >"$work/tapwire.toml" <<TOML
[storage]
path = "$work/tapwire.db"
[adapters.app]
type = "wecom_app"
corp_id = "wx5823bf96d3bd56c7"
agent_id = 1000002
secret = "\${BENCH_WECOM_SECRET}"
token = "QDG6eK"
encoding_aes_key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
base_url = "$api"
TOML
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
TAPWIRE_API_TOKENS=$token BENCH_WECOM_SECRET=bench-secret RUST_LOG=warn,tapwire::server=info \
    "$tapwire" run --listen 127.0.0.1:0 --config "$work/tapwire.toml" >"$work/tapwire.log" 2>&1 &
tapwire_pid=$!
pids+=("$tapwire_pid")
addr=""
for _ in $(seq 1 300); do
    addr=$(sed -n 's/.*HTTP server listening addr=\([^ ]*\).*/\1/p' "$work/tapwire.log" 2>/dev/null | head -1 || true)
    [ -n "$addr" ] && break
    sleep 0.1
done
[ -n "$addr" ] || { echo "tapwire did not start:" >&2; cat "$work/tapwire.log" >&2; exit 1; }

for concurrency in 1 8; do
    echo "== POST /api/v1/messages, $concurrency connection(s), $requests requests"
    "$load" "http://$addr" --token "$token" --target app --conversation lisi \
        --requests "$requests" --concurrency "$concurrency"
done
echo "tapwire RSS after the runs: $(awk '$1 == "VmRSS:" { printf "%.1f MiB", $2 / 1024 }' "/proc/$tapwire_pid/status")"
