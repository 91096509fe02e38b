"""Reading public checkpoints and loading converted state dicts, with a
report of every change: shared by the backbones' checkpoint modules.

Each backbone module converts the public key layout to its own
(``convert_*_keys``); these helpers do the rest the same way for all of
them: read safely, refuse shape mismatches with a message that names the
keys and the size the checkpoint looks like, load non-strictly and log what
was renamed, dropped, missing or unexpected.
"""
import os.path as osp
from typing import Any, Callable, Dict, Optional, Tuple, Union

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader

from mmtpspike.utils.checkpoint import safe_load_checkpoint

#: mismatched shapes listed in full in the error
SHOWN_MISMATCHES = 10


def extract_state_dict(checkpoint: dict,
                       prefix: Optional[str] = None) -> Dict[str, torch.Tensor]:
    """Find the backbone weights in a loaded checkpoint.

    Args:
        checkpoint (dict): bare state dict, ``{'model': ...}`` or
            ``{'state_dict': ...}``.
        prefix (str, optional): keep only keys under this prefix (stripped);
            by default ``backbone.`` is stripped when present, and
            ``module.`` (DDP) always.

    Returns:
        dict: tensor state dict.
    """
    state = checkpoint
    for key in ('state_dict', 'model'):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    state = {k[len('module.'):] if k.startswith('module.') else k: v
             for k, v in state.items() if isinstance(v, torch.Tensor)}
    if prefix is None and any(k.startswith('backbone.') for k in state):
        prefix = 'backbone.'
    if prefix:
        state = {k[len(prefix):]: v for k, v in state.items()
                 if k.startswith(prefix)}
    return state


def read_checkpoint(checkpoint: Union[str, dict], name: str,
                    logger: str = 'current') -> Tuple[dict, str]:
    """Load a path / URL (any mmengine scheme; local files safely, see
    :func:`~mmtpspike.utils.checkpoint.safe_load_checkpoint`) or pass an
    already loaded checkpoint through.

    Args:
        checkpoint (str | dict): path, URL or loaded checkpoint.
        name (str): backbone name for the error, e.g. ``'QKFormer'``.
        logger (str): mmengine logger name.

    Returns:
        tuple[dict, str]: the checkpoint and where it came from.

    Raises:
        FileNotFoundError: a local path that does not exist.
    """
    if not isinstance(checkpoint, str):
        return checkpoint, '<state dict>'
    if '://' in checkpoint:
        return CheckpointLoader.load_checkpoint(
            checkpoint, map_location='cpu', logger=logger), checkpoint
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'{name} checkpoint not found: {checkpoint}')
    return safe_load_checkpoint(checkpoint), checkpoint


def _model_size(model: nn.Module) -> str:
    """``embed_dims=..., depth=...`` of a backbone, as far as it has them."""
    return ', '.join(f'{attr}={getattr(model, attr)}'
                     for attr in ('embed_dims', 'depth')
                     if hasattr(model, attr))


def arch_hint(arch_settings: Dict[str, Any], fits: Callable[[Any], bool],
              found: str) -> str:
    """What a mismatched checkpoint looks like, for :func:`check_shapes`.

    Args:
        arch_settings (dict): The backbone's ``arch_settings`` (given by the
            caller, so checkpoint modules need no backbone class).
        fits (callable): ``fits(setting)``: whether the checkpoint matches
            that arch's setting.
        found (str): What the checkpoint shows, e.g. ``'stem width 32'``.

    Returns:
        str: ``" (the checkpoint looks like arch='l', stem width 32)"``, or
        ``' (checkpoint stem width 20)'`` when no arch fits.
    """
    for arch, setting in arch_settings.items():
        if fits(setting):
            return f" (the checkpoint looks like arch='{arch}', {found})"
    return f' (checkpoint {found})'


def check_shapes(model: nn.Module, state: Dict[str, torch.Tensor],
                 name: str, source: str, size_hint: str = '') -> None:
    """Refuse a converted state dict whose tensors do not fit ``model``.

    Raises:
        ValueError: naming the backbone size, what the checkpoint looks like
            (``size_hint``) and every mismatched key with both shapes.
    """
    own = model.state_dict()
    mismatched = [f'{k}: checkpoint {tuple(v.shape)} vs model '
                  f'{tuple(own[k].shape)}' for k, v in state.items()
                  if k in own and own[k].shape != v.shape]
    if not mismatched:
        return
    more = len(mismatched) - SHOWN_MISMATCHES
    raise ValueError(
        f'{name} checkpoint {source} does not fit this backbone '
        f'({_model_size(model)}){size_hint}; build the backbone with the '
        f"checkpoint's arch. Mismatched shapes:\n  " +
        '\n  '.join(mismatched[:SHOWN_MISMATCHES]) +
        (f'\n  ... and {more} more' if more > 0 else ''))


def load_converted(model: nn.Module, state: Dict[str, torch.Tensor],
                   name: str, source: str, changes: dict,
                   logger: str = 'current') -> dict:
    """Load a converted state dict non-strictly and report it.

    Args:
        model (nn.Module): the backbone.
        state (dict): converted tensors (shapes already checked).
        name (str): backbone name for the log.
        source (str): where the checkpoint came from.
        changes (dict): what the conversion did, e.g. ``renamed`` /
            ``dropped`` key lists; logged and returned.
        logger (str): mmengine logger name.

    Returns:
        dict: ``changes`` plus the ``missing`` and ``unexpected`` keys.
    """
    result = model.load_state_dict(state, strict=False)
    report = dict(changes, missing=list(result.missing_keys),
                  unexpected=list(result.unexpected_keys))
    summary = ', '.join(f'{len(keys)} {kind}' for kind, keys in
                        changes.items())
    print_log(f'Loaded {name} checkpoint {source}: {len(state)} tensors '
              f'({summary})', logger=logger)
    if changes.get('dropped'):
        print_log(f'dropped keys: {", ".join(changes["dropped"])}',
                  logger=logger)
    for kind in ('missing', 'unexpected'):
        if report[kind]:
            print_log(f'{kind} keys ({len(report[kind])}): '
                      f'{", ".join(report[kind])}', logger=logger,
                      level=30)
    return report
