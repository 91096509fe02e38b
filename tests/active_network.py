"""An *active* SDT-V3 for tests: every stage fires.

With the BN statistics of a fresh model the multi-spike neurons from stage 2
on receive inputs far below their threshold and never fire, so the
transformer stages compute nothing and tests on them cannot fail.
:func:`activate` gives every BN random affine parameters and calibrates its
running statistics on the test input (one train-mode forward with momentum
1), so eval-mode activations are normalised to ``N(beta, gamma^2)`` with
``beta`` around the firing threshold.
"""
from collections import defaultdict
from typing import Dict, Sequence

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmtpspike.models.layers.spike_neurons import SpikeNeuron

#: every stage must fire at least this often (spikes per neuron and step)
FIRING_FLOOR = 0.05


@torch.no_grad()
def activate(model: nn.Module, *inputs, seed: int = 0) -> nn.Module:
    """Randomise BN affine parameters and calibrate the running statistics
    on ``inputs``; returns the model in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    for norm in norms:
        shape = norm.weight.shape
        norm.weight.copy_(0.6 + 0.6 * torch.rand(shape, generator=generator))
        norm.bias.copy_(0.2 + 0.8 * torch.rand(shape, generator=generator))
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average: one batch -> its stats
    model.train()
    model(*inputs)
    for norm in norms:
        norm.momentum = 0.1
    return model.eval()


def stage_of(name: str) -> str:
    """``'stages.2.blocks.0.attn.q_spike'`` -> ``'stages.2'``."""
    parts = name.split('.')
    if 'stages' in parts:
        index = parts.index('stages')
        return '.'.join(parts[index:index + 2])
    return parts[0]


@torch.no_grad()
def firing_rates(model: nn.Module, *inputs) -> Dict[str, float]:
    """Mean spike value per neuron for each stage (``stem``, ``stages.i``,
    or the top-level module name) over one forward."""
    sums, counts = defaultdict(float), defaultdict(int)
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, SpikeNeuron):
            def hook(mod, args, out, key=stage_of(name)):
                sums[key] += float(out.sum())
                counts[key] += out.numel()
            handles.append(module.register_forward_hook(hook))
    try:
        model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return {key: sums[key] / counts[key] for key in sums}


def assert_active(model: nn.Module, *inputs) -> Dict[str, float]:
    """Assert that every stage fires above :data:`FIRING_FLOOR`."""
    rates = firing_rates(model, *inputs)
    silent = {k: round(v, 4) for k, v in rates.items() if v < FIRING_FLOOR}
    assert not silent, f'silent stages {silent} (all rates {rates})'
    return rates


#: a tiny SDT-V3 with every stage present (the pruning option tests)
TINY_SDTV3 = dict(arch='t', depths=(1, 1, 2, 2))


def active_pair(**pruning):
    """An activated dense tiny SDTV3, a copy pruned with ``pruning`` on the
    same weights, and the ``[2, 3, 96, 64]`` input."""
    from mmtpspike.models import SDTV3
    torch.manual_seed(0)
    x = torch.randn(2, 3, 96, 64)
    dense = activate(SDTV3(**TINY_SDTV3), x)
    pruned = SDTV3(**TINY_SDTV3, pruning=pruning).eval()
    pruned.load_state_dict(dense.state_dict())
    return dense, pruned, x


def max_difference(outs_a: Sequence[torch.Tensor],
                   outs_b: Sequence[torch.Tensor]) -> float:
    """Largest absolute difference over paired outputs."""
    return max(float((a - b).abs().max()) for a, b in zip(outs_a, outs_b))
