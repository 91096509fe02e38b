"""MACs of a model as it really runs, token pruning included.

:class:`MacCounter` installs forward hooks and counts, for one forward:

* convolutions (``Conv1d`` / ``Conv2d``, including the 1x1 convs of
  attention and MLP, which see only the kept tokens when pruning);
* the token matmuls of every attention module that declares them with a
  ``matmul_macs(tokens, context)`` method (a list of ``(MACs, neuron)``:
  the neuron whose spikes form the matmul's left operand). For SDT-V3's
  :class:`SpikeAttention`, ``q (k^T v)`` costs ``(N + M) C C_v / h`` for
  ``N`` queries over ``M`` keys (``M = N`` unless stopped tokens give
  context) and ``(q k^T) v`` ``N M (C + C_v)``; the QKFormer, SDT-V1 and
  Spikformer attentions declare theirs;
* the token scorers (box filter ``k^2 C N`` adds + cosine ``3 C N``; the
  ``reference`` variant's dense conv ``k^2 C^2 N``; temporal ``C N``) and,
  for the merging baseline, its ``N^2 C`` similarity matrix, so token
  reduction pays for its own overhead.

Norm layers are not counted (they are folded into the convs at inference,
see ``SDTV3.fuse``); gather / scatter move memory and cost no MACs.
Counts are per forward call, summed over the batch.

mmengine's ``FlopAnalyzer`` traces the model with ``torch.jit``: it freezes
the data-dependent token selection of a pruned model into one trace and
counts BN layers, and it knows nothing of spikes, so it cannot count the
pruned model as it runs nor SOPs. For the dense, BN-folded model both counts
are equal (tested), which anchors this counter to mmengine's.

Synaptic operations (SOPs): a layer reading spikes does one accumulate (AC)
per input spike and fan-out, i.e. ``SOPs = MACs x mean spike count per input
neuron`` (an integer spike ``n`` is ``n`` binary spikes). This holds for
every conv whose input is a spike tensor (values ``n / D``, ``n`` a
non-negative integer: ``0..D`` from one neuron, more where a conv reads a
sum of spike tensors, e.g. the integer residual stream of Spikformer,
QKFormer and SDT-V1); the encoding conv, which reads the image, and any
conv fed real values cost MACs. Event input (a ``[B, T, C, H, W]`` tensor of
non-negative integer spike counts given to the model) makes the encoding conv
an accumulate layer too, whose spike count is the input value. For the
attention matmuls the spike operand on the left (``k`` in ``k^T v``, ``q`` in
``q (k^T v)``) sets the count. Scorer work is float arithmetic (MACs).
"""
from collections import defaultdict
from typing import Dict, Optional

import torch
import torch.nn as nn

from mmtpspike.models.layers.fusion import CONVS
from mmtpspike.models.layers.spike_neurons import SpikeNeuron
from mmtpspike.models.pruning.early_stopping import TokenPruner
from mmtpspike.models.pruning.scorers import (IRToPScorer, RandomScorer,
                                              SpatialScorer, TemporalScorer)


