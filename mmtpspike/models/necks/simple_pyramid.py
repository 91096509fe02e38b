"""Single-scale to multi-scale adapter (a ViTDet-style simple pyramid)."""
import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule

from mmtpspike.registry import register_model
from ..layers.spike_neurons import build_spike_neuron


def _spiking(layer: nn.Module, spike_cfg: Optional[dict]) -> nn.Module:
    """``layer`` preceded by a spike neuron (or alone for a float adapter)."""
    if spike_cfg is None:
        return layer
    return nn.Sequential(build_spike_neuron(spike_cfg), layer)


@register_model
class SimplePyramidAdapter(BaseModule):
    """Turn one backbone map into a feature pyramid for stock FPN heads.

    Single-scale spiking transformers (Spikformer, Spike-driven Transformer
    V1) give one stride-16 map; Mask R-CNN's FPN and Semantic FPN / UPerNet
    expect strides 4 / 8 / 16 / 32. As in ViTDet's simple feature pyramid,
    each scale factor ``s`` resamples the map: ``log2(s)`` transposed 2x2
    convs (stride 2, each halving the channels, with a norm) for ``s > 1``,
    the map itself for ``s = 1``, a ``1 / s`` max-pool (ceil mode) for
    ``s < 1``; a 1x1 conv + norm then projects every level to
    ``out_channels``. Every conv reads spikes of its input (the multi-spike
    neuron by default, so the neck stays spike-driven); ``spike_cfg=None``
    gives a float adapter.

    Chain it before a stock neck in a config (mmengine builds a list of
    modules as ``nn.Sequential``)::

        neck=[dict(type='SimplePyramidAdapter', in_channels=384,
                   out_channels=256),
              dict(type='FPN', in_channels=[256] * 4, out_channels=256,
                   num_outs=5)]

    Args:
        in_channels (int): Channels of the backbone map.
        out_channels (int): Channels of every output level.
        scale_factors (Sequence[float]): Powers of two, one per output
            level, relative to the input map. Default: (4, 2, 1, 0.5), i.e.
            strides 4 / 8 / 16 / 32 from a stride-16 map.
        in_index (int): Which map of the backbone's tuple to use. Default:
            -1 (the last).
        spike_cfg (dict, optional): Neuron before each conv. Default:
            ``dict(type='MultiSpike', max_spikes=4)``; None for none.
        norm_cfg (dict): Norm config. Default: ``dict(type='BN')``.
        init_cfg (dict, optional): Initialisation config.

    Example:
        >>> import torch
        >>> neck = SimplePyramidAdapter(16, 8).eval()
        >>> outs = neck((torch.rand(1, 16, 6, 10), ))
        >>> [tuple(o.shape) for o in outs]
        [(1, 8, 24, 40), (1, 8, 12, 20), (1, 8, 6, 10), (1, 8, 3, 5)]
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 scale_factors: Sequence[float] = (4.0, 2.0, 1.0, 0.5),
                 in_index: int = -1,
                 spike_cfg: Optional[dict] = dict(
                     type='MultiSpike', max_spikes=4),
                 norm_cfg: dict = dict(type='BN'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if not scale_factors:
            raise ValueError('scale_factors must name at least one level')
        for scale in scale_factors:
            if scale <= 0 or not float(math.log2(scale)).is_integer():
                raise ValueError(f'scale_factors must be powers of two '
                                 f'(e.g. 4, 2, 1, 0.5), got {scale}')
        self.scale_factors = [float(s) for s in scale_factors]
        self.in_index = in_index
        self.resamplers = nn.ModuleList()
        self.projections = nn.ModuleList()
        for scale in self.scale_factors:
            resampler, channels = self._resampler(in_channels, scale,
                                                  spike_cfg, norm_cfg)
            self.resamplers.append(resampler)
            self.projections.append(_spiking(nn.Sequential(
                nn.Conv2d(channels, out_channels, 1, bias=False),
                build_norm_layer(norm_cfg, out_channels)[1]), spike_cfg))

    @staticmethod
    def _resampler(channels: int, scale: float, spike_cfg: Optional[dict],
                   norm_cfg: dict) -> Tuple[nn.Module, int]:
        """The resampling layers of one level and their output channels."""
        if scale < 1:
            factor = int(round(1 / scale))
            return nn.MaxPool2d(factor, factor, ceil_mode=True), channels
        layers: List[nn.Module] = []
        for _ in range(int(round(math.log2(scale)))):
            if channels < 2:
                raise ValueError('in_channels too small to halve at every '
                                 f'2x up-sampling for scale {scale}')
            layers.append(_spiking(nn.Sequential(
                nn.ConvTranspose2d(channels, channels // 2, 2, 2,
                                   bias=False),
                build_norm_layer(norm_cfg, channels // 2)[1]), spike_cfg))
            channels //= 2
        return nn.Sequential(*layers), channels

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor]:
        """``[B, C_in, H, W]`` (item ``in_index`` of ``inputs``) -> one
        ``[B, C_out, H * s, W * s]`` map per scale factor ``s`` (ceil for
        ``s < 1``)."""
        if not isinstance(inputs, (list, tuple)):
            raise TypeError('SimplePyramidAdapter takes the backbone\'s '
                            f'tuple of maps, got {type(inputs).__name__}')
        x = inputs[self.in_index]
        return tuple(project(resample(x)) for resample, project in zip(
            self.resamplers, self.projections))
