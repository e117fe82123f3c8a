#!/usr/bin/env bash
# End-of-speech → final-text latency of an ASR engine, as devices see it.
# Starts a release server with the engine ENGINE (whisper-tiny | whisper-base |
# service), streams two_utterances.wav in real time from DEVICES simulated
# badges at once, ROUNDS times, then reads the server's
# huddle_asr_latency_seconds histogram and prints p50/p99 (bucket resolution,
# linear inside the bucket) and the max.
# Usage: perf/asr_latency.sh ENGINE [DEVICES=3] [ROUNDS=2]
set -euo pipefail
cd "$(dirname "$0")/.."
engine=${1:?engine: whisper-tiny | whisper-base | service}
devices=${2:-3}
rounds=${3:-2}
port=$((20000 + RANDOM % 20000))
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

case "$engine" in
  whisper-tiny) asr="[asr.whisper]\ntype = \"whisper\"\nmodel = \"$PWD/models/ggml-tiny.en-q8_0.bin\"\nlanguage = \"en\"\nthreads = 2" ;;
  whisper-base) asr="[asr.whisper]\ntype = \"whisper\"\nmodel = \"$PWD/models/ggml-base-q8_0.bin\"\nlanguage = \"en\"\nthreads = 2" ;;
  service)
    HF_HUB_OFFLINE=1 "${HUDDLE_ASR_VENV:-/opt/huddle-asr-venv}/bin/python" tools/asr-service/serve.py \
      --port 0 --port-file "$work/asr.port" --quiet &
    for _ in $(seq 600); do [ -s "$work/asr.port" ] && break; sleep 0.1; done
    asr="[selected_module]\nasr = \"svc\"\n[asr.svc]\ntype = \"openai\"\nbase_url = \"http://127.0.0.1:$(cat "$work/asr.port")/v1\"\nmodel = \"whisper-1\"\nlanguage = \"en\"" ;;
  *) echo "unknown engine $engine" >&2; exit 2 ;;
esac
printf '[server]\nip = "127.0.0.1"\nport = %s\n[log]\nlevel = "warn"\n%b\n' "$port" "$asr" > "$work/huddle.toml"
cargo build --release --quiet --bin huddle
bash tests/fixtures/make_fixtures.sh target/fixtures >/dev/null
target/release/huddle serve --config "$work/huddle.toml" 2> "$work/server.log" &
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
for round in $(seq "$rounds"); do
  for d in $(seq "$devices"); do
    target/release/huddle device --url "ws://127.0.0.1:$port/xiaozhi/v1/" --wav target/fixtures/two_utterances.wav \
      --protocol 3 --device-id "lat-$round-$d" --linger-ms 8000 > "$work/device-$round-$d.log" &
  done
  wait $(jobs -p | tail -n "$devices")
done
curl -sf "http://127.0.0.1:$port/metrics" | python3 -c '
import sys
buckets, count, mx = [], 0, 0.0
for line in sys.stdin:
    if line.startswith("huddle_asr_latency_seconds_bucket"):
        le = line.split("le=\"")[1].split("\"")[0]
        buckets.append((float("inf") if le == "+Inf" else float(le), int(line.split()[-1])))
    elif line.startswith("huddle_asr_latency_seconds_count"):
        count = int(line.split()[-1])
    elif line.startswith("huddle_asr_latency_seconds_max"):
        mx = float(line.split()[-1])
def q(p):
    target, lo, prev = p * count, 0.0, 0
    for le, c in buckets:
        if c >= target:
            hi = min(le, mx)
            return lo + (hi - lo) * ((target - prev) / max(c - prev, 1))
        lo, prev = le, c
    return mx
print(f"utterances={count} p50={q(0.5)*1000:.0f}ms p99={q(0.99)*1000:.0f}ms max={mx*1000:.0f}ms")
'
