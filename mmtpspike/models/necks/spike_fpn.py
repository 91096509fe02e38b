"""Spiking FPN: stock FPN topology with a spike neuron before every conv."""
from typing import Tuple

import torch

from mmtpspike.registry import INSTALLED_TASK_PACKAGES, register_model
from ..layers.spike_neurons import build_spike_neuron

# A segmentation-only install uses mmseg's FPN: the same layers and
# parameter names (only its ``end_level`` counts exclusively).
if 'mmdet' in INSTALLED_TASK_PACKAGES:
    from mmdet.models.necks import FPN
else:
    from mmseg.models.necks import FPN


def _spike_input(conv_module, args: Tuple[torch.Tensor]) -> tuple:
    """Forward pre-hook: feed the conv module spikes of its input."""
    return (conv_module.input_spike(args[0]), )


@register_model
class SpikeFPN(FPN):
    """FPN whose lateral and output convs read spikes.

    Same topology, arguments and parameter names as mmdet's / mmseg's
    ``FPN`` (a stock FPN checkpoint loads unchanged); every lateral, output and
    extra conv is preceded by a spike neuron (the multi-spike neuron of
    SDT-V3 by default), which behaves identically in train and eval mode.
    Inputs and outputs are plain ``[B, C, H, W]`` maps.

    Args:
        spike_cfg (dict): Neuron config. Default:
            ``dict(type='MultiSpike', max_spikes=4)``.
        **kwargs: Arguments of mmdet's ``FPN`` (``in_channels``,
            ``out_channels``, ``num_outs``, ``start_level``,
            ``add_extra_convs``, ...).

    Example:
        >>> import torch
        >>> in_channels = [2, 3, 5, 7]
        >>> scales = [340, 170, 84, 43]
        >>> inputs = [torch.rand(1, c, s, s)
        ...           for c, s in zip(in_channels, scales)]
        >>> self = SpikeFPN(in_channels, 11, len(in_channels)).eval()
        >>> outputs = self.forward(inputs)
        >>> for i in range(len(outputs)):
        ...     print(f'outputs[{i}].shape = {outputs[i].shape}')
        outputs[0].shape = torch.Size([1, 11, 340, 340])
        outputs[1].shape = torch.Size([1, 11, 170, 170])
        outputs[2].shape = torch.Size([1, 11, 84, 84])
        outputs[3].shape = torch.Size([1, 11, 43, 43])
    """

    def __init__(self,
                 *args,
                 spike_cfg: dict = dict(type='MultiSpike', max_spikes=4),
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if spike_cfg.get('type') == 'LIF':
            raise ValueError('SpikeFPN receives time-averaged 4-D maps; use '
                             "spike_cfg type 'MultiSpike' in the neck")
        for conv_module in list(self.lateral_convs) + list(self.fpn_convs):
            conv_module.input_spike = build_spike_neuron(spike_cfg)
            conv_module.register_forward_pre_hook(_spike_input)
