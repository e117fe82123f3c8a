#!/usr/bin/env bash
# Builds a fully static x86-64 Linux `huddle` for edge boxes and checks that it
# really is static, then smoke-tests it the way an edge box runs it.
#
# Usage: tools/build-static.sh [--no-smoke]
#   --no-smoke       only build and verify; skip the start-up smoke test
#   SMOKE_RUNS=5     how many cold starts the smoke test averages
#   MODEL=models/ggml-tiny.en-q8_0.bin   model copied next to the binary for the smoke test
#   KEEP_BOX=1       keep the smoke-test directory (binary, model, config, logs) for inspection
#
# Output: target/static/x86_64-unknown-linux-gnu/release/huddle          (with debug info)
#         target/static/huddle                                            (stripped copy: ship this one)
#
# How it is static (glibc, not musl: only x86_64-unknown-linux-gnu is installed here and
# rustup cannot fetch the musl target on this box):
# * RUSTFLAGS="-C target-feature=+crt-static" with an explicit --target: rustc links
#   glibc statically and emits a static-pie executable. The explicit --target keeps
#   RUSTFLAGS off build scripts and proc macros, which must stay ordinary host binaries.
# * cc-rs/cmake see crt-static and build libopus and whisper.cpp with -static;
#   .cargo/config.toml keeps GGML_NATIVE=OFF with an explicit AVX2/FMA/F16C baseline,
#   so there is no -march=native in the binary.
# * whisper-rs-sys hard-codes `cargo:rustc-link-lib=dylib=stdc++`, which under crt-static
#   yields a broken hybrid (static glibc + a NEEDED libstdc++.so that loads libc.so).
#   We put a directory holding only gcc's libstdc++.a first on the final link's search
#   path, so `-lstdc++` resolves to the archive. `cargo rustc ... -- -L` passes it to the
#   final binary only, so the dependencies are not rebuilt because of it.
# * getrandom (0.3/0.4, used by uuid and tungstenite) finds libc's getrandom() with dlsym(), which
#   a static binary cannot do; it would then fall back to reading /dev/random + /dev/urandom and panic
#   where /dev is missing (a bare chroot). --cfg getrandom_backend="linux_getrandom" makes it call the
#   statically linked getrandom() directly, so the binary needs no device files at all.
# * --target-dir target/static keeps this build apart from the normal target/ dir.
#
# Caveats of static glibc (the linker's "Using 'getaddrinfo' in statically linked
# applications requires at runtime the shared libraries from the glibc version used for
# linking" warning; rust-lld does not print it, GNU ld does):
# * Name resolution works for /etc/hosts and DNS (the built-in `files` and `dns` NSS
#   services: `localhost`, IP literals, real DNS names all resolve). NSS modules that live
#   in other shared objects (`mdns4_minimal`, `myhostname`, `systemd`, `ldap` in
#   /etc/nsswitch.conf `hosts:`) are dlopen()ed at run time and must come from the same
#   glibc version, else lookups through them fail. huddle only resolves the host names of
#   LLM/ASR/TTS/webhook URLs, so keep those to IPs, /etc/hosts entries or plain DNS names.
# * iconv/locale dlopen()s are not used by huddle.
set -euo pipefail

repo=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
cd "$repo"

smoke=1
for arg in "$@"; do
    case "$arg" in
        --no-smoke) smoke=0 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg" >&2; exit 2 ;;
    esac
done

target=x86_64-unknown-linux-gnu
target_dir=$repo/target/static
bin=$target_dir/$target/release/huddle
stripped=$target_dir/huddle

if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    echo "rust target $target is not installed" >&2
    exit 1
fi

# The directory that shadows libstdc++.so with libstdc++.a for the final link.
libstdcxx_a=$(${CXX:-g++} -print-file-name=libstdc++.a)
if [ ! -f "$libstdcxx_a" ]; then
    echo "no static libstdc++ ($libstdcxx_a); install libstdc++-<ver>-dev" >&2
    exit 1
fi
shadow=$target_dir/libstdcxx
mkdir -p "$shadow"
ln -sfn "$libstdcxx_a" "$shadow/libstdc++.a"

echo "== building $bin"
RUSTFLAGS='-C target-feature=+crt-static --cfg getrandom_backend="linux_getrandom"' \
    cargo rustc --release --locked --target "$target" --target-dir "$target_dir" --bin huddle \
    -- -L "native=$shadow"

echo "== verifying"
file_out=$(file "$bin")
echo "$file_out"
ldd_out=$(ldd "$bin" 2>&1 || true)
echo "ldd: $ldd_out"
# glibc's ldd says "statically linked" for static-pie and "not a dynamic executable" for
# non-PIE static binaries; both are fine, anything listing a .so is not.
if ! grep -Eq "statically linked|not a dynamic executable" <<<"$ldd_out" || grep -q "=>" <<<"$ldd_out"; then
    echo "FAIL: $bin is not static" >&2
    exit 1
fi
if ! grep -Eq "static-pie linked|statically linked" <<<"$file_out"; then
    echo "FAIL: file(1) does not report a static executable" >&2
    exit 1
fi
if readelf -d "$bin" 2>/dev/null | grep -q NEEDED; then
    echo "FAIL: $bin has NEEDED entries:" >&2
    readelf -d "$bin" | grep NEEDED >&2
    exit 1
