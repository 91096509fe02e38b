#!/usr/bin/env bash
# One-command, idempotent set-up of the mmtpspike environment.
#
#   bash tools/setup.sh
#
# Creates ``.venv`` inside the checkout (override with MMTPSPIKE_VENV), installs
# the pinned stack from requirements/ and mmtpspike in editable mode.  mmcv
# 2.1.0 is built from source WITH its compiled ops (nms, RoIAlign, ...) once
# (~15 min on 2 cores) and the wheel is kept in a cache outside the clone
# (MMTPSPIKE_CACHE, default ~/.cache/mmtpspike) so later set-ups take seconds.
# A second run with unchanged requirements only verifies the environment.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MMTPSPIKE_VENV:-$ROOT/.venv}"
CACHE="${MMTPSPIKE_CACHE:-$HOME/.cache/mmtpspike}"
PYTHON="${PYTHON:-python3.11}"
MMCV_VERSION="2.1.0"
STEP="start"

log() { printf '[setup] %s\n' "$*"; }
fail() { printf '[setup] FAILED at step: %s\n' "$STEP" >&2; exit 1; }
trap fail ERR

step() { STEP="$1"; log "$1"; }

step "checking Python"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  PYTHON=python3
fi
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
  || { log "Python 3.11 is required (found $("$PYTHON" --version 2>&1))"; false; }

stamp_of() {
  cat "$ROOT"/requirements/*.txt "$ROOT/setup.cfg" "$ROOT/tools/setup.sh" | sha256sum | cut -c1-16
}
STAMP_FILE="$VENV/.mmtpspike-stamp"
STAMP="$(stamp_of)"

verify() {
  "$VENV/bin/python" - <<'EOF'
import mmcv, mmdet, mmseg, mmengine, spikingjelly, torch  # noqa: F401
from mmcv.ops import nms, roi_align  # noqa: F401  (compiled ops present)
import mmtpspike  # noqa: F401
print(f'[setup] torch {torch.__version__}, mmcv {mmcv.__version__}, '
      f'mmdet {mmdet.__version__}, mmseg {mmseg.__version__}, '
      f'mmengine {mmengine.__version__}')
EOF
}

if [[ -f "$STAMP_FILE" && "$(cat "$STAMP_FILE")" == "$STAMP" ]]; then
  step "environment up to date, verifying"
  verify
  log "done (cached)"
  exit 0
fi

step "creating virtual environment at $VENV"
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

step "installing build tools"
"${PIP[@]}" install -q --upgrade "pip<26"
"${PIP[@]}" install -q -r "$ROOT/requirements/build.txt"

step "installing torch and torchvision"
"${PIP[@]}" install -q "$(grep '^torch==' "$ROOT/requirements/runtime.txt")" \
  "$(grep '^torchvision==' "$ROOT/requirements/runtime.txt")" \
  "$(grep '^numpy==' "$ROOT/requirements/runtime.txt")"

step "installing mmcv $MMCV_VERSION with compiled ops"
if ! "$VENV/bin/python" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" 2>/dev/null; then
  mkdir -p "$CACHE/wheels"
  WHEEL="$(ls "$CACHE"/wheels/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n1 || true)"
  if [[ -z "$WHEEL" ]]; then
    log "no cached mmcv wheel in $CACHE/wheels: building from source (about 15 minutes)"
    "${PIP[@]}" install -q "$(grep '^opencv-python==' "$ROOT/requirements/runtime.txt")" \
      addict packaging pyyaml yapf "$(grep '^mmengine==' "$ROOT/requirements/runtime.txt")"
    BUILD_DIR="$(mktemp -d)"
    # torch 2.14 headers need C++20; mmcv asks for C++17: a wrapper fixes the flag.
    CC="$ROOT/tools/build/cxx20_compiler.sh" CXX="$ROOT/tools/build/cxx20_compiler.sh" \
    MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="$(nproc)" "${PIP[@]}" wheel -q --no-deps \
      --no-build-isolation --no-binary mmcv "mmcv==$MMCV_VERSION" -w "$BUILD_DIR"
    WHEEL="$(ls "$BUILD_DIR"/mmcv-"$MMCV_VERSION"-*.whl | head -n1)"
    mv "$WHEEL" "$CACHE/wheels/"
    WHEEL="$CACHE/wheels/$(basename "$WHEEL")"
    rm -rf "$BUILD_DIR"
  else
    log "reusing cached wheel $WHEEL"
  fi
  "${PIP[@]}" install -q --no-deps "$WHEEL"
fi

step "installing mmengine, mmdet, mmsegmentation and the rest of the stack"
# spikingjelly declares torchaudio (unused by the modules we import); installing
# it would make pip replace the pinned torch, so its real deps are listed here.
grep -v '^spikingjelly==' "$ROOT/requirements/runtime.txt" > "$VENV/.runtime-no-sj.txt"
"${PIP[@]}" install -q -r "$VENV/.runtime-no-sj.txt" -r "$ROOT/requirements/tests.txt" \
  loguru tqdm packaging
"${PIP[@]}" install -q --no-deps "$(grep '^spikingjelly==' "$ROOT/requirements/runtime.txt")"

step "installing mmtpspike (editable)"
"${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT"

step "verifying imports and compiled ops"
verify
echo "$STAMP" > "$STAMP_FILE"
log "done: activate with 'source $VENV/bin/activate'"
