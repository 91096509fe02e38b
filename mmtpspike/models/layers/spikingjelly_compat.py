"""The spikingjelly pieces mmtpspike needs, on both spikingjelly generations.

PyPI offers two spikingjelly generations:

* ``2.x`` (Python >= 3.11, torch >= 2.6) has the multi-level spike-count
  quantiser ``surrogate.MultiLevelSpikeCount`` and the integer LIF neuron
  ``neuron.ILIFNode``; they are used as they are.
* ``0.0.0.0.14`` (any Python >= 3.6 and torch, the version the public SDT /
  QKFormer code uses) has neither. :class:`SpikeCountQuantizer` and
  :class:`IntegerLIF` are equivalents with the same forward pass and the same
  gradient, tested equal to spikingjelly 2's where both can be compared.

Both generations provide the binary multi-step ``neuron.LIFNode`` and the
``surrogate.ATan`` surrogate used as they are.
"""
import numbers

import torch
import torch.nn as nn

try:
    from spikingjelly.activation_based import neuron, surrogate
except ImportError as err:
    raise ImportError(
        'mmtpspike needs spikingjelly >= 0.0.0.0.14 (spikingjelly.'
        f'activation_based), which could not be imported ({err}). With any '
        'torch: `pip install spikingjelly==0.0.0.0.14`; with Python >= 3.11 '
        'and torch >= 2.6 also possible: `pip install --no-deps '
        'spikingjelly==2.0.0 loguru` (without --no-deps its torchaudio '
        'requirement replaces your torch). See docs/install.md.') from err

#: spikingjelly provides MultiLevelSpikeCount and ILIFNode (generation 2.x).
HAS_MULTI_LEVEL_SPIKES = hasattr(surrogate, 'MultiLevelSpikeCount') and \
    hasattr(neuron, 'ILIFNode')


def _check_max_spikes(max_spikes) -> int:
    """Validate ``D`` as spikingjelly 2 does: an integer >= 1."""
    if not isinstance(max_spikes, numbers.Integral) or isinstance(
            max_spikes, bool):
        raise TypeError(f'max_spikes must be an integer, got {max_spikes!r}')
    if max_spikes < 1:
        raise ValueError(f'max_spikes must be >= 1, got {max_spikes}')
    return int(max_spikes)


class _SpikeCount(torch.autograd.Function):
    """``round(clamp(x, 0, D))`` with a rectangular straight-through gradient.

    The gradient passes unchanged where ``0 <= x <= D`` (both bounds
    included) and is zero elsewhere (and for NaN).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, max_spikes: int) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.max_spikes = max_spikes
        return torch.round(torch.clamp(x, 0, max_spikes))

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        x, = ctx.saved_tensors
        inside = (x >= 0) & (x <= ctx.max_spikes)
        return grad_output * inside.to(grad_output.dtype), None


class SpikeCountQuantizer(nn.Module):
    """Integer spike count ``round(clamp(x, 0, D))``, straight-through on
    ``[0, D]``.

    Same forward and gradient as spikingjelly 2's
    ``surrogate.MultiLevelSpikeCount(D)``; used with spikingjelly 0.0.0.0.14.

    Args:
        max_spikes (int): ``D``, the largest spike count.
    """

    def __init__(self, max_spikes: int) -> None:
        super().__init__()
        self.max_spikes = _check_max_spikes(max_spikes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Any shape in, same shape out, values in ``{0, 1, ..., D}``."""
        return _SpikeCount.apply(x, self.max_spikes)

    def extra_repr(self) -> str:
        return f'max_spikes={self.max_spikes}'


