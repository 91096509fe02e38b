"""What a checkpoint's weights cannot show: how its spiking backbones ran.

A checkpoint trained with integer multi-spike neurons (``D = 4``) gives
nonsense when evaluated with binary LIF neurons, and nothing in the weights
tells the two apart. :func:`collect_spiking_meta` records, per spiking
backbone, its neuron settings (type, ``D``, ``T``) and the keep ratios its
pruner ran with; :func:`check_neuron_settings` compares them with a model
before its weights are loaded.

The record lives in ``checkpoint['meta']['mmtpspike']``::

    {'backbone': {'neurons': {'type': 'MultiSpike', 'max_spikes': 4,
                              'num_timesteps': 1},
                  'keep_ratios': [0.78, ...] or None}}
"""
import logging
import warnings
from typing import Dict, Optional

import torch.nn as nn
from mmengine.logging import print_log

META_KEY = 'mmtpspike'


class NeuronMismatchError(ValueError):
    """A checkpoint's neuron settings differ from the model's."""


def spiking_backbones(model: nn.Module) -> Dict[str, nn.Module]:
    """``{module name: module}`` of every module exposing
    ``neuron_settings`` (e.g. :class:`SDTV3`)."""
    return {name: module for name, module in model.named_modules()
            if hasattr(type(module), 'neuron_settings')}


def collect_spiking_meta(model: nn.Module) -> dict:
    """The record to store in ``checkpoint['meta']['mmtpspike']``."""
    meta = {}
    for name, module in spiking_backbones(model).items():
        pruner = getattr(module, 'pruner', None)
        meta[name] = dict(neurons=dict(module.neuron_settings),
                          **pruning_ratios(pruner))
    return meta


#: the retention ratios a checkpoint records (and a schedule moves)
RATIO_FIELDS = ('keep_ratios', 'mlp_keep_ratios', 'conv_keep_ratios')


def pruning_ratios(pruner: Optional[nn.Module]) -> dict:
    """``{field: per-block list or None}`` for :data:`RATIO_FIELDS`; all
    None without a pruner."""
    return {field: None if getattr(pruner, field, None) is None else
            list(getattr(pruner, field)) for field in RATIO_FIELDS}


def saved_spiking_meta(checkpoint: dict) -> Optional[dict]:
    """The record of a loaded checkpoint, or None when it has none."""
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    return meta.get(META_KEY) if isinstance(meta, dict) else None


def check_neuron_settings(model: nn.Module,
                          saved: Optional[dict],
                          allow_mismatch: bool = False,
                          source: str = 'the checkpoint') -> None:
    """Refuse to load weights trained with other neuron settings.

    Args:
        model (nn.Module): the model about to receive the weights.
        saved (dict | None): :func:`saved_spiking_meta` of the checkpoint;
            None (no record, e.g. an ImageNet checkpoint) is not checked.
        allow_mismatch (bool): warn loudly instead of raising.
        source (str): name of the checkpoint in messages.

    Raises:
        NeuronMismatchError: naming the backbone, both settings and the fix.
    """
    if not saved:
        return
    for name, module in spiking_backbones(model).items():
        record = saved.get(name)
        if not record or record.get('neurons') == module.neuron_settings:
            continue
        message = (
            f'{source} was trained with {name} neurons {record["neurons"]}, '
            f'but the model is built with {module.neuron_settings}; the '
            f'weights would run under different spike semantics. Set '
            f'model.{name}.spike_cfg / num_timesteps to match the checkpoint')
        if not allow_mismatch:
            raise NeuronMismatchError(
                message + ', or pass allow_neuron_mismatch=True to '
                'SpikingCheckpointHook to load it anyway.')
        warnings.warn(message + ' (loading anyway: allow_neuron_mismatch)')
        print_log(message + ' (loading anyway: allow_neuron_mismatch)',
                  logger='current', level=logging.WARNING)
