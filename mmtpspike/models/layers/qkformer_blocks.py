"""Building blocks of QKFormer (Zhou et al., NeurIPS 2024).

QKFormer is a hierarchical spiking transformer: spiking patch embeddings
with a deformed shortcut (SPEDS) between three stages, Q-K token attention
(QKTA) blocks in the first two stages and spiking self-attention (SSA,
Spikformer's, :mod:`.spiking_self_attention`) blocks in the last one. Every
layer ends in a multi-step LIF neuron and the residual stream is a sum of
spikes (small non-negative integers), which the next layer's convs read
directly.

Module names follow the public code (``q_conv``, ``q_bn``, ``proj_conv``,
``fc1_conv``, ...) where they are self-explanatory; the patch-embedding convs
are renamed by role (``stem``, ``down``, ``embed``, ``shortcut``) and the
shared SSA groups each ``conv / bn / neuron`` triple (``q.conv``, ``q.bn``).
The key table is in :mod:`mmtpspike.models.backbones.qkformer_checkpoint`.
"""
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule

from .sdtv3_blocks import norm1d_cfg
from .spike_neurons import build_spike_neuron
from .spiking_self_attention import SpikingSelfAttention
from .token_attention import TokenAttention
from .token_block import TokenBlock


class SpikingPatchEmbed(BaseModule):
    """Spiking patch embedding with deformed shortcut (SPEDS), stride 2.

    ``main = LIF(BN(embed_conv(LIF(maxpool(BN(down_conv(x)))))))`` (two 3x3
    convs, 3x3 / 2 max pooling after the first) and ``shortcut = LIF(BN(
    shortcut_conv(x)))`` (1x1 conv, stride 2); the output is ``main +
    shortcut``, values in ``{0, 1, 2}``.

    With ``stem_channels`` (the first patch embedding, which reads the
    image), a stem ``LIF(maxpool(BN(stem_conv(image))))`` (3x3 conv to
    ``stem_channels``, stride 2) runs first, so the total stride is 4.

    Args:
        in_channels (int): Input channels (image channels for the stem).
        out_channels (int): Output channels.
        spike_cfg (dict): Neuron config.
        norm_cfg (dict): Norm config (2-D).
        stem_channels (int, optional): Width of the stem; None = no stem.
        num_timesteps (int): ``T`` for stateful neurons.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 spike_cfg: dict,
                 norm_cfg: dict,
                 stem_channels: Optional[int] = None,
                 num_timesteps: int = 1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.with_stem = stem_channels is not None
        if self.with_stem:
            self.stem_conv = nn.Conv2d(in_channels, stem_channels, 3,
                                       padding=1, bias=False)
            self.stem_conv.encodes_input = True
            self.stem_bn = build_norm_layer(norm_cfg, stem_channels)[1]
            self.stem_spike = build_spike_neuron(spike_cfg, num_timesteps)
            in_channels = stem_channels
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.down_conv = nn.Conv2d(in_channels, out_channels, 3, padding=1,
                                   bias=False)
        self.down_bn = build_norm_layer(norm_cfg, out_channels)[1]
        self.down_spike = build_spike_neuron(spike_cfg, num_timesteps)
        self.embed_conv = nn.Conv2d(out_channels, out_channels, 3, padding=1,
                                    bias=False)
        self.embed_bn = build_norm_layer(norm_cfg, out_channels)[1]
        self.embed_spike = build_spike_neuron(spike_cfg, num_timesteps)
        self.shortcut_conv = nn.Conv2d(in_channels, out_channels, 1,
                                       stride=2, bias=False)
        self.shortcut_bn = build_norm_layer(norm_cfg, out_channels)[1]
        self.shortcut_spike = build_spike_neuron(spike_cfg, num_timesteps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[R, C_in, H, W]`` -> ``[R, C_out, ceil(H / s), ceil(W / s)]``,
        ``s = 4`` with the stem, else 2."""
        if self.with_stem:
            x = self.stem_spike(self.pool(self.stem_bn(self.stem_conv(x))))
        main = self.down_spike(self.pool(self.down_bn(self.down_conv(x))))
        main = self.embed_spike(self.embed_bn(self.embed_conv(main)))
        shortcut = self.shortcut_spike(
            self.shortcut_bn(self.shortcut_conv(x)))
        return main + shortcut


