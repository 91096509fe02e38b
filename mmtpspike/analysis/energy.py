"""Per-layer firing rates, synaptic operations and energy, image by image.

:class:`EnergyMeter` extends :class:`~mmtpspike.analysis.MacCounter` (same
hooks, same rules for what is counted, so pruned blocks count only the kept
tokens they really ran, plus the scorer's MACs) and keeps, for every layer
and every forward of the model (one forward = one sample, so feed one image
per forward for per-image statistics):

* its MACs (what an ANN of the same shape computes, over all ``T``
  timesteps);
* whether it is a MAC layer (real-valued input: the encoding conv on images,
  the token scorer, anything fed non-spike values) or an AC layer (spike
  input: every synaptic layer behind a neuron, and the encoding conv on
  event frames);
* for AC layers its input firing rate ``r`` (mean spike count per input
  neuron and timestep; an integer spike ``n`` counts as ``n`` binary spikes,
  so ``r`` can exceed 1 for multi-spike neurons) and its synaptic operations
  ``SOPs = r x T x FLOPs`` (``FLOPs``: MACs of one timestep).

Energy (the SNN literature's 45 nm estimate, Horowitz ISSCC 2014)::

    E = E_MAC x MACs(MAC layers) + E_AC x SOPs(AC layers)

with ``E_MAC = 4.6 pJ`` and ``E_AC = 0.9 pJ`` by default
(:class:`EnergyCosts`).
"""
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn

from mmtpspike.models.layers.spike_neurons import SpikeNeuron
from .complexity import ENERGY_PER_AC_PJ, ENERGY_PER_MAC_PJ, MacCounter

MAC, AC = 'MAC', 'AC'


@dataclass(frozen=True)
class EnergyCosts:
    """Energy per operation in picojoules.

    Args:
        e_mac_pj (float): one multiply-accumulate (real-valued input).
            Default: 4.6 (45 nm, 32-bit float).
        e_ac_pj (float): one accumulate (a spike reaching a synapse).
            Default: 0.9 (45 nm, 32-bit float).
    """

    e_mac_pj: float = ENERGY_PER_MAC_PJ
    e_ac_pj: float = ENERGY_PER_AC_PJ

    def energy_pj(self, kind: str, macs: float, sops: float) -> float:
        """Energy of a ``kind`` (``'MAC'`` / ``'AC'``) layer's work."""
        return self.e_mac_pj * macs if kind == MAC else self.e_ac_pj * sops


def mean_std(values: List[float]) -> Tuple[float, float]:
    """Mean and population standard deviation; NaN for no values."""
    if not values:
        return math.nan, math.nan
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean)**2 for v in values) / len(values))


@dataclass
class LayerEnergy:
    """What one layer did in each sample (forward) of an
    :class:`EnergyMeter`.

    Attributes:
        name (str): module name (``'.matmul'`` / ``'.matching'`` appended for
            the attention matmuls / the merging similarity).
        type (str): module class name.
        kind (str): ``'MAC'`` (real-valued input) or ``'AC'`` (spike input).
        shapes (list[tuple]): the distinct input shapes seen, in order.
        macs (list[int]): MACs per sample (0 where the layer did not run).
        sops (list[float]): SOPs per sample (0 for MAC layers).
    """

    name: str
    type: str
    kind: str
    shapes: List[tuple] = field(default_factory=list)
    macs: List[int] = field(default_factory=list)
    sops: List[float] = field(default_factory=list)

    def rates(self) -> List[float]:
        """Input firing rate per sample in which an AC layer ran:
        ``SOPs / MACs`` (spikes per input neuron and timestep, weighted by
        fan-out when a layer ran more than once)."""
        if self.kind == MAC:
            return []
        return [s / m for m, s in zip(self.macs, self.sops) if m]

    def energies_pj(self, costs: EnergyCosts) -> List[float]:
        """Energy per sample in picojoules."""
        return [costs.energy_pj(self.kind, m, s)
                for m, s in zip(self.macs, self.sops)]


