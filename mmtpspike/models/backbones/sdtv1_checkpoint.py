"""Loading public Spike-driven Transformer (V1) ImageNet checkpoints into
SDTV1.

Public checkpoints name modules ``patch_embed.proj_conv.weight``,
``patch_embed.proj_bn3.bias``, ``patch_embed.rpe_conv.weight``,
``block.0.attn.q_conv.weight``, ``block.7.mlp.fc2_bn.running_var``,
``head.weight``...; they are stored bare, under ``model`` or under
``state_dict`` (see :func:`~.sdtv3_checkpoint.extract_state_dict`).
:func:`convert_sdtv1_keys` maps them with the table below;
:func:`load_sdtv1_checkpoint` loads, drops the classifier and the public
``talking_heads`` convs (defined but unused by the public forward), reports
every renamed, dropped, missing and unexpected key by name and refuses shape
mismatches.
"""
import os.path as osp
import re
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader

from mmtpspike.utils.checkpoint import safe_load_checkpoint
from .sdtv3_checkpoint import extract_state_dict

# public key pattern -> SDTV1 replacement, applied in order (first match)
KEY_TABLE = [
    # patch embedding layers: proj_conv, proj_conv1..3 -> proj.0..3.conv
    (re.compile(r'^patch_embed\.proj_(conv|bn)\.'), r'patch_embed.proj.0.\1.'),
    (re.compile(r'^patch_embed\.proj_(conv|bn)(\d+)\.'),
     r'patch_embed.proj.\2.\1.'),
    (re.compile(r'^block\.(\d+)\.'), r'blocks.\1.'),
]
CLASSIFIER_PREFIXES = ('head.', 'head_lif.')
# defined by the public attention but not used by its forward
UNUSED = re.compile(r'^blocks?\.\d+\.attn\.talking_heads\.')


def rename_public_key(key: str) -> str:
    """Map one public key to its SDTV1 name (other keys unchanged)."""
    for pattern, replacement in KEY_TABLE:
        new_key, count = pattern.subn(replacement, key)
        if count:
            return new_key
    return key


def convert_sdtv1_keys(
    state_dict: Dict[str, torch.Tensor]
) -> Tuple[Dict[str, torch.Tensor], Dict[str, str], List[str]]:
    """Convert public SDT-V1 keys to SDTV1 keys.

    Keys already in SDTV1 form pass unchanged, so checkpoints saved by this
    package load too.

    Returns:
        tuple[dict, dict, list[str]]: the converted state dict, the renamed
        keys (public -> ours) and the dropped keys (classifier and unused
        ``talking_heads`` convs).
    """
    converted, renamed, dropped = {}, {}, []
    for key, value in state_dict.items():
        if key.startswith(CLASSIFIER_PREFIXES) or UNUSED.match(key):
            dropped.append(key)
            continue
        new_key = rename_public_key(key)
        if new_key != key:
            renamed[key] = new_key
        converted[new_key] = value
    return converted, renamed, dropped


def _width_hint(state_dict: Dict[str, torch.Tensor]) -> str:
    """Name the published arch a converted checkpoint looks like."""
    from .sdtv1 import SDTV1
    rpe = state_dict.get('patch_embed.rpe_conv.weight')
    if rpe is None:
        return ''
    depth = len({key.split('.')[1] for key in state_dict
                 if key.startswith('blocks.')})
    for arch, setting in SDTV1.arch_settings.items():
        if setting['embed_dims'] == rpe.shape[0]:
            return (f" (the checkpoint looks like arch='{arch}' with "
                    f'{depth} blocks)')
    return f' (checkpoint embed_dims {rpe.shape[0]}, {depth} blocks)'


def _load(checkpoint: Union[str, dict], logger: str) -> Tuple[dict, str]:
    """Read a checkpoint path / URL (safely) or pass a loaded one through."""
    if not isinstance(checkpoint, str):
        return checkpoint, '<state dict>'
    if '://' in checkpoint:
        return CheckpointLoader.load_checkpoint(
            checkpoint, map_location='cpu', logger=logger), checkpoint
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'SDT-V1 checkpoint not found: {checkpoint}')
    return safe_load_checkpoint(checkpoint), checkpoint


def load_sdtv1_checkpoint(model: nn.Module,
                          checkpoint: Union[str, dict],
                          prefix: Optional[str] = None,
                          logger: str = 'current') -> dict:
    """Load a public or converted SDT-V1 checkpoint into ``model``.

    Args:
        model (SDTV1): the backbone.
        checkpoint (str | dict): path or URL (any mmengine scheme, loaded
            safely), or an already loaded checkpoint.
        prefix (str, optional): see
            :func:`~.sdtv3_checkpoint.extract_state_dict`.
        logger (str): mmengine logger name for the report.

    Returns:
        dict: ``renamed`` (public -> ours), ``dropped``, ``missing`` and
        ``unexpected`` keys.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: a tensor's shape differs from the model's (names the
            key, both shapes and the arch the checkpoint looks like).
    """
    checkpoint, source = _load(checkpoint, logger)
    state, renamed, dropped = convert_sdtv1_keys(
        extract_state_dict(checkpoint, prefix))
    own = model.state_dict()
    mismatched = [f'{k}: checkpoint {tuple(v.shape)} vs model '
                  f'{tuple(own[k].shape)}' for k, v in state.items()
                  if k in own and own[k].shape != v.shape]
    if mismatched:
        raise ValueError(
            f'SDT-V1 checkpoint {source} does not fit this backbone '
            f'(embed_dims={getattr(model, "embed_dims", "?")}, '
            f'depth={getattr(model, "depth", "?")}){_width_hint(state)}; '
            'mismatched shapes:\n  ' + '\n  '.join(mismatched[:10]) +
            ('' if len(mismatched) <= 10 else
             f'\n  ... and {len(mismatched) - 10} more'))
    result = model.load_state_dict(state, strict=False)
    report = dict(renamed=renamed, dropped=dropped,
                  missing=list(result.missing_keys),
                  unexpected=list(result.unexpected_keys))
    print_log(f'Loaded SDT-V1 checkpoint {source}: {len(state)} tensors, '
              f'{len(renamed)} renamed (e.g. block.N. -> blocks.N., '
              'patch_embed.proj_convI -> patch_embed.proj.I.conv); dropped '
              f'(classifier / unused talking_heads): {dropped}',
              logger=logger)
    for kind in ('missing', 'unexpected'):
        if report[kind]:
            print_log(f'{kind} keys ({len(report[kind])}): '
                      f'{", ".join(report[kind])}', logger=logger,
                      level=30)
    return report
