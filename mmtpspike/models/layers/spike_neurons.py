"""Spiking neurons of SDT-V3 and their spike-driven (binary) unrolling.

All neurons here map a membrane input to spikes scaled into ``[0, 1]``:

* :class:`MultiSpike` (default): the integer multi-spike quantiser of SDT-V3,
  ``s = round(clamp(x, 0, D)) / D`` with a rectangular straight-through
  gradient on ``[0, D]`` (spikingjelly's ``MultiLevelSpikeCount``, or its
  equivalent with spikingjelly 0.0.0.0.14). It is stateless and behaves the
  same in train and eval mode.
* :class:`MultiStepLIF`: a multi-step LIF neuron from spikingjelly over
  ``T`` timesteps (binary spikes, or integer spikes with ``max_spikes > 1``,
  i.e. spikingjelly's I-LIF or its equivalent), for ``T > 1``. Its state is
  reset before each call, so two identical forwards give identical outputs.

The spikingjelly parts come from :mod:`.spikingjelly_compat`, which works with
both spikingjelly generations (0.0.0.0.14 and 2.x).

An integer spike count ``n`` in ``{0, ..., D}`` emitted at one timestep equals
``n`` binary spikes over ``D`` virtual timesteps. :func:`spike_driven` swaps
every synaptic layer that reads spikes for :class:`BinarySpikeSynapse`, which
feeds it binary spike planes only and accumulates their effect (what a
neuromorphic chip does). The network output is identical both ways.
"""
import contextlib

import torch
import torch.nn as nn
import torch.nn.functional as F

from .fusion import CONVS
from .spikingjelly_compat import multi_step_lif, spike_count_quantizer


class SpikeNeuron(nn.Module):
    """Base class: a neuron emitting spikes in ``{0, 1/D, ..., 1}``.

    Attributes:
        max_spikes (int): ``D``, the most spikes a neuron fires per timestep.
    """

    max_spikes: int = 1


