"""Run the public TP-Spikformer SDT-V3 code on our weights, for benchmarks.

The public code (``sdtv3_drop/models_drop.py`` of the TP-Spikformer
repository) is never shipped; the user points at a copy. It imports timm,
einops and torchinfo, which this module does not install. Its token pruning
keeps ``k * k`` tokens per image with ``k = int(H * k_value)`` (a square
count taken from the map height), so a retention ``keep`` of ours maps to the
``k_value`` whose ``k * k`` is nearest to ``keep * H * W``.
"""
import contextlib
import importlib.util
import io
import math
import os.path as osp
import types
from typing import List

import torch.nn as nn

from mmtpspike.utils.config import SetupError

PUBLIC_FILE = 'models_drop.py'
PUBLIC_DEPENDENCIES = 'timm (0.9.x on Python >= 3.11), einops and torchinfo'


def find_public_file(path: str) -> str:
    """``models_drop.py`` from a file path, its folder or the repo root."""
    candidates = [path, osp.join(path, PUBLIC_FILE),
                  osp.join(path, 'sdtv3_drop', PUBLIC_FILE)]
    for candidate in candidates:
        if osp.isfile(candidate) and candidate.endswith('.py'):
            return candidate
    raise SetupError(
        f'--public-code {path}: no {PUBLIC_FILE} there (looked for '
        f'{", ".join(candidates[1:])}); point it at a copy of the public '
        f'TP-Spikformer repository or at its sdtv3_drop/{PUBLIC_FILE}')


def load_public_module(path: str) -> types.ModuleType:
    """Import the user's copy of the public SDT-V3 pruning code."""
    file = find_public_file(path)
    spec = importlib.util.spec_from_file_location('tp_public_models_drop',
                                                  file)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError as error:
        raise SetupError(
            f'the public code {file} needs {PUBLIC_DEPENDENCIES}: '
            f'{error}; install them (e.g. pip install --target DIR '
            f'--no-deps "timm==0.9.16" einops torchinfo huggingface_hub '
            f'safetensors, then PYTHONPATH=DIR)') from error
    return module


def public_k_value(keep: float, height: int, width: int) -> float:
    """The public ``k_value`` whose ``int(H * k_value) ** 2`` tokens are
    nearest to ``keep * H * W`` (at least one, at most ``H * W`` tokens)."""
    side = min(max(1, round(math.sqrt(keep * height * width))),
               math.isqrt(height * width))
    return (side + 0.5) / height


def _dense_block_forward(block: nn.Module):
    """The public block's computation on every token (its scorer, top-k
    and gather / scatter change nothing at full retention)."""

    def forward(x):
        x = x + block.conv(x)
        x = x + block.attn(x)
        return x + block.mlp(x)

    return forward


def build_public_sdtv3(module: types.ModuleType, arch: str,
                       k_values: List[float], source: nn.Module,
                       dense: bool = False) -> nn.Module:
    """The public SDT-V3 of ``arch`` carrying ``source``'s weights.

    Args:
        module: the imported public code.
        arch (str): ``'t'``, ``'s'``, ``'m'`` or ``'l'``.
        k_values (list[float]): the public per-block side ratios.
        source (SDTV3): our backbone whose weights (BN statistics included)
            are copied, through the official-key mapping of
            :mod:`mmtpspike.models.backbones.sdtv3_checkpoint`.
        dense (bool): run every transformer block on all tokens.

    Returns:
        nn.Module: the public model in eval mode; call
        ``forward_features(images)`` for the last ``[B, C, H, W]`` map.
    """
    from mmtpspike.models.backbones.sdtv3_checkpoint import (
        CLASSIFIER_PREFIXES, rename_official_key)
    factory = getattr(module, f'Efficient_Spiking_Transformer_{arch}')
    with contextlib.redirect_stdout(io.StringIO()):  # it prints k_values
        model = factory(k_values=list(k_values))
    ours = source.state_dict()
    state = model.state_dict()
    for key in state:
        if not key.startswith(CLASSIFIER_PREFIXES):
            state[key] = ours[rename_official_key(key)]
    model.load_state_dict(state)
    if dense:
        for block in list(model.block3) + list(model.block4):
            block.forward = _dense_block_forward(block)
    return model.eval()