fi
if readelf -lW "$bin" | grep -q "Requesting program interpreter"; then
    echo "FAIL: $bin requests a program interpreter" >&2
    exit 1
fi

strip -o "$stripped" "$bin"
size_of() { stat -c %s "$1"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "size: $(mib "$(size_of "$bin")") with debug info, $(mib "$(size_of "$stripped")") stripped ($stripped)"
"$stripped" --version

[ "$smoke" = 1 ] || exit 0

# ---- smoke test: an empty directory with only the binary, the model and a config, run under
# `env -i` (no PATH, HOME, LANG, ...), timed from exec to the first 200 from GET /healthz.
model=${MODEL:-models/ggml-tiny.en-q8_0.bin}
runs=${SMOKE_RUNS:-5}
if [ ! -f "$model" ]; then
    echo "smoke test needs $model (tools/fetch_models.sh); skipped" >&2
    exit 0
fi
box=$(mktemp -d /tmp/huddle-static.XXXXXX)
pid=
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    if [ -n "${KEEP_BOX:-}" ]; then echo "kept $box"; else rm -rf "$box"; fi
}
trap cleanup EXIT
cp "$stripped" "$box/huddle"
mkdir -p "$box/models"
cp "$model" "$box/models/"
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
port=$(free_port)
cat >"$box/huddle.toml" <<EOF
[server]
ip = "127.0.0.1"
port = $port

[storage]
data_dir = "data"

[asr.whisper]
type = "whisper"
model = "models/$(basename "$model")"
EOF
echo "== smoke test in $box (port $port): $(ls "$box" | tr '\n' ' ')"
(cd "$box" && env -i ./huddle check-config >/dev/null)

healthz() { curl -fsS -m 1 "http://127.0.0.1:$port/healthz" 2>/dev/null; }
total_ms=0
for i in $(seq 1 "$runs"); do
    start=$(date +%s%N)
    (cd "$box" && exec env -i ./huddle serve --config huddle.toml) 2>"$box/serve.log" &
    pid=$!
    until body=$(healthz); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "FAIL: the server exited during start-up:" >&2
            cat "$box/serve.log" >&2
            exit 1
        fi
        if [ $(( ($(date +%s%N) - start) / 1000000 )) -gt 20000 ]; then
            echo "FAIL: no /healthz answer within 20 s" >&2
            cat "$box/serve.log" >&2
            exit 1
        fi
        sleep 0.005
    done
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    total_ms=$((total_ms + ms))
    echo "run $i: /healthz after $ms ms: $body"
    if [ "$i" = 1 ]; then
        # Name resolution from the static binary: the device simulator resolves `localhost`
        # through getaddrinfo, the same path ureq takes for LLM and webhook URLs.
        python3 - "$box/silence.wav" <<'PY'
import struct, sys, wave
with wave.open(sys.argv[1], "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
    w.writeframes(struct.pack("<h", 0) * 16000)
PY
        if (cd "$box" && env -i ./huddle device --url "ws://localhost:$port/xiaozhi/v1/" \
            --wav silence.wav --fast --linger-ms 300) >"$box/device.log" 2>&1; then
            echo "resolving localhost from the static binary: ok ($(grep -c . "$box/device.log") report lines)"
        else
            echo "FAIL: huddle device could not reach ws://localhost:$port:" >&2
            cat "$box/device.log" >&2
            exit 1
        fi
    fi
    kill -TERM "$pid"
    stop_start=$(date +%s%N)
    status=0
    wait "$pid" || status=$?
    if [ "$status" != 0 ]; then
        echo "FAIL: exit status $status after SIGTERM" >&2
        cat "$box/serve.log" >&2
        exit 1
    fi
    echo "       stopped $(( ($(date +%s%N) - stop_start) / 1000000 )) ms after SIGTERM"
    pid=
done
echo "start-up to listening (mean of $runs): $((total_ms / runs)) ms"

# As root, once more inside a chroot of the box: no /lib, /etc, /dev or /proc at all, so nothing can be
# loaded from the host. A badge connects (to an IP literal: without /etc/hosts there is no `localhost`).
chroot_bin=$(command -v chroot || true)
if [ "$(id -u)" = 0 ] && [ -n "$chroot_bin" ]; then
    (exec env -i "$chroot_bin" "$box" /huddle serve --config /huddle.toml) 2>"$box/chroot.log" &
    pid=$!
    for _ in $(seq 1 400); do healthz >/dev/null && break; sleep 0.05; done
    if env -i "$chroot_bin" "$box" /huddle device --url "ws://127.0.0.1:$port/xiaozhi/v1/" \
        --wav /silence.wav --fast --linger-ms 300 >"$box/device.log" 2>&1 && healthz >/dev/null; then
        echo "chroot with only $(cd "$box" && find huddle huddle.toml models -type f | tr '\n' ' '): ok"
    else
        echo "FAIL: the server or a badge failed inside the chroot:" >&2
        cat "$box/chroot.log" "$box/device.log" >&2
        exit 1
    fi
    kill -TERM "$pid"
    wait "$pid"
    pid=
fi
grep -E "WARN|ERROR|listening on" "$box/serve.log" | sed "s/^/  log: /" | head -8
