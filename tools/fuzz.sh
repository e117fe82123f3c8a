#!/usr/bin/env bash
# Fuzzes huddle's parsers with cargo fuzz (issue 9): frame decoding, device
# JSON, HTTP requests, meeting journals and files, the TOML config.
#
#   tools/fuzz.sh [SECONDS] [TARGET...]
#
# Builds the targets, then runs each one in turn for SECONDS (default 60) as a
# single libFuzzer job (-jobs=1), starting from the committed seeds in
# fuzz/corpus/<target>/ plus the regressions in fuzz/regressions/<target>/;
# what it finds grows fuzz/target/corpus/<target>/ (not committed). Crashes
# land in fuzz/artifacts/<target>/. Exits non-zero if any target crashed.
# Targets default to all six (huddle::fuzzing::TARGETS).
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). Only the stable toolchain is
# installed and cargo fuzz passes nightly-only flags (-Zsanitizer, ...), so the
# script sets RUSTC_BOOTSTRAP=1, which lets stable rustc accept them.
#
# Environment:
#   FUZZ_SANITIZER   address (default) or none (faster, fewer checks)
#   FUZZ_RSS_MB      libFuzzer -rss_limit_mb (default 2048)
#   FUZZ_TMP         parent of the scratch dir the store targets write to
#                    (default /dev/shm when present, else /tmp)
#
# A crash: reproduce with `cargo fuzz run -a <target> fuzz/artifacts/<target>/crash-...`
# and minimize with `cargo fuzz tmin -a <target> <that file>` (both with
# RUSTC_BOOTSTRAP=1, from fuzz/), fix the bug, and keep the minimized
# input as fuzz/regressions/<target>/<what-it-is>; tests/fuzz_regressions.rs
# replays it in every `cargo test`.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
fuzz="$root/fuzz"
all=(framing json_message http_request journal meeting_file config)

seconds="${1:-60}"
if [[ $# -gt 0 ]]; then shift; fi
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [[ "$seconds" -eq 0 ]]; then
    echo "usage: tools/fuzz.sh [SECONDS] [TARGET...]   (targets: ${all[*]})" >&2
    exit 2
fi
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${all[@]}")
for t in "${targets[@]}"; do
    if [[ ! -f "$fuzz/fuzz_targets/$t.rs" ]]; then
        echo "fuzz.sh: unknown target $t (targets: ${all[*]})" >&2
        exit 2
    fi
done
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: cargo-fuzz is missing: cargo install cargo-fuzz" >&2
    exit 2
fi

export RUSTC_BOOTSTRAP=1
sanitizer="${FUZZ_SANITIZER:-address}"
rss="${FUZZ_RSS_MB:-2048}"
flags=(--fuzz-dir "$fuzz" -a -s "$sanitizer")

# The journal and meeting targets write a temp dir per input: keep it in RAM
# and remove whatever a crashed run leaves behind.
tmp_parent="${FUZZ_TMP:-/tmp}"
[[ -n "${FUZZ_TMP:-}" || ! -d /dev/shm ]] || tmp_parent=/dev/shm
scratch="$(mktemp -d "$tmp_parent/huddle-fuzz.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
export TMPDIR="$scratch"

# Build everything first, then run the binaries themselves: `cargo fuzz run`
# would rebuild whenever src/ changed in the meantime.
echo "== building ${targets[*]} (sanitizer $sanitizer)"
for t in "${targets[@]}"; do
    if ! cargo fuzz build "${flags[@]}" "$t"; then
        echo "fuzz.sh: building $t failed" >&2
        exit 2
    fi
done
bin_dir="$fuzz/target/$(rustc -vV | sed -n 's/^host: //p')/release"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_odr_violation=0}"

failed=()
summary=()
for t in "${targets[@]}"; do
    grown="$fuzz/target/corpus/$t"
    logs="$fuzz/target/logs/$t"
    artifacts="$fuzz/artifacts/$t"
    mkdir -p "$grown" "$logs" "$artifacts" "$fuzz/corpus/$t"
    corpora=("$grown" "$fuzz/corpus/$t")
    [[ -d "$fuzz/regressions/$t" ]] && corpora+=("$fuzz/regressions/$t")
    before="$(find "$artifacts" -type f | wc -l)"
    echo "== $t: ${seconds}s"
    start=$(date +%s)
    status=0
    # libFuzzer's -jobs=1 runs one fuzzing process and writes its output to
    # fuzz-0.log in the working directory: run from the target's log dir.
    rm -f "$logs/fuzz-0.log"
    (cd "$logs" && "$bin_dir/$t" -jobs=1 -max_total_time="$seconds" \
        -rss_limit_mb="$rss" -print_final_stats=1 -artifact_prefix="$artifacts/" \
        "${corpora[@]}") >"$logs/run.log" 2>&1 || status=$?
    elapsed=$(( $(date +%s) - start ))
    log="$logs/fuzz-0.log"
    [[ -f "$log" ]] || log="$logs/run.log"
    execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)"
    [[ -n "$execs" ]] || execs="$(grep -o 'Done [0-9]* runs' "$log" | tail -1 | grep -o '[0-9]*' || true)"
    after="$(find "$artifacts" -type f | wc -l)"
    units="$(find "$grown" -type f | wc -l)"
    if [[ $status -ne 0 || $after -gt $before ]]; then
        failed+=("$t")
        result="CRASH (exit $status; see $logs/, $artifacts/)"
        grep -m1 -A12 'panicked at\|ERROR: libFuzzer\|ERROR: AddressSanitizer' "$log" || tail -20 "$logs/run.log"
    else
        result="ok"
    fi
    line="$t: ${elapsed}s, ${execs:-?} execs, corpus $units, $result"
    echo "   $line"
    summary+=("$line")
done

echo "== summary"
printf '   %s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "== crashed: ${failed[*]}" >&2
    exit 1
fi