class TokenQKAttention(TokenAttention):
    """Q-K token attention (QKTA) on flat tokens.

    ``q, k = LIF(BN(1x1 conv(x)))``; per head, each token's attention is
    ``A = LIF(sum of its q over the head's channels)`` (one binary value per
    token and head, threshold ``attn_spike_cfg``); the output ``A * k`` goes
    through a 1x1 projection, BN and LIF. The attention is token-wise: no
    token's output depends on another token.

    Args:
        channels (int): Token channels ``C``.
        num_heads (int): Heads; ``C`` must be divisible by it.
        spike_cfg (dict): Neuron config of q, k and the output.
        attn_spike_cfg (dict): Neuron config of the attention vector.
        norm_cfg (dict): Norm config (2-D; its 1-D counterpart is used).
        num_timesteps (int): ``T`` for stateful neurons.
    """

    def __init__(self,
                 channels: int,
                 num_heads: int,
                 spike_cfg: dict,
                 attn_spike_cfg: dict,
                 norm_cfg: dict,
                 num_timesteps: int = 1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if channels % num_heads:
            raise ValueError(f'channels ({channels}) must be divisible by '
                             f'num_heads ({num_heads})')
        self.num_heads = num_heads
        norm1d = norm1d_cfg(norm_cfg)
        self.q_conv = nn.Conv1d(channels, channels, 1, bias=False)
        self.q_bn = build_norm_layer(norm1d, channels)[1]
        self.q_spike = build_spike_neuron(spike_cfg, num_timesteps)
        self.k_conv = nn.Conv1d(channels, channels, 1, bias=False)
        self.k_bn = build_norm_layer(norm1d, channels)[1]
        self.k_spike = build_spike_neuron(spike_cfg, num_timesteps)
        self.attn_spike = build_spike_neuron(attn_spike_cfg, num_timesteps)
        self.proj_conv = nn.Conv1d(channels, channels, 1)
        self.proj_bn = build_norm_layer(norm1d, channels)[1]
        self.proj_spike = build_spike_neuron(spike_cfg, num_timesteps)

    def matmul_macs(
            self,
            tokens: torch.Tensor,
            context: Optional[torch.Tensor] = None
    ) -> List[Tuple[int, nn.Module]]:
        """Token operations for ``tokens: [R, C, N]`` (the context has no
        effect), each with the neuron whose spikes form its operand: the
        channel sum of ``q`` costs ``R N C`` adds (q spikes), the mask
        ``A * k`` ``R N C`` (attention spikes)."""
        rows, channels, num_tokens = tokens.shape
        ops = rows * num_tokens * channels
        return [(ops, self.q_spike), (ops, self.attn_spike)]

    def attend(self, queries: torch.Tensor, keys: torch.Tensor,
               key_mask: Optional[torch.Tensor]) -> torch.Tensor:
        """Token-wise Q-K attention on ``[R, C, K]`` queries -> ``[R, C,
        K]`` spikes.

        The keys / values input and its mask have no effect: no token reads
        another, so filler slots cannot contribute to other tokens and a
        wider context changes nothing.
        """
        rows, channels, num_tokens = queries.shape
        q = self.q_spike(self.q_bn(self.q_conv(queries)))
        k = self.k_spike(self.k_bn(self.k_conv(queries)))
        head_shape = (rows, self.num_heads, channels // self.num_heads,
                      num_tokens)
        attn = self.attn_spike(q.view(head_shape).sum(2, keepdim=True))
        out = (attn * k.view(head_shape)).view(rows, channels, num_tokens)
        return self.proj_spike(self.proj_bn(self.proj_conv(out)))


class QKFormerMLP(BaseModule):
    """Token-wise spiking MLP: ``LIF(BN(fc2(LIF(BN(fc1(x))))))``.

    The fcs are 1x1 ``Conv2d`` layers as in the public code (so checkpoint
    tensors load unchanged); tokens ``[R, C, K]`` run as ``[R, C, K, 1]``
    maps.

    Args:
        channels (int): Token channels.
        spike_cfg (dict): Neuron config.
        norm_cfg (dict): Norm config (2-D).
        mlp_ratio (int): Hidden ratio. Default: 4.
        num_timesteps (int): ``T`` for stateful neurons.
    """

    def __init__(self,
                 channels: int,
                 spike_cfg: dict,
                 norm_cfg: dict,
                 mlp_ratio: int = 4,
                 num_timesteps: int = 1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        hidden = int(channels * mlp_ratio)
        self.fc1_conv = nn.Conv2d(channels, hidden, 1)
        self.fc1_bn = build_norm_layer(norm_cfg, hidden)[1]
        self.fc1_spike = build_spike_neuron(spike_cfg, num_timesteps)
        self.fc2_conv = nn.Conv2d(hidden, channels, 1)
        self.fc2_bn = build_norm_layer(norm_cfg, channels)[1]
        self.fc2_spike = build_spike_neuron(spike_cfg, num_timesteps)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[R, C, K]`` -> ``[R, C, K]`` spikes."""
        x = self.fc1_spike(self.fc1_bn(self.fc1_conv(tokens.unsqueeze(-1))))
        x = self.fc2_spike(self.fc2_bn(self.fc2_conv(x)))
        return x.squeeze(-1)


ATTENTIONS = {'qkta': TokenQKAttention, 'ssa': SpikingSelfAttention}


class QKFormerBlock(TokenBlock):
    """QKFormer transformer block: attention and MLP residuals.

    ``x = x + attn(x)``, ``x = x + mlp(x)`` on flat tokens. The block has no
    spatial part, so :meth:`mix` is the identity and token pruning can run
    the whole block on any subset of tokens.

    Args:
        channels (int): Channels.
        num_heads (int): Attention heads.
        attention (str): ``'qkta'`` (Q-K token attention, token-wise; the
            first two stages) or ``'ssa'`` (spiking self-attention, sums
            over tokens; the last stage).
        spike_cfg (dict): Neuron config.
        attn_spike_cfg (dict): Neuron config of the attention neuron.
        norm_cfg (dict): Norm config (2-D).
        mlp_ratio (int): MLP hidden ratio. Default: 4.
        attn_scale (float): SSA scale, > 0 (ignored by QKTA).
            Default: 0.125.
        drop_path (float): Stochastic depth rate. Default: 0.
        num_timesteps (int): ``T`` for stateful neurons.
    """

    def __init__(self,
                 channels: int,
                 num_heads: int,
                 attention: str,
                 spike_cfg: dict,
                 attn_spike_cfg: dict,
                 norm_cfg: dict,
                 mlp_ratio: int = 4,
                 attn_scale: float = 0.125,
                 drop_path: float = 0.,
                 num_timesteps: int = 1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(drop_path, num_timesteps, init_cfg)
        if attention not in ATTENTIONS:
            raise ValueError(f'attention must be one of {sorted(ATTENTIONS)}, '
                             f'got {attention!r}')
        self.attention = attention
        extra = dict(attn_scale=attn_scale) if attention == 'ssa' else {}
        self.attn = ATTENTIONS[attention](
            channels, num_heads, spike_cfg, attn_spike_cfg, norm_cfg,
            num_timesteps=num_timesteps, **extra)
        self.mlp = QKFormerMLP(channels, spike_cfg, norm_cfg, mlp_ratio,
                               num_timesteps)
