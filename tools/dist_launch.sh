#!/usr/bin/env bash
# Start a tool of this directory on NPROC processes per node with torchrun
# (python -m torch.distributed.run of the project's interpreter), passing it
# --launcher pytorch. tools/dist_train.sh and tools/dist_test.sh call it.
#
#   bash tools/dist_launch.sh TOOL NPROC [tool arguments ...]
#
# Environment:
#   PYTHON       interpreter (default: the checkout's .venv/bin/python, else
#                python3 on PATH, i.e. the active environment)
#   NNODES       number of nodes (default 1)
#   NODE_RANK    rank of this node, 0 .. NNODES-1 (default 0)
#   MASTER_ADDR  address of node 0 (default 127.0.0.1)
#   PORT         free TCP port on node 0 (default MASTER_PORT, else 29500)
# Each process uses one GPU (NCCL) when torch sees CUDA, the CPU (gloo)
# otherwise.
set -euo pipefail

TOOLS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT_DIR="$(dirname "$TOOLS_DIR")"

if [[ $# -lt 2 ]]; then
  echo "usage: bash $0 TOOL NPROC [tool arguments ...]" >&2
  exit 2
fi
TOOL="$1"
NPROC="$2"
shift 2
if [[ ! "$NPROC" =~ ^[1-9][0-9]*$ ]]; then
  echo "error: the number of processes must be a positive integer, got '$NPROC'" >&2
  exit 2
fi

if [[ -n "${PYTHON:-}" ]]; then
  :
elif [[ -x "$ROOT_DIR/.venv/bin/python" ]]; then
  PYTHON="$ROOT_DIR/.venv/bin/python"
else
  PYTHON="$(command -v python3 || command -v python || echo python3)"
fi
if ! "$PYTHON" -c 'import torch.distributed.run' 2>/dev/null; then
  echo "error: '$PYTHON' cannot import torch: run 'bash tools/setup.sh'," \
       "activate the environment that has mmtpspike, or set PYTHON" >&2
  exit 1
fi

NNODES="${NNODES:-1}"
NODE_RANK="${NODE_RANK:-0}"
MASTER_ADDR="${MASTER_ADDR:-127.0.0.1}"
PORT="${PORT:-${MASTER_PORT:-29500}}"
echo "[dist] $PYTHON -m torch.distributed.run: node $NODE_RANK of $NNODES," \
     "$NPROC process(es), master $MASTER_ADDR:$PORT" >&2

PYTHONPATH="$ROOT_DIR${PYTHONPATH:+:$PYTHONPATH}" \
exec "$PYTHON" -m torch.distributed.run \
  --nnodes="$NNODES" --node_rank="$NODE_RANK" --nproc_per_node="$NPROC" \
  --master_addr="$MASTER_ADDR" --master_port="$PORT" \
  "$TOOLS_DIR/$TOOL" "$@" --launcher pytorch
