"""Loading public Spikformer ImageNet checkpoints into :class:`Spikformer`.

The public definition (ZK-Zhou/spikformer, ``imagenet/model.py``) names its
weights ``patch_embed.proj_conv1.weight``, ``block.3.attn.q_bn.weight``,
``block.3.mlp.fc1_conv.weight``, ``head.weight``...; timm's training script
stores them under ``state_dict`` (``module.`` prefixed under DDP).
:func:`convert_public_keys` maps them onto :class:`Spikformer` with the
explicit table :data:`KEY_RULES`, flattens the MLP's 1x1 ``Conv2d`` kernels
to the ``Conv1d`` kernels of our token-wise layers and drops what the public
forward never uses (the classifier and each block's LayerNorms ``norm1`` /
``norm2``, built but not applied). :func:`load_spikformer_checkpoint` loads
and reports every renamed, reshaped, dropped, missing and unexpected key.
"""
import re
from typing import Dict, List, NamedTuple, Optional, Union

import torch
import torch.nn as nn

from .checkpoint_loading import (check_shapes, extract_state_dict,
                                 load_converted, read_checkpoint)

#: (public pattern, our replacement), applied in order to every key
KEY_RULES = [
    (r'^block\.', 'blocks.'),
    (r'^patch_embed\.proj_(conv|bn)\.', r'patch_embed.proj.0.\1.'),
    (r'^patch_embed\.proj_(conv|bn)([123])\.', r'patch_embed.proj.\2.\1.'),
    (r'^patch_embed\.rpe_(conv|bn)\.', r'patch_embed.rpe.\1.'),
    (r'\.(q|k|v|proj|fc1|fc2)_(conv|bn)\.', r'.\1.\2.'),
]
#: public keys the public forward never reads
UNUSED_KEYS = re.compile(r'^(head\.|block\.\d+\.norm[12]\.)')
#: token-wise layers that are 1x1 Conv2d in the public MLP, Conv1d here
TOKEN_CONV_WEIGHT = re.compile(r'^blocks\.\d+\.(attn|mlp)\.\w+\.conv\.weight$')


class ConvertedCheckpoint(NamedTuple):
    """A converted state dict and what the conversion changed.

    Attributes:
        state_dict (dict): Tensors under :class:`Spikformer` names.
        renamed (list[str]): ``'public -> ours'`` for every renamed key.
        reshaped (list[str]): Our keys whose 1x1 kernels were flattened.
        dropped (list[str]): Public keys left out (classifier, unused
            LayerNorms).
    """
    state_dict: Dict[str, torch.Tensor]
    renamed: List[str]
    reshaped: List[str]
    dropped: List[str]


def rename_public_key(key: str) -> str:
    """Map one public key to our name (unknown keys come back unchanged)."""
    for pattern, replacement in KEY_RULES:
        key = re.sub(pattern, replacement, key)
    return key


def convert_public_keys(
        state_dict: Dict[str, torch.Tensor]) -> ConvertedCheckpoint:
    """Convert a public Spikformer state dict to :class:`Spikformer` keys.

    Keys already in our form pass unchanged, so checkpoints saved by this
    package load too.

    Args:
        state_dict (dict): Public (or our) tensor state dict.

    Returns:
        ConvertedCheckpoint: the state dict and the change lists.
    """
    converted, renamed, reshaped, dropped = {}, [], [], []
    for key, value in state_dict.items():
        if UNUSED_KEYS.match(key):
            dropped.append(key)
            continue
        new_key = rename_public_key(key)
        if new_key != key:
            renamed.append(f'{key} -> {new_key}')
        if TOKEN_CONV_WEIGHT.match(new_key) and value.dim() == 4 and \
                value.shape[-2:] == (1, 1):
            value = value.flatten(2)
            reshaped.append(new_key)
        converted[new_key] = value
    return ConvertedCheckpoint(converted, renamed, reshaped, dropped)


def _size_hint(state_dict: Dict[str, torch.Tensor]) -> str:
    """Describe the width and depth a converted checkpoint was made for."""
    rpe = state_dict.get('patch_embed.rpe.conv.weight')
    blocks = {int(k.split('.')[1]) for k in state_dict
              if k.startswith('blocks.')}
    if rpe is None:
        return ''
    return (f' (the checkpoint looks like embed_dims={rpe.shape[0]}, '
            f'depth={len(blocks)})')


def load_spikformer_checkpoint(model: nn.Module,
                               checkpoint: Union[str, dict],
                               prefix: Optional[str] = None,
                               logger: str = 'current') -> dict:
    """Load a public or converted Spikformer checkpoint into ``model``.

    Args:
        model (Spikformer): The backbone.
        checkpoint (str | dict): Path or URL (any mmengine scheme, loaded
            safely), or an already loaded checkpoint.
        prefix (str, optional): Keep only keys under this prefix (see
            :func:`~mmtpspike.models.backbones.checkpoint_loading.
            extract_state_dict`; ``backbone.`` and ``module.`` are stripped
            by default).
        logger (str): mmengine logger name for the report.

    Returns:
        dict: ``renamed``, ``reshaped``, ``dropped``, ``missing`` and
        ``unexpected`` key lists.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: a tensor's shape differs from the model's (names the
            keys, both shapes and the size the checkpoint looks like).
    """
    checkpoint, source = read_checkpoint(checkpoint, 'Spikformer', logger)
    converted = convert_public_keys(extract_state_dict(checkpoint, prefix))
    state = converted.state_dict
    check_shapes(model, state, 'Spikformer', source, _size_hint(state))
    return load_converted(
        model, state, 'Spikformer', source,
        dict(renamed=converted.renamed, reshaped=converted.reshaped,
             dropped=converted.dropped), logger)
