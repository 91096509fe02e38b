#!/usr/bin/env bash
# Distributed evaluation with torchrun (GPUs with NCCL, CPU with gloo).
#
#   bash tools/dist_test.sh CONFIG CHECKPOINT NPROC [tools/test.py options ...]
#
# NPROC processes on this node; several nodes: NNODES, NODE_RANK,
# MASTER_ADDR, PORT; interpreter: PYTHON (see tools/dist_launch.sh).
if [[ $# -lt 3 ]]; then
  echo "usage: bash $0 CONFIG CHECKPOINT NPROC [tools/test.py options ...]" >&2
  exit 2
fi
exec bash "$(dirname "${BASH_SOURCE[0]}")/dist_launch.sh" test.py "$3" "$1" \
  "$2" "${@:4}"
