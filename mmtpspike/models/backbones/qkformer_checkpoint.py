"""Loading public QKFormer ImageNet checkpoints into :class:`QKFormer`.

Public checkpoints (``imagenet/qkformer.py`` of the QKFormer code, stored
under ``model``) name modules ``patch_embed1.proj_conv.weight``,
``stage1.0.tssa.q_conv.weight``, ``stage3.4.attn.proj_bn.bias``,
``stage2.1.mlp.fc1_conv.weight``, ``head.weight``... The key table:

====================================  ====================================
public                                QKFormer
====================================  ====================================
``patch_embed{i}.``                   ``stages.{i-1}.patch_embed.``
``stage{i}.{j}.``                     ``stages.{i-1}.blocks.{j}.``
``...patch_embed.proj_{conv,bn}``     ``...patch_embed.stem_{conv,bn}``
``proj1_`` / ``proj3_``               ``down_``
``proj2_`` / ``proj4_``               ``embed_``
``proj_res_``                         ``shortcut_``
``...blocks.{j}.tssa.``               ``...blocks.{j}.attn.``
``stage3.{j}.attn.{q,k,v,proj}_``     ``stages.2.blocks.{j}.attn.{q,k,v,proj}.``
``head.``                             dropped (classifier)
====================================  ====================================

The last row follows the shared spiking self-attention (stage 3), which
groups each ``conv / bn`` pair in one unit (``q.conv``, ``q.bn``). Keys of
checkpoints saved by this package before that change (``attn.q_conv``) map
the same way, in :func:`convert_qkformer_keys` and, for whole-model state
dicts, in :func:`upgrade_legacy_keys` (a ``load_state_dict`` pre-hook of
:class:`QKFormer`).

Tensor shapes are unchanged. :func:`load_qkformer_checkpoint` reports every
renamed, dropped, missing and unexpected key and refuses shape mismatches.
"""
import re
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn

from .checkpoint_loading import (arch_hint, check_shapes,
                                 extract_state_dict, load_converted,
                                 read_checkpoint)

PATCH_EMBED = re.compile(r'^patch_embed([123])\.(proj(?:\d|_res)?)_')
BLOCK = re.compile(r'^stage([123])\.(\d+)\.(tssa\.)?')
# public patch-embedding layer -> QKFormer layer (suffix _conv / _bn kept)
PATCH_EMBED_LAYERS = {
    'proj': 'stem',
    'proj1': 'down',
    'proj2': 'embed',
    'proj3': 'down',
    'proj4': 'embed',
    'proj_res': 'shortcut',
}
# stage-3 SSA layers, public / earlier names: q_conv -> q.conv
SSA_LAYER = re.compile(
    r'^(stages\.2\.blocks\.\d+\.attn\.)(q|k|v|proj)_(conv|bn)\.')
CLASSIFIER_PREFIXES = ('head.', )


def rename_public_key(key: str) -> str:
    """Map one public key to the QKFormer name (other keys unchanged)."""
    match = PATCH_EMBED.match(key)
    if match and match.group(2) in PATCH_EMBED_LAYERS:
        stage = int(match.group(1)) - 1
        layer = PATCH_EMBED_LAYERS[match.group(2)]
        return f'stages.{stage}.patch_embed.{layer}_' + key[match.end():]
    match = BLOCK.match(key)
    if match:
        stage = int(match.group(1)) - 1
        attn = 'attn.' if match.group(3) else ''
        key = f'stages.{stage}.blocks.{match.group(2)}.{attn}' + \
            key[match.end():]
    return SSA_LAYER.sub(r'\1\2.\3.', key)


def upgrade_legacy_keys(state_dict: Dict[str, torch.Tensor], prefix: str,
                        *unused) -> None:
    """Rename, in place, the stage-3 SSA keys of a QKFormer state dict saved
    before the SSA was shared (``attn.q_conv.`` -> ``attn.q.conv.``).

    Registered by :class:`QKFormer` as a ``load_state_dict`` pre-hook, so
    whole-model checkpoints (e.g. a detector's) keep loading.

    Args:
        state_dict (dict): The state dict being loaded.
        prefix (str): The backbone's key prefix in it (e.g. ``'backbone.'``).
        *unused: The hook's other arguments.
    """
    for key in [key for key in state_dict if key.startswith(prefix)]:
        new_key = prefix + SSA_LAYER.sub(r'\1\2.\3.', key[len(prefix):])
        if new_key != key:
            state_dict[new_key] = state_dict.pop(key)


def convert_qkformer_keys(
    state_dict: Dict[str, torch.Tensor]
) -> Tuple[Dict[str, torch.Tensor], Dict[str, str], List[str]]:
    """Convert public QKFormer keys to QKFormer keys; drop the classifier.

    Keys already in QKFormer form pass unchanged, so checkpoints saved by
    this package load too.

    Returns:
        tuple[dict, dict, list[str]]: converted state dict, ``{public key:
        new key}`` for every renamed key, and the dropped classifier keys.
    """
    converted, renamed, dropped = {}, {}, []
    for key, value in state_dict.items():
        if key.startswith(CLASSIFIER_PREFIXES):
            dropped.append(key)
            continue
        new_key = rename_public_key(key)
        if new_key != key:
            renamed[key] = new_key
        converted[new_key] = value
    return converted, renamed, dropped


def _width_hint(state_dict: Dict[str, torch.Tensor],
                arch_settings: Dict[str, dict]) -> str:
    """Name the arch a converted checkpoint looks like by its stage widths
    (see :func:`~.checkpoint_loading.arch_hint`)."""
    widths = [state_dict[f'stages.{i}.patch_embed.embed_conv.weight'].shape[0]
              for i in range(3)
              if f'stages.{i}.patch_embed.embed_conv.weight' in state_dict]
    if not widths:
        return ''
    return arch_hint(arch_settings,
                     lambda setting: setting['embed_dims'] == widths,
                     f'stage widths {widths}')


def load_qkformer_checkpoint(model: nn.Module,
                             checkpoint: Union[str, dict],
                             prefix: Optional[str] = None,
                             logger: str = 'current') -> dict:
    """Load a public or converted QKFormer checkpoint into ``model``.

    Args:
        model (QKFormer): the backbone.
        checkpoint (str | dict): path or URL (any mmengine scheme, loaded
            safely), or an already loaded checkpoint.
        prefix (str, optional): see
            :func:`~.checkpoint_loading.extract_state_dict`.
        logger (str): mmengine logger name for the report.

    Returns:
        dict: ``renamed`` (``{public key: new key}``), ``dropped``,
        ``missing`` and ``unexpected`` key lists. A stride-32 stage is
        newly initialised, so its keys are always missing.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: a tensor's shape differs from the model's (names the
            key, both shapes and the arch the checkpoint looks like).
    """
    checkpoint, source = read_checkpoint(checkpoint, 'QKFormer', logger)
    state, renamed, dropped = convert_qkformer_keys(
        extract_state_dict(checkpoint, prefix))
    hint = _width_hint(state, model.arch_settings)
    check_shapes(model, state, 'QKFormer', source, hint)
    return load_converted(model, state, 'QKFormer', source,
                          dict(renamed=renamed, dropped=dropped), logger)