class MultiSpike(SpikeNeuron):
    """Integer multi-spike neuron ``round(clamp(x, 0, D)) / D``.

    Args:
        max_spikes (int): ``D``, the largest integer spike count. Default: 4.
    """

    def __init__(self, max_spikes: int = 4) -> None:
        super().__init__()
        self.max_spikes = int(max_spikes)
        self.quantizer = spike_count_quantizer(self.max_spikes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Any shape in, same shape out, values in ``{0, 1/D, ..., 1}``."""
        if torch.is_grad_enabled() and x.requires_grad:
            return self.quantizer(x) / self.max_spikes
        # inference: the same values with one allocation instead of three
        return torch.clamp(x, 0, self.max_spikes).round_().div_(
            self.max_spikes)

    def extra_repr(self) -> str:
        return f'max_spikes={self.max_spikes}'


class MultiStepLIF(SpikeNeuron):
    """Multi-step LIF neuron on a timestep-major batch ``[T * B, ...]``.

    Args:
        num_timesteps (int): ``T``; the leading dim must be divisible by it.
        tau (float): Membrane time constant. Default: 2.0.
        v_threshold (float): Firing threshold. Default: 1.0.
        max_spikes (int): 1 for a binary LIF neuron; ``D > 1`` for the integer
            I-LIF neuron of SpikeYOLO / SDT-V3 (spikes scaled by ``1/D``).
            Default: 1.
        detach_reset (bool): Detach the reset from the graph. Default: True.
    """

    def __init__(self,
                 num_timesteps: int,
                 tau: float = 2.0,
                 v_threshold: float = 1.0,
                 max_spikes: int = 1,
                 detach_reset: bool = True) -> None:
        super().__init__()
        self.num_timesteps = int(num_timesteps)
        self.max_spikes = int(max_spikes)
        self.node = multi_step_lif(tau, v_threshold, self.max_spikes,
                                   detach_reset)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[T * B, ...]`` in (timestep-major), same shape out."""
        if x.shape[0] % self.num_timesteps:
            raise ValueError(
                f'MultiStepLIF expects a leading dim divisible by '
                f'num_timesteps={self.num_timesteps}, got {tuple(x.shape)}')
        self.node.reset()
        seq = x.reshape(self.num_timesteps, -1, *x.shape[1:])
        spikes = self.node(seq).reshape(x.shape)
        self.node.reset()
        return spikes / self.max_spikes

    def extra_repr(self) -> str:
        return (f'num_timesteps={self.num_timesteps}, '
                f'max_spikes={self.max_spikes}')


NEURONS = {'MultiSpike': MultiSpike, 'LIF': MultiStepLIF}


def build_spike_neuron(cfg: dict, num_timesteps: int = 1) -> SpikeNeuron:
    """Build a spiking neuron from a config dict.

    Args:
        cfg (dict): ``dict(type='MultiSpike', max_spikes=4)`` or
            ``dict(type='LIF', tau=2.0, max_spikes=1)``.
        num_timesteps (int): ``T``, passed to stateful (LIF) neurons.

    Returns:
        SpikeNeuron: the neuron module.
    """
    cfg = dict(cfg)
    neuron_type = cfg.pop('type', None)
    if neuron_type not in NEURONS:
        raise KeyError(f'spike_cfg.type must be one of {sorted(NEURONS)}, '
                       f'got {neuron_type!r}')
    if neuron_type == 'LIF':
        cfg['num_timesteps'] = num_timesteps
    return NEURONS[neuron_type](**cfg)


def unroll_spikes(spikes: torch.Tensor, max_spikes: int) -> torch.Tensor:
    """Unroll integer spike counts into binary spikes over virtual timesteps.

    Args:
        spikes (Tensor): ``[B, ...]`` values in ``{0, 1/D, ..., 1}``.
        max_spikes (int): ``D``.

    Returns:
        Tensor: ``[D, B, ...]`` binary (0/1) spike planes whose mean over the
        first dim equals ``spikes``.

    Raises:
        ValueError: if ``spikes`` is not on the spike lattice.
    """
    counts = spikes * max_spikes
    rounded = counts.round()
    if (counts - rounded).abs().max() > 1e-4 or rounded.min() < 0 or \
            rounded.max() > max_spikes:
        raise ValueError('input is not a spike tensor with values in '
                         f'{{0, 1/{max_spikes}, ..., 1}}')
    steps = torch.arange(max_spikes, device=spikes.device).view(
        -1, *([1] * spikes.dim()))
    return (rounded.unsqueeze(0) > steps).to(spikes.dtype)


class BinarySpikeSynapse(nn.Module):
    """Run a synaptic (conv) layer on binary spikes only.

    The wrapped layer receives each of the ``D`` binary spike planes of its
    input (accumulate-only work), the results are summed and scaled by
    ``1/D`` and the bias is added once: ``W (n / D) + b``.

    Args:
        layer (nn.Conv1d | nn.Conv2d): the synaptic layer.
        max_spikes (int): ``D`` of the neuron feeding it.
    """

    def __init__(self, layer: nn.Module, max_spikes: int) -> None:
        super().__init__()
        self.layer = layer
        self.max_spikes = max_spikes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        planes = unroll_spikes(x, self.max_spikes)
        merged = planes.flatten(0, 1)
        conv = F.conv1d if isinstance(self.layer, nn.Conv1d) else F.conv2d
        out = conv(merged, self.layer.weight, None, self.layer.stride,
                   self.layer.padding, self.layer.dilation, self.layer.groups)
        out = out.view(self.max_spikes, -1, *out.shape[1:]).sum(0)
        out = out / self.max_spikes
        if self.layer.bias is not None:
            out = out + self.layer.bias.view(1, -1, *([1] * (out.dim() - 2)))
        return out


def _synaptic_convs(model: nn.Module):
    """Yield ``(parent, name, conv)`` for every conv that should read spikes.

    In SDT-V3 and the spiking FPN every conv reads the output of a spike
    neuron, except the encoding conv that reads the image (marked with
    ``encodes_input = True``).
    """
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, CONVS) and not getattr(
                    child, 'encodes_input', False):
                yield parent, name, child


@contextlib.contextmanager
def spike_driven(model: nn.Module, max_spikes: int = 4):
    """Context manager: run ``model`` with every synaptic conv on binary spikes.

    Every conv except the encoding conv (which reads the image) is temporarily
    wrapped in :class:`BinarySpikeSynapse`; the wrapper raises if its input is
    not a spike tensor, so a successful forward also proves that the network
    communicates with spikes only.

    Args:
        model (nn.Module): a backbone, a neck or both.
        max_spikes (int): ``D`` of the model's neurons (1 for binary LIF).

    Example:
        >>> with spike_driven(backbone, max_spikes=4):
        ...     feats = backbone(img)
    """
    swapped = []
    for parent, name, conv in list(_synaptic_convs(model)):
        setattr(parent, name, BinarySpikeSynapse(conv, max_spikes))
        swapped.append((parent, name, conv))
    try:
        yield model
    finally:
        for parent, name, conv in swapped:
            setattr(parent, name, conv)