def conv_macs(conv: nn.Module, output: torch.Tensor) -> int:
    """``out elements x in_channels / groups x kernel area``."""
    kernel = 1
    for size in conv.kernel_size:
        kernel *= size
    return output.numel() * (conv.in_channels // conv.groups) * kernel


def scorer_macs(scorer: nn.Module, x: torch.Tensor, num_timesteps: int) -> int:
    """MACs of a token scorer on ``x: [T * B, C, H, W]``."""
    elements = x.numel()
    if isinstance(scorer, IRToPScorer):
        total = scorer_macs(scorer.spatial, x, num_timesteps)
        if num_timesteps > 1 and scorer.temporal_weight > 0:
            total += scorer_macs(scorer.temporal, x, num_timesteps)
        return total
    if isinstance(scorer, SpatialScorer):
        window = scorer.window_size**2
        if scorer.variant == 'paper':
            return (window + 3) * elements
        # the public code's dense all-ones C x C x k x k conv
        return (window * x.shape[1] + 3) * elements
    if isinstance(scorer, TemporalScorer):
        return elements
    if isinstance(scorer, RandomScorer):
        return 0
    return elements  # L2 norm and unknown scorers: one MAC per element


# energy per operation at 45 nm (Horowitz, ISSCC 2014), as used by SNN papers
ENERGY_PER_MAC_PJ = 4.6
ENERGY_PER_AC_PJ = 0.9


# tolerance when checking that ``x * D`` is an integer spike count
SPIKE_LATTICE_TOL = 1e-3


def is_event_input(x) -> bool:
    """Whether a model input is event frames: a ``[B, T, C, H, W]`` tensor
    of non-negative integer spike counts (binary events are 0 / 1)."""
    if not torch.is_tensor(x) or x.dim() != 5:
        return False
    return bool((x >= 0).all()) and bool((x == x.round()).all())


def energy_model_text(event_input: bool = False) -> str:
    """What the energy estimate counts as MACs and as ACs, in one line
    (event input: integer event counts are spikes, read by accumulates)."""
    mac_layers = ('scorer; the encoding conv reads event counts, integer '
                  'spikes: ACs') if event_input else 'encoding conv, scorer'
    return (f'{ENERGY_PER_MAC_PJ} pJ/MAC ({mac_layers}), {ENERGY_PER_AC_PJ} '
            f'pJ/AC (spike-driven layers), 45 nm')


class MacCounter:
    """Count MACs and SOPs per module during forwards (context manager).

    Args:
        model (nn.Module): the backbone / neck to count.
        max_spikes (int): ``D`` of the model's neurons, to turn spike values
            ``n / D`` into counts.
        event_input (bool, optional): whether the model's input is event
            frames (its encoding conv then reads spikes); None decides per
            forward with :func:`is_event_input`.

    Example:
        >>> with MacCounter(model) as counter:
        ...     model(img)
        >>> counter.total, counter.sops, counter.energy_mj()
    """

    def __init__(self,
                 model: nn.Module,
                 max_spikes: int = 4,
                 event_input: Optional[bool] = None) -> None:
        self.model = model
        self.max_spikes = max_spikes
        self.event_input = event_input
        self._events = bool(event_input)
        self.by_module: Dict[str, int] = defaultdict(int)
        self.sops_by_module: Dict[str, float] = defaultdict(float)
        self.float_macs = 0
        self._spike_means: Dict[tuple, float] = {}
        self._handles = []

    def __enter__(self) -> 'MacCounter':
        self._handles.append(
            self.model.register_forward_pre_hook(self._see_input))
        for name, module in self.model.named_modules():
            hook = self._hook_for(name, module)
            if hook is not None:
                self._handles.append(module.register_forward_hook(
                    hook, with_kwargs=callable(
                        getattr(module, 'matmul_macs', None))))
            if callable(getattr(module, 'matmul_macs', None)):
                self._watch_matmul_operands(module)
        return self

    def _see_input(self, model: nn.Module, args: tuple) -> None:
        """Forward pre-hook of the model: is this forward on events?"""
        if self.event_input is None:
            self._events = bool(args) and is_event_input(args[0])

    def _watch_matmul_operands(self, attn: nn.Module) -> None:
        """Remember the spike count of every neuron inside an attention
        module, for the matmuls it declares."""
        for neuron in attn.modules():
            if isinstance(neuron, SpikeNeuron):
                def remember(mod, args, out):
                    self._spike_means[id(mod)] = self._spike_count(out)
                self._handles.append(neuron.register_forward_hook(remember))

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _spike_count(self, spikes: torch.Tensor) -> float:
        """Mean integer spike count per neuron of a spike tensor."""
        return float(spikes.detach().float().mean()) * self.max_spikes

    def _input_spikes(self, conv: nn.Module,
                      x: torch.Tensor) -> Optional[float]:
        """Mean spike count per input neuron (and timestep) of a conv's
        input ``x``, or None when ``x`` is real-valued (a MAC layer).

        The encoding conv reads spikes only on event input, whose values are
        the counts; other convs read spikes when ``x * D`` is a
        non-negative integer count (a sum of spike tensors counts every
        spike)."""
        if getattr(conv, 'encodes_input', False):
            return float(x.detach().float().mean()) if self._events else None
        counts = x.detach().float() * self.max_spikes
        on_lattice = (counts - counts.round()).abs().max() <= \
            SPIKE_LATTICE_TOL and counts.min() >= 0
        return float(counts.mean()) if bool(on_lattice) else None

    def _add(self, name: str, module: nn.Module, macs: int,
             inputs: torch.Tensor, spikes: Optional[float]) -> None:
        """Count one call of a layer.

        Args:
            name (str): the layer's name in the counts.
            module (nn.Module): the module that ran.
            macs (int): its MACs in this call.
            inputs (Tensor): its input (kept for subclasses that record it).
            spikes (float, optional): mean spike count per input neuron and
                timestep for a layer reading spikes (``SOPs = macs x
                spikes``); None for a layer with real-valued input (MACs).
        """
        self.by_module[name] += macs
        if spikes is None:
            self.float_macs += macs
        else:
            self.sops_by_module[name] += macs * spikes

    def _hook_for(self, name: str, module: nn.Module):
        if isinstance(module, CONVS):
            def count_conv(mod, args, out):
                self._add(name, mod, conv_macs(mod, out), args[0],
                          self._input_spikes(mod, args[0]))
            return count_conv
        if callable(getattr(module, 'matmul_macs', None)):
            def count_attention(mod, args, kwargs, out):
                tokens = args[0] if args else kwargs['tokens']
                context = args[2] if len(args) > 2 else kwargs.get('context')
                for macs, neuron in mod.matmul_macs(tokens, context):
                    self._add(name + '.matmul', mod, macs, tokens,
                              self._spike_means.get(id(neuron)))
            return count_attention
        if isinstance(module, TokenPruner) and \
                module.config.reduction == 'merge':
            def count_matching(mod, args, out):
                # bipartite matching: the N x N cosine similarity per row
                rows, channels, height, width = args[1].shape
                self._add(name + '.matching', mod,
                          rows * channels * (height * width)**2, args[1],
                          None)
            return count_matching
        if isinstance(module, (IRToPScorer, SpatialScorer, TemporalScorer,
                               RandomScorer)) and not name.endswith(
                                   ('.spatial', '.temporal')):
            def count_scorer(mod, args, out):
                steps = args[1] if len(args) > 1 else 1
                self._add(name, mod, scorer_macs(mod, args[0], steps),
                          args[0], None)
            return count_scorer
        return None

    @property
    def total(self) -> int:
        """All MACs (as an ANN of the same shape would do)."""
        return sum(self.by_module.values())

    @property
    def sops(self) -> float:
        """Synaptic (accumulate) operations of the spike-driven layers."""
        return sum(self.sops_by_module.values())

    def energy_mj(self) -> float:
        """``4.6 pJ x float MACs + 0.9 pJ x SOPs``, in millijoules."""
        return (ENERGY_PER_MAC_PJ * self.float_macs +
                ENERGY_PER_AC_PJ * self.sops) * 1e-9

    def total_of(self, *keywords: str) -> int:
        """MACs of modules whose name contains any of ``keywords``."""
        return sum(v for k, v in self.by_module.items()
                   if any(word in k for word in keywords))


def count_macs(model: nn.Module,
               *inputs,
               max_spikes: int = 4,
               event_input: Optional[bool] = None) -> MacCounter:
    """Run one no-grad forward and return its :class:`MacCounter`."""
    with torch.no_grad(), MacCounter(model, max_spikes,
                                     event_input) as counter:
        model(*inputs)
    return counter


def block_macs(counter: MacCounter, block_name: str) -> int:
    """MACs of one transformer block (mixer, attention and MLP)."""
    return counter.total_of(block_name + '.')
