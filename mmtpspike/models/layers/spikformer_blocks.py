"""Building blocks of Spikformer (Zhou et al., ICLR 2023).

* :class:`SpikingPatchSplitting` (SPS): four ``conv 3x3 -> BN -> LIF ->
  max-pool 3x3 s2`` steps (widths ``D/8, D/4, D/2, D``, stride 16), then the
  relative position embedding (RPE) shortcut ``x + LIF(BN(conv 3x3(x)))``.
* :class:`~.spiking_self_attention.SpikingSelfAttention` (SSA, shared with
  QKFormer): binary ``q, k, v`` from linear + BN + LIF, ``q (k^T v) *
  attn_scale`` per head without softmax, an attention LIF (its own
  threshold, 0.5 in the public code), then linear + BN + LIF.
* :class:`SpikingMLP`: linear + BN + LIF, twice.
* :class:`SpikformerBlock`: ``x + SSA(x)``, then ``x + MLP(x)``, split into
  the parts that token pruning drives.

Linear layers are 1x1 convs on ``[R, C, N]`` tokens, ``R = T * B`` rows in
timestep-major order. Module names follow the public definition up to the
grouping of each ``conv / bn / lif`` triple into one unit, so the public keys
map with a short table (see
:mod:`mmtpspike.models.backbones.spikformer_checkpoint`).
"""
from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule

from .spike_neurons import build_spike_neuron
from .spiking_self_attention import SpikingLinear, SpikingSelfAttention
from .token_block import TokenBlock

#: the public definition's neurons (tau 2, hard reset, thresholds 1 / 0.5)
DEFAULT_SPIKE_CFG = dict(type='LIF', tau=2.0, v_threshold=1.0)
DEFAULT_ATTN_SPIKE_CFG = dict(type='LIF', tau=2.0, v_threshold=0.5)


class SpikingConvUnit(BaseModule):
    """``conv 3x3 (no bias) -> BN -> spike`` on ``[R, C, H, W]`` maps.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        spike_cfg (dict): Neuron config.
        norm_cfg (dict): 2-D norm config.
        num_timesteps (int): ``T`` for stateful neurons.
        encodes_input (bool): True for the conv that reads the image (marks
            it for the spike-driven and energy tools).
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 spike_cfg: dict,
                 norm_cfg: dict,
                 num_timesteps: int,
                 encodes_input: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1,
                              bias=False)
        self.conv.encodes_input = encodes_input
        self.bn = build_norm_layer(norm_cfg, out_channels)[1]
        self.lif = build_spike_neuron(spike_cfg, num_timesteps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[R, C_in, H, W]`` -> spikes ``[R, C_out, H, W]``."""
        return self.lif(self.bn(self.conv(x)))


class SpikingPatchSplitting(BaseModule):
    """Spikformer's patch embedding (SPS), stride 16.

    Every step halves the map with a ``3x3 / 2`` max-pool (padding 1), so any
    input size works: ``[R, C_in, H, W]`` -> ``[R, D, ceil(H / 16),
    ceil(W / 16)]``.

    Args:
        in_channels (int): Image channels.
        embed_dims (int): ``D``, divisible by 8.
        spike_cfg (dict): Neuron config.
        norm_cfg (dict): 2-D norm config.
        num_timesteps (int): ``T`` for stateful neurons.
    """

    width_divisors = (8, 4, 2, 1)

    def __init__(self,
                 in_channels: int,
                 embed_dims: int,
                 spike_cfg: dict,
                 norm_cfg: dict,
                 num_timesteps: int,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if embed_dims % self.width_divisors[0]:
            raise ValueError(f'embed_dims ({embed_dims}) must be divisible '
                             f'by {self.width_divisors[0]}: the patch '
                             f'embedding starts at embed_dims / '
                             f'{self.width_divisors[0]} channels')
        widths = [embed_dims // d for d in self.width_divisors]
        self.proj = nn.ModuleList(
            SpikingConvUnit(c_in, c_out, spike_cfg, norm_cfg, num_timesteps,
                            encodes_input=index == 0)
            for index, (c_in, c_out) in enumerate(
                zip([in_channels] + widths[:-1], widths)))
        self.pool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.rpe = SpikingConvUnit(embed_dims, embed_dims, spike_cfg,
                                   norm_cfg, num_timesteps)

    @property
    def stride(self) -> int:
        """Stride of the token map w.r.t. the input."""
        return 2**len(self.proj)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[R, C_in, H, W]`` -> ``[R, D, ceil(H / 16), ceil(W / 16)]``
        (spikes plus RPE spikes, values in {0, 1, 2})."""
        for unit in self.proj:
            x = self.pool(unit(x))
        return x + self.rpe(x)


class SpikingMLP(BaseModule):
    """Token-wise MLP: ``fc1 -> BN -> LIF -> fc2 -> BN -> LIF``.

    Args:
        channels (int): Token channels.
        hidden_channels (int): Hidden width.
        spike_cfg (dict): Neuron config.
        norm_cfg (dict): 2-D norm config.
        num_timesteps (int): ``T`` for stateful neurons.
    """

    def __init__(self,
                 channels: int,
                 hidden_channels: int,
                 spike_cfg: dict,
                 norm_cfg: dict,
                 num_timesteps: int = 1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        unit = dict(spike_cfg=spike_cfg, norm_cfg=norm_cfg,
                    num_timesteps=num_timesteps)
        self.fc1 = SpikingLinear(channels, hidden_channels, **unit)
        self.fc2 = SpikingLinear(hidden_channels, channels, **unit)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[R, C, N]`` -> spikes ``[R, C, N]``."""
        return self.fc2(self.fc1(tokens))


class SpikformerBlock(TokenBlock):
    """Spikformer encoder block: ``x + SSA(x)``, then ``x + MLP(x)``.

    The block has no spatial part, so :meth:`mix` is the identity and token
    pruning runs the whole block on the kept tokens. The residual stream is
    a sum of spike maps (the public code's SEW-style residual).

    Args:
        channels (int): Channels ``C``.
        num_heads (int): Attention heads.
        spike_cfg (dict): Neuron config.
        attn_spike_cfg (dict): Neuron config after ``q k^T v``.
        norm_cfg (dict): 2-D norm config.
        mlp_ratio (float): MLP hidden width / ``C``. Default: 4.
        attn_scale (float): Scale of ``q k^T v``, see
            :class:`SpikingSelfAttention`. Default: 0.125.
        drop_path (float): Stochastic depth rate of both residuals (the
            public code builds but never applies it; 0 reproduces it).
        num_timesteps (int): ``T`` for stateful neurons.
    """

    def __init__(self,
                 channels: int,
                 num_heads: int,
                 spike_cfg: dict,
                 attn_spike_cfg: dict,
                 norm_cfg: dict,
                 mlp_ratio: float = 4.,
                 attn_scale: float = 0.125,
                 drop_path: float = 0.,
                 num_timesteps: int = 1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(drop_path, num_timesteps, init_cfg)
        self.attn = SpikingSelfAttention(channels, num_heads, spike_cfg,
                                         attn_spike_cfg, norm_cfg,
                                         attn_scale=attn_scale,
                                         num_timesteps=num_timesteps)
        self.mlp = SpikingMLP(channels, int(channels * mlp_ratio), spike_cfg,
                              norm_cfg, num_timesteps)
