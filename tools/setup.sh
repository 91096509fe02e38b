#!/usr/bin/env bash
# One-command, idempotent set-up of an mmtpspike environment.
#
#   bash tools/setup.sh [PROFILE]          # or MMTPSPIKE_PROFILE=PROFILE
#
# Profiles, each pinned in requirements/ and built in its own virtual
# environment inside the checkout (override with MMTPSPIKE_VENV):
#
#   default  Python 3.11, torch 2.14.1, spikingjelly 2.0.0     .venv
#            (requirements/runtime.txt)
#   classic  Python 3.10, torch 2.1.2, spikingjelly 0.0.0.0.14  .venv-classic
#            (requirements/classic.txt), the classic OpenMMLab environment
#
# Both install mmcv 2.1.0 built from source WITH its compiled ops (nms,
# RoIAlign, ...) and mmtpspike in editable mode. The mmcv wheel is built once
# and kept in a cache outside the clone (MMTPSPIKE_CACHE, default
# ~/.cache/mmtpspike) under a key of Python tag, torch version and CUDA
# build, so later set-ups take seconds to minutes. A second run with
# unchanged inputs only verifies the environment.
#
# mmcv gets CUDA ops when torch is a CUDA build and sees a GPU, or when asked
# with MMTPSPIKE_CUDA=1 (then TORCH_CUDA_ARCH_LIST names the architectures if
# no GPU is visible); MMTPSPIKE_CUDA=0 forces CPU ops. nvcc comes from a
# system toolkit whose version matches torch's CUDA, else from the nvidia-*
# packages on PyPI. See tools/build/cuda_build_env.py and docs/install.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROFILE="${1:-${MMTPSPIKE_PROFILE:-default}}"
CACHE="${MMTPSPIKE_CACHE:-$HOME/.cache/mmtpspike}"
MMCV_VERSION="2.1.0"
STEP="start"

log() { printf '[setup] %s\n' "$*"; }
fail() { printf '[setup] FAILED at step: %s\n' "$STEP" >&2; exit 1; }
trap fail ERR

step() { STEP="$1"; log "$1"; }

case "$PROFILE" in
  default) PY_VERSION=3.11; REQS="$ROOT/requirements/runtime.txt"
           VENV="${MMTPSPIKE_VENV:-$ROOT/.venv}" ;;
  classic) PY_VERSION=3.10; REQS="$ROOT/requirements/classic.txt"
           VENV="${MMTPSPIKE_VENV:-$ROOT/.venv-classic}" ;;
  *) log "unknown profile '$PROFILE': use 'default' or 'classic'"; exit 2 ;;
esac
[[ "$PROFILE" == default ]] || log "profile: $PROFILE"

step "checking Python"
find_python() {
  local candidate
  for candidate in "${PYTHON:-}" "python$PY_VERSION" \
      "$(pyenv root 2>/dev/null)/versions/$PY_VERSION"*/bin/"python$PY_VERSION" \
      python3; do
    if [[ -n "$candidate" ]] && "$candidate" -c \
        "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$PY_VERSION'.split('.'))))" \
        2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}
PYTHON="$(find_python)" \
  || { log "Python $PY_VERSION is required for profile '$PROFILE' (set PYTHON)"; false; }

pin() { grep "^$1==" "$REQS"; }

