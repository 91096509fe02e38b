"""Spiking self-attention (SSA) of Spikformer, shared by Spikformer and
QKFormer's last stage.

Tokens are flat ``[R, C, N]`` tensors, ``R = T * B`` rows in timestep-major
order; the linear layers are 1x1 ``Conv1d`` layers. Module names follow the
public definitions up to the grouping of each ``conv / bn / neuron`` triple
into one :class:`SpikingLinear` unit (``q.conv``, ``q.bn``, ...); the
checkpoint modules map the public keys.
"""
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule

from .attention_ops import linear_attention_macs, mask_keys, split_heads
from .sdtv3_blocks import norm1d_cfg
from .spike_neurons import build_spike_neuron
from .token_attention import TokenAttention


class SpikingLinear(BaseModule):
    """``linear -> BN -> spike`` on flat tokens ``[R, C, N]``.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        spike_cfg (dict): Neuron config.
        norm_cfg (dict): 2-D norm config (its 1-D counterpart is used).
        num_timesteps (int): ``T`` for stateful neurons.
        bias (bool): Bias of the linear layer.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 spike_cfg: dict,
                 norm_cfg: dict,
                 num_timesteps: int,
                 bias: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.conv = nn.Conv1d(in_channels, out_channels, 1, bias=bias)
        self.bn = build_norm_layer(norm1d_cfg(norm_cfg), out_channels)[1]
        self.lif = build_spike_neuron(spike_cfg, num_timesteps)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[R, C_in, N]`` -> spikes ``[R, C_out, N]``."""
        return self.lif(self.bn(self.conv(tokens)))


class SpikingSelfAttention(TokenAttention):
    """Spiking self-attention (SSA) on flat tokens, without softmax.

    ``q, k, v = spike(BN(linear(x)))`` (binary), per head ``out =
    attn_spike(q (k^T v) * attn_scale)`` (its own neuron, threshold 0.5 in
    the public code), then ``spike(BN(linear(out)))``. Computed in this
    linear order, the cost is linear in the number of tokens; ``(q k^T) v``
    is the same product.

    Args:
        channels (int): Token channels ``C``.
        num_heads (int): Heads; must divide ``C``.
        spike_cfg (dict): Neuron config of ``q, k, v`` and the projection.
        attn_spike_cfg (dict): Neuron config after ``q k^T v``.
        norm_cfg (dict): 2-D norm config.
        attn_scale (float): Scale of ``q k^T v``, > 0 (0.125 in the public
            code for every head width, not ``1 / sqrt(d)``).
        num_timesteps (int): ``T`` for stateful neurons.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 channels: int,
                 num_heads: int,
                 spike_cfg: dict,
                 attn_spike_cfg: dict,
                 norm_cfg: dict,
                 attn_scale: float = 0.125,
                 num_timesteps: int = 1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if channels % num_heads:
            raise ValueError(f'channels ({channels}) must be divisible by '
                             f'num_heads ({num_heads})')
        if not attn_scale > 0:
            raise ValueError(f'attn_scale must be > 0, got {attn_scale}')
        self.num_heads = num_heads
        self.attn_scale = attn_scale
        unit = dict(spike_cfg=spike_cfg, norm_cfg=norm_cfg,
                    num_timesteps=num_timesteps)
        self.q = SpikingLinear(channels, channels, bias=False, **unit)
        self.k = SpikingLinear(channels, channels, bias=False, **unit)
        self.v = SpikingLinear(channels, channels, bias=False, **unit)
        self.attn_spike = build_spike_neuron(attn_spike_cfg, num_timesteps)
        self.proj = SpikingLinear(channels, channels, **unit)

    def matmul_macs(
            self,
            tokens: torch.Tensor,
            context: Optional[torch.Tensor] = None
    ) -> List[Tuple[int, nn.Module]]:
        """MACs of the attention matmuls for ``tokens: [R, C, N]`` querying
        ``context: [R, C, M]`` (default: the tokens themselves), each with
        the neuron whose spikes form its left operand: ``k^T v`` costs
        ``R M C^2 / h`` (k spikes), ``q (k^T v)`` ``R N C^2 / h`` (q
        spikes)."""
        k_side, q_side = linear_attention_macs(tokens, context,
                                               tokens.shape[1],
                                               self.num_heads)
        return [(k_side, self.k.lif), (q_side, self.q.lif)]

    def attend(self, queries: torch.Tensor, keys: torch.Tensor,
               key_mask: Optional[torch.Tensor]) -> torch.Tensor:
        """``q (k^T v)`` per head: ``[R, C, K]`` queries over ``[R, C, M]``
        keys (masked keys zeroed, so they add nothing to ``k^T v``) ->
        spikes ``[R, C, K]``."""
        rows, channels, num_tokens = queries.shape
        q = split_heads(self.q(queries), self.num_heads)
        k = split_heads(mask_keys(self.k(keys), key_mask), self.num_heads)
        v = split_heads(self.v(keys), self.num_heads)
        out = (q @ (k.transpose(-2, -1) @ v)) * self.attn_scale
        out = out.transpose(-1, -2).reshape(rows, channels, num_tokens)
        return self.proj(self.attn_spike(out))
