#!/usr/bin/env bash
# Distributed training with torchrun (GPUs with NCCL, CPU with gloo).
#
#   bash tools/dist_train.sh CONFIG NPROC [tools/train.py options ...]
#
# NPROC processes on this node; several nodes: NNODES, NODE_RANK,
# MASTER_ADDR, PORT; interpreter: PYTHON (see tools/dist_launch.sh).
if [[ $# -lt 2 ]]; then
  echo "usage: bash $0 CONFIG NPROC [tools/train.py options ...]" >&2
  exit 2
fi
exec bash "$(dirname "${BASH_SOURCE[0]}")/dist_launch.sh" train.py "$2" "$1" \
  "${@:3}"
