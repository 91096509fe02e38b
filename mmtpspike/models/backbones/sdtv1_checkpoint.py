"""Loading public Spike-driven Transformer (V1) ImageNet checkpoints into
SDTV1.

Public checkpoints name modules ``patch_embed.proj_conv.weight``,
``patch_embed.proj_bn3.bias``, ``patch_embed.rpe_conv.weight``,
``block.0.attn.q_conv.weight``, ``block.7.mlp.fc2_bn.running_var``,
``head.weight``...; they are stored bare, under ``model`` or under
``state_dict`` (see :func:`~.checkpoint_loading.extract_state_dict`).
:func:`convert_sdtv1_keys` maps them with the table below;
:func:`load_sdtv1_checkpoint` loads, drops the classifier and the public
``talking_heads`` convs (defined but unused by the public forward), reports
every renamed, dropped, missing and unexpected key by name and refuses shape
mismatches.
"""
import re
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn

from .checkpoint_loading import (arch_hint, check_shapes,
                                 extract_state_dict, load_converted,
                                 read_checkpoint)

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


def _width_hint(state_dict: Dict[str, torch.Tensor],
                arch_settings: Dict[str, dict]) -> str:
    """Name the arch a converted checkpoint looks like by its width (see
    :func:`~.checkpoint_loading.arch_hint`)."""
    rpe = state_dict.get('patch_embed.rpe_conv.weight')
    if rpe is None:
        return ''
    depth = len({key.split('.')[1] for key in state_dict
                 if key.startswith('blocks.')})
    width = rpe.shape[0]
    return arch_hint(arch_settings,
                     lambda setting: setting['embed_dims'] == width,
                     f'embed_dims {width}, {depth} blocks')


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
            :func:`~.checkpoint_loading.extract_state_dict`.
        logger (str): mmengine logger name for the report.

    Returns:
        dict: ``renamed`` (public -> ours), ``dropped``, ``missing`` and
        ``unexpected`` keys.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: a tensor's shape differs from the model's (names the
            key, both shapes and the arch the checkpoint looks like).
    """
    checkpoint, source = read_checkpoint(checkpoint, 'SDT-V1', logger)
    state, renamed, dropped = convert_sdtv1_keys(
        extract_state_dict(checkpoint, prefix))
    hint = _width_hint(state, model.arch_settings)
    check_shapes(model, state, 'SDT-V1', source, hint)
    return load_converted(model, state, 'SDT-V1', source,
                          dict(renamed=renamed, dropped=dropped), logger)