class EnergyMeter(MacCounter):
    """Record MACs, SOPs and input firing rates per layer and forward.

    Use it as a context manager around forwards of ``model``; each forward of
    ``model`` itself closes one sample. Works on any network of the package:
    convs and neurons are found by type (``nn.Conv1d`` / ``nn.Conv2d``,
    :class:`SpikeNeuron`) and the encoding conv by its ``encodes_input``
    attribute, as in :class:`MacCounter`.

    Args:
        model (nn.Module): backbone, backbone + neck, or any spiking network.
        max_spikes (int, optional): ``D`` of the neurons (spike values are
            ``n / D``); None reads it from the model's neurons.
        event_input (bool, optional): see :class:`MacCounter`.

    Example:
        >>> meter = EnergyMeter(net)
        >>> with torch.no_grad(), meter:
        ...     for image in images:  # [1, 3, H, W] each
        ...         net(image)
        >>> meter.layers['conv2'].rates()  # one firing rate per image
    """

    def __init__(self,
                 model: nn.Module,
                 max_spikes: Optional[int] = None,
                 event_input: Optional[bool] = None) -> None:
        super().__init__(model, max_spikes or model_max_spikes(model),
                         event_input)
        self.layers: Dict[str, LayerEnergy] = {}
        self.num_samples = 0
        self._sample: Dict[str, list] = {}

    def __enter__(self) -> 'EnergyMeter':
        super().__enter__()
        self._handles.append(
            self.model.register_forward_hook(self._end_sample))
        return self

    def _add(self, name: str, module: nn.Module, macs: int,
             inputs: torch.Tensor, spikes: Optional[float]) -> None:
        super()._add(name, module, macs, inputs, spikes)
        kind = MAC if spikes is None else AC
        if name not in self.layers:
            self.layers[name] = LayerEnergy(
                name, type(module).__name__, kind,
                macs=[0] * self.num_samples, sops=[0.] * self.num_samples)
        layer = self.layers[name]
        if layer.kind != kind:
            raise ValueError(f'{name} read spikes in one call and real '
                             f'values in another; cannot split its energy')
        shape = tuple(inputs.shape)
        if shape not in layer.shapes:
            layer.shapes.append(shape)
        done = self._sample.setdefault(name, [0, 0.])
        done[0] += macs
        done[1] += 0. if spikes is None else macs * spikes

    def _end_sample(self, model: nn.Module, args: tuple, out) -> None:
        """Forward hook of the model: file this forward's work per layer."""
        for name, layer in self.layers.items():
            macs, sops = self._sample.get(name, (0, 0.))
            layer.macs.append(macs)
            layer.sops.append(sops)
        self._sample = {}
        self.num_samples += 1


def model_max_spikes(model: nn.Module) -> int:
    """``D`` shared by the model's neurons (found by type).

    Raises:
        ValueError: the model has no :class:`SpikeNeuron`, or neurons with
            different ``max_spikes`` (pass ``max_spikes`` explicitly).
    """
    found = {int(m.max_spikes) for m in model.modules()
             if isinstance(m, SpikeNeuron)}
    if len(found) != 1:
        raise ValueError(
            f'expected neurons with one max_spikes value, found '
            f'{sorted(found) or "no neurons"}; pass max_spikes explicitly')
    return found.pop()


def stage_of(name: str) -> str:
    """Group of a layer for per-stage sums: the name up to its first index
    within the first three parts, else its first two parts
    (``'backbone.stages.2.blocks.0.attn.q_conv.0'`` -> ``'backbone.stages.2'``,
    ``'backbone.stem.downsample.encode_conv'`` -> ``'backbone.stem'``,
    ``'neck.lateral_convs.1.conv'`` -> ``'neck.lateral_convs.1'``)."""
    parts = name.split('.')
    for index, part in enumerate(parts[1:3], start=1):
        if part.isdigit():
            return '.'.join(parts[:index + 1])
    return '.'.join(parts[:2])