stamp_of() {
  cat "$REQS" "$ROOT"/requirements/{build,tests}.txt "$ROOT/setup.cfg" \
    "$ROOT/tools/setup.sh" "$ROOT"/tools/build/*.py "$ROOT"/tools/build/*.sh | sha256sum | cut -c1-16
}
STAMP_FILE="$VENV/.mmtpspike-stamp"

verify() {
  "$VENV/bin/python" - <<'EOF'
import mmcv, mmdet, mmseg, mmengine, spikingjelly, torch  # noqa: F401
from mmcv.ops import get_compiling_cuda_version, nms, roi_align  # noqa: F401
import mmtpspike  # noqa: F401
print(f'[setup] torch {torch.__version__}, mmcv {mmcv.__version__} '
      f'(CUDA ops: {get_compiling_cuda_version()}), mmdet {mmdet.__version__}, '
      f'mmseg {mmseg.__version__}, mmengine {mmengine.__version__}')
EOF
}

# The CUDA decision is part of the stamp (its errors are reported at the
# decision step below): a GPU appearing, or MMTPSPIKE_CUDA
# / TORCH_CUDA_ARCH_LIST changing, re-runs the set-up.
cuda_decision() {
  "$VENV/bin/python" "$ROOT/tools/build/cuda_build_env.py" decide
}
# the stamp of a set-up made with CUDA decision $1
full_stamp() {
  printf '%s-%s\n' "$(stamp_of)" "$(printf '%s\n' "$1" | sha256sum | cut -c1-8)"
}

if [[ -f "$STAMP_FILE" && -x "$VENV/bin/python" ]] \
    && [[ "$(cat "$STAMP_FILE")" == "$(full_stamp "$(cuda_decision 2>/dev/null)")" ]]; then
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
"${PIP[@]}" install -q "$(pin torch)" "$(pin torchvision)" "$(pin numpy)"

step "deciding between CPU and CUDA ops for mmcv"
DECISION="$(cuda_decision)"
eval "$DECISION"
log "$CUDA_REASON"
if [[ "$MMCV_CUDA" == 0 ]] && command -v nvcc >/dev/null 2>&1; then
  log "(nvcc found at $(command -v nvcc); it is not used for a CPU build)"
fi

TORCH_TAG="$("$VENV/bin/python" -c 'import sys, torch; print(f"cp{sys.version_info[0]}{sys.version_info[1]}-torch{torch.__version__}")')"
if [[ "$MMCV_CUDA" == 1 ]]; then
  CUDA_TAG="cu${TORCH_CUDA//./}-sm$(echo "$CUDA_ARCHS" | tr -d '.+' | tr ' ;' '__')"
else
  CUDA_TAG=cpu
fi
WHEEL_DIR="$CACHE/wheels/$TORCH_TAG-$CUDA_TAG"

# Is the installed mmcv the wanted version, with CUDA ops of torch's CUDA
# major version (MMCV_CUDA=1) or CPU ops only? Explains itself on stderr.
mmcv_as_wanted() {
  "$VENV/bin/python" - "$MMCV_VERSION" "$MMCV_CUDA" "$TORCH_CUDA" <<'EOF'
import sys
try:
    import mmcv
    from mmcv.ops import get_compiling_cuda_version
except ImportError as err:
    sys.exit(f'mmcv with compiled ops is not importable: {err}')
version, cuda, torch_cuda = sys.argv[1:]
built = get_compiling_cuda_version()
if mmcv.__version__ != version:
    sys.exit(f'mmcv {mmcv.__version__} is installed, {version} is wanted')
has = 'CPU ops only' if built == 'not available' else f'CUDA {built} ops'
if cuda == '1' and built.split('.')[0] != torch_cuda.split('.')[0]:
    sys.exit(f'mmcv has {has}; CUDA {torch_cuda} ops are wanted')
if cuda == '0' and built != 'not available':
    sys.exit(f'mmcv has {has}; CPU ops only are wanted')
EOF
}

step "installing mmcv $MMCV_VERSION with compiled ops ($CUDA_TAG)"
if ! mmcv_as_wanted 2>/dev/null; then
  mkdir -p "$WHEEL_DIR"
  WHEEL="$(ls "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n1 || true)"
  if [[ -z "$WHEEL" ]]; then
    log "no cached mmcv wheel in $WHEEL_DIR: building from source" \
        "(on 2 cores about 30 minutes for CPU ops, 65 for CUDA ops)"
    "${PIP[@]}" install -q "$(pin opencv-python)" \
      addict packaging pyyaml yapf "$(pin mmengine)"
    BUILD_ENV=(MMCV_WITH_OPS=1 "FORCE_CUDA=$MMCV_CUDA"
               "MAX_JOBS=${MAX_JOBS:-$(nproc)}")
    # torch >= 2.10 headers need C++20 while mmcv asks for C++14/17: a
    # wrapper fixes the flag (for nvcc too in CUDA builds).
    CXX20="$ROOT/tools/build/cxx20_compiler.sh"
    NEEDS_CXX20=0
    grep -q 'C++20 or later' "$("$VENV/bin/python" -c \
      'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "include/ATen/ATen.h"))')" \
      && NEEDS_CXX20=1
    if [[ "$MMCV_CUDA" == 1 ]]; then
      if [[ -n "$CUDA_PIP" ]]; then
        log "no system CUDA $TORCH_CUDA toolkit: installing nvcc from PyPI ($CUDA_PIP)"
        # shellcheck disable=SC2086
        "${PIP[@]}" install -q $CUDA_PIP
      fi
      CUDA_HOME_DIR="$VENV/cuda-home"
      "$VENV/bin/python" "$ROOT/tools/build/cuda_build_env.py" assemble \
        "$CUDA_HOME_DIR" ${CUDA_TOOLKIT:+--toolkit "$CUDA_TOOLKIT"} | sed 's/^/[setup] /'
      BUILD_ENV+=("CUDA_HOME=$CUDA_HOME_DIR" "PATH=$CUDA_HOME_DIR/bin:$PATH"
                  "TORCH_CUDA_ARCH_LIST=$CUDA_ARCHS")
      if [[ "$NEEDS_CXX20" == 1 ]]; then
        # CC stays unset: torch would hand it to nvcc as its host compiler.
        BUILD_ENV+=("CXX=$CXX20"
                    "PYTORCH_NVCC=env MMTPSPIKE_REAL_CXX=$CUDA_HOME_DIR/bin/nvcc $CXX20")
      fi
    elif [[ "$NEEDS_CXX20" == 1 ]]; then
      BUILD_ENV+=("CC=$CXX20" "CXX=$CXX20")
    fi
    BUILD_DIR="$(mktemp -d)"
    # --no-cache-dir: pip's own wheel cache keys a built wheel on the sdist
    # alone and would hand back a build with other ops (a CPU build for a
    # CUDA one); the cache above, keyed on torch and CUDA, replaces it.
    env "${BUILD_ENV[@]}" "${PIP[@]}" wheel -q --no-deps --no-cache-dir \
      --no-build-isolation --no-binary mmcv "mmcv==$MMCV_VERSION" -w "$BUILD_DIR"
    WHEEL="$(ls "$BUILD_DIR"/mmcv-"$MMCV_VERSION"-*.whl | head -n1)"
    mv "$WHEEL" "$WHEEL_DIR/"
    WHEEL="$WHEEL_DIR/$(basename "$WHEEL")"
    rm -rf "$BUILD_DIR"
  else
    log "reusing cached wheel $WHEEL"
  fi
  "${PIP[@]}" install -q --no-deps --force-reinstall "$WHEEL"
fi

step "installing mmengine, mmdet, mmsegmentation and the rest of the stack"
# spikingjelly 2.x declares torchaudio (unused by the modules we import);
# installing it would make pip replace the pinned torch, so spikingjelly is
# installed without dependencies and the ones it needs are listed here.
grep -v '^spikingjelly==' "$REQS" > "$VENV/.runtime-no-sj.txt"
"${PIP[@]}" install -q -r "$VENV/.runtime-no-sj.txt" -r "$ROOT/requirements/tests.txt" \
  loguru tqdm packaging
"${PIP[@]}" install -q --no-deps "$(pin spikingjelly)"

step "installing mmtpspike (editable)"
"${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT"

step "verifying imports and compiled ops"
verify
mmcv_as_wanted || { log "the mmcv wheel from $WHEEL_DIR does not have the" \
  "wanted ops; delete it and run this script again to rebuild it"; false; }
full_stamp "$DECISION" > "$STAMP_FILE"
log "done: activate with 'source $VENV/bin/activate'"