class IntegerLIF(nn.Module):
    """Multi-step integer LIF neuron (I-LIF) with soft reset.

    Same dynamics, state handling and gradient as spikingjelly 2's
    ``neuron.ILIFNode(step_mode='m')``; used with spikingjelly 0.0.0.0.14.
    For each timestep ``t``, with ``V`` starting at 0 after :meth:`reset`:

    * charge: ``H[t] = (1 - 1 / tau) V[t - 1] + X[t]``
    * fire: ``C[t] = round(clamp(H[t] / v_threshold, 0, D))``, gradient
      straight through where ``H[t] / v_threshold`` lies in ``[0, D]``
    * soft reset: ``V[t] = H[t] - C[t] v_threshold`` (``C`` detached from the
      graph with ``detach_reset=True``)

    The membrane potential is kept in float32 (as spikingjelly does) and
    carried over to the next call until :meth:`reset`.

    Args:
        tau (float): Membrane time constant, > 1. Default: 2.0.
        v_threshold (float): Firing threshold, > 0. Default: 1.0.
        max_spikes (int): ``D``, the most spikes per timestep. Default: 4.
        detach_reset (bool): Detach ``C`` in the reset. Default: False.
    """

    def __init__(self,
                 tau: float = 2.0,
                 v_threshold: float = 1.0,
                 max_spikes: int = 4,
                 detach_reset: bool = False) -> None:
        super().__init__()
        if not tau > 1:
            raise ValueError(f'IntegerLIF needs tau > 1, got {tau}')
        if not v_threshold > 0:
            raise ValueError(
                f'IntegerLIF needs v_threshold > 0, got {v_threshold}')
        self.tau = float(tau)
        self.v_threshold = float(v_threshold)
        self.detach_reset = detach_reset
        self.quantizer = SpikeCountQuantizer(max_spikes)
        self.v = 0.

    def reset(self) -> None:
        """Set the membrane potential back to 0."""
        self.v = 0.

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """``[T, ...]`` input currents in, ``[T, ...]`` spike counts out."""
        decay = 1. - 1. / self.tau
        v = self.v
        counts = []
        for x in x_seq:
            h = decay * v + x.float()
            count = self.quantizer(h / self.v_threshold)
            fired = count.detach() if self.detach_reset else count
            v = h - fired * self.v_threshold
            counts.append(count.to(x_seq.dtype))
        self.v = v
        return torch.stack(counts)

    def extra_repr(self) -> str:
        return (f'tau={self.tau}, v_threshold={self.v_threshold}, '
                f'max_spikes={self.quantizer.max_spikes}, '
                f'detach_reset={self.detach_reset}')


def spike_count_quantizer(max_spikes: int) -> nn.Module:
    """``round(clamp(x, 0, D))`` with a straight-through gradient on ``[0, D]``.

    Args:
        max_spikes (int): ``D``.

    Returns:
        nn.Module: spikingjelly's ``MultiLevelSpikeCount(D)`` where it exists,
        else :class:`SpikeCountQuantizer`.
    """
    max_spikes = _check_max_spikes(max_spikes)
    if HAS_MULTI_LEVEL_SPIKES:
        return surrogate.MultiLevelSpikeCount(max_spikes)
    return SpikeCountQuantizer(max_spikes)


def multi_step_lif(tau: float, v_threshold: float, max_spikes: int,
                   detach_reset: bool) -> nn.Module:
    """A multi-step LIF neuron on ``[T, ...]`` currents.

    Args:
        tau (float): Membrane time constant.
        v_threshold (float): Firing threshold.
        max_spikes (int): 1 for binary spikes (spikingjelly's ``LIFNode``
            with the ``ATan`` surrogate, hard reset to 0); ``D > 1`` for the
            integer I-LIF neuron (soft reset), spikingjelly's ``ILIFNode``
            where it exists, else :class:`IntegerLIF`.
        detach_reset (bool): Detach the reset from the graph.

    Returns:
        nn.Module: maps ``[T, ...]`` to spike counts ``[T, ...]`` in
        ``{0, ..., D}``; state is cleared by its ``reset()``.
    """
    max_spikes = _check_max_spikes(max_spikes)
    if max_spikes == 1:
        return neuron.LIFNode(
            tau=tau,
            v_threshold=v_threshold,
            detach_reset=detach_reset,
            surrogate_function=surrogate.ATan(),
            step_mode='m')
    if HAS_MULTI_LEVEL_SPIKES:
        return neuron.ILIFNode(
            tau=tau,
            v_threshold=v_threshold,
            detach_reset=detach_reset,
            surrogate_function=surrogate.MultiLevelSpikeCount(max_spikes),
            step_mode='m')
    return IntegerLIF(
        tau=tau,
        v_threshold=v_threshold,
        max_spikes=max_spikes,
        detach_reset=detach_reset)
