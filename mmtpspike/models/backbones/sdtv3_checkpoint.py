"""Loading official SDT-V3 (E-SpikeFormer) ImageNet checkpoints into SDTV3.

Official checkpoints name modules ``downsample1_1.encode_conv.weight``,
``ConvBlock1_2.0.Conv.pwconv1.0.weight``, ``block3.0.attn.q_conv.0.weight``,
``head.weight``...; they are stored bare, under ``model`` or under
``state_dict`` (mmdet / mmseg checkpoints, with a ``backbone.`` prefix).
:func:`convert_official_keys` maps them explicitly onto :class:`SDTV3`;
:func:`load_sdtv3_checkpoint` loads, drops the classifier, reports every
missing and unexpected key by name and refuses shape mismatches.
"""
import re
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn

from .checkpoint_loading import (arch_hint, check_shapes,
                                 extract_state_dict, load_converted,
                                 read_checkpoint)


# official top-level module prefix -> SDTV3 module prefix
STAGE_PREFIXES = [
    ('downsample1_1.', 'stem.downsample.'),
    ('ConvBlock1_1.0.', 'stem.blocks.0.'),
    ('downsample1_2.', 'stages.0.downsample.'),
    ('ConvBlock1_2.0.', 'stages.0.blocks.0.'),
    ('downsample2.', 'stages.1.downsample.'),
    ('ConvBlock2_1.0.', 'stages.1.blocks.0.'),
    ('ConvBlock2_2.0.', 'stages.1.blocks.1.'),
    ('downsample3.', 'stages.2.downsample.'),
    ('downsample4.', 'stages.3.downsample.'),
]
TRANSFORMER_BLOCK = re.compile(r'^block([34])\.(\d+)\.')
CLASSIFIER_PREFIXES = ('head.', 'head_lif.', 'lif.')
# the SepConv mixer is 'Conv' in conv blocks and 'conv' in transformer blocks
MIXER = re.compile(r'^((?:stem|stages\.\d+)\.blocks\.\d+\.)(?:Conv|conv)\.')


def rename_official_key(key: str) -> str:
    """Map one official key to the SDTV3 name (unknown keys unchanged)."""
    match = TRANSFORMER_BLOCK.match(key)
    if match:
        stage = int(match.group(1)) - 1
        key = f'stages.{stage}.blocks.{match.group(2)}.' + key[match.end():]
    else:
        for old, new in STAGE_PREFIXES:
            if key.startswith(old):
                key = new + key[len(old):]
                break
    return MIXER.sub(r'\1sep_conv.', key)


def convert_official_keys(
        state_dict: Dict[str, torch.Tensor]
) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """Convert official SDT-V3 keys to SDTV3 keys; drop the classifier.

    Keys already in SDTV3 form pass unchanged, so checkpoints saved by this
    package load too.

    Returns:
        tuple[dict, list[str]]: converted state dict and the dropped
        classifier keys.
    """
    converted, dropped = {}, []
    for key, value in state_dict.items():
        if key.startswith(CLASSIFIER_PREFIXES):
            dropped.append(key)
            continue
        converted[rename_official_key(key)] = value
    return converted, dropped


def _width_hint(state_dict: Dict[str, torch.Tensor],
                arch_settings: Dict[str, list]) -> str:
    """Name the arch a checkpoint looks like by its stem width (see
    :func:`~.checkpoint_loading.arch_hint`)."""
    stem = state_dict.get('stem.downsample.encode_conv.weight')
    if stem is None:
        return ''
    width = stem.shape[0]
    return arch_hint(arch_settings, lambda dims: dims[0] // 2 == width,
                     f'stem width {width}')


def load_sdtv3_checkpoint(model: nn.Module,
                          checkpoint: Union[str, dict],
                          prefix: Optional[str] = None,
                          logger: str = 'current') -> dict:
    """Load an official or converted SDT-V3 checkpoint into ``model``.

    Args:
        model (SDTV3): the backbone.
        checkpoint (str | dict): path or URL (any mmengine scheme, loaded
            safely), or an already loaded checkpoint.
        prefix (str, optional): see :func:`extract_state_dict`.
        logger (str): mmengine logger name for the report.

    Returns:
        dict: ``missing``, ``unexpected`` and ``dropped`` key lists.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: a tensor's shape differs from the model's (names the
            key, both shapes and the arch the checkpoint looks like).
    """
    checkpoint, source = read_checkpoint(checkpoint, 'SDT-V3', logger)
    state, dropped = convert_official_keys(
        extract_state_dict(checkpoint, prefix))
    hint = _width_hint(state, model.arch_settings)
    check_shapes(model, state, 'SDT-V3', source, hint)
    return load_converted(model, state, 'SDT-V3', source,
                          dict(dropped=dropped), logger)
