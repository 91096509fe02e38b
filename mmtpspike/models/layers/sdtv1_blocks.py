"""Building blocks of the Spike-driven Transformer V1 (Yao et al., NeurIPS
2023).

Every residual branch starts with a spike neuron and is added to the
membrane (pre-spike) stream, the *membrane shortcut*, so every synaptic
layer except the first conv of the patch embedding (which reads the image)
reads binary spikes.

Module names follow the public code (``q_conv``, ``q_bn``, ``proj_conv``,
``fc1_conv``, ``rpe_conv``, ...) so that public checkpoints map onto them with
a short, explicit key table (see
:mod:`mmtpspike.models.backbones.sdtv1_checkpoint`). Flat token tensors are
``[R, C, N]`` with ``R = T * B`` timestep-major rows; the 1x1 convs and BNs
keep the public 2-D shapes and run on ``[R, C, N, 1]``.
"""
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule

from .attention_ops import mask_keys
from .spike_neurons import build_spike_neuron
from .token_attention import TokenAttention
from .token_block import TokenBlock


def with_threshold(spike_cfg: dict, v_threshold: float) -> dict:
    """``spike_cfg`` with another firing threshold (LIF neurons only; other
    neuron types have none and are returned unchanged)."""
    if spike_cfg.get('type') != 'LIF':
        return dict(spike_cfg)
    return dict(spike_cfg, v_threshold=v_threshold)


def conv_norm_tokens(conv: nn.Conv2d, norm: nn.Module,
                     tokens: torch.Tensor) -> torch.Tensor:
    """``norm(conv(tokens))`` for a 1x1 ``Conv2d`` and a 2-D norm on flat
    tokens: ``[R, C, N]`` -> ``[R, C', N]``."""
    return norm(conv(tokens.unsqueeze(-1))).squeeze(-1)


class ConvNormPool(BaseModule):
    """One layer of the spiking patch splitting module:
    ``3x3 conv -> norm [-> spike] -> 3x3 s2 max-pool``.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        spike_cfg (dict, optional): Neuron between norm and pool; None for
            the last layer, whose membrane output feeds the shortcut.
        norm_cfg (dict): Norm config.
        num_timesteps (int): ``T`` for stateful neurons.
        encodes_input (bool): True for the first layer, which reads the image.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 spike_cfg: Optional[dict],
                 norm_cfg: dict,
                 num_timesteps: int = 1,
                 encodes_input: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1,
                              bias=False)
        self.conv.encodes_input = encodes_input
        self.bn = build_norm_layer(norm_cfg, out_channels)[1]
        if spike_cfg is not None:
            self.spike = build_spike_neuron(spike_cfg, num_timesteps)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[R, C_in, H, W]`` -> ``[R, C_out, ceil(H / 2), ceil(W / 2)]``."""
        x = self.bn(self.conv(x))
        if hasattr(self, 'spike'):
            x = self.spike(x)
        return self.pool(x)


class SpikingPatchEmbed(BaseModule):
    """Spiking patch splitting (SPS) with a membrane-shortcut position
    embedding.

    ``num_layers`` :class:`ConvNormPool` layers with widths ``C / 2^(n-1)``,
    ..., ``C / 2``, ``C`` (each halving the resolution, max-pool padding 1,
    so any input size gives ``ceil(H / 2^n)``), then the relative position
    embedding on the last layer's membrane output ``m``:
    ``m + BN(3x3 conv(spike(m)))``.

    Args:
        in_channels (int): Image channels.
        embed_dims (int): Output channels ``C``.
        spike_cfg (dict): Neuron config.
        norm_cfg (dict): Norm config.
        num_layers (int): Conv-pool layers; the stride is ``2^num_layers``.
            Default: 4.
        num_timesteps (int): ``T`` for stateful neurons.
    """

    def __init__(self,
                 in_channels: int,
                 embed_dims: int,
                 spike_cfg: dict,
                 norm_cfg: dict,
                 num_layers: int = 4,
                 num_timesteps: int = 1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        scale = 2**(num_layers - 1)
        if embed_dims % scale:
            raise ValueError(f'embed_dims ({embed_dims}) must be divisible '
                             f'by {scale}: the patch embedding widths are '
                             f'embed_dims / {scale}, ..., embed_dims')
        widths = [embed_dims // 2**(num_layers - 1 - i)
                  for i in range(num_layers)]
        self.stride = 2**num_layers
        self.proj = nn.ModuleList()
        for index, width in enumerate(widths):
            last = index == num_layers - 1
            self.proj.append(ConvNormPool(
                in_channels, width, None if last else spike_cfg, norm_cfg,
                num_timesteps, encodes_input=index == 0))
            in_channels = width
        self.rpe_spike = build_spike_neuron(spike_cfg, num_timesteps)
        self.rpe_conv = nn.Conv2d(embed_dims, embed_dims, 3, padding=1,
                                  bias=False)
        self.rpe_bn = build_norm_layer(norm_cfg, embed_dims)[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[R, C_in, H, W]`` -> ``[R, C, ceil(H / s), ceil(W / s)]``."""
        for layer in self.proj:
            x = layer(x)
        return x + self.rpe_bn(self.rpe_conv(self.rpe_spike(x)))


class SpikeDrivenSelfAttention(TokenAttention):
    """Spike-driven self-attention (SDSA) on flat tokens.

    ``x = spike(tokens)``; ``q, k, v = spike(BN(1x1 conv(x)))`` (binary);
    per channel ``a = spike_kv(sum_n k_n * v_n)`` (the key-value product
    summed over tokens, a column mask in the paper); ``out = BN(1x1 conv(q *
    a))``. Everything is channel-wise, so the public code's split into heads
    does not change the result and is not repeated here; its
    ``talking_heads`` conv is not used by its forward and has no counterpart.

    Args:
        channels (int): Token channels ``C``.
        spike_cfg (dict): Neuron config of the shortcut and q, k, v neurons.
        kv_spike_cfg (dict): Neuron config after the key-value sum (the
            public code fires it at threshold 0.5).
        norm_cfg (dict): Norm config (2-D).
        num_timesteps (int): ``T`` for stateful neurons.
    """

    def __init__(self,
                 channels: int,
                 spike_cfg: dict,
                 kv_spike_cfg: dict,
                 norm_cfg: dict,
                 num_timesteps: int = 1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.shortcut_spike = build_spike_neuron(spike_cfg, num_timesteps)
        for name in ('q', 'k', 'v'):
            setattr(self, f'{name}_conv',
                    nn.Conv2d(channels, channels, 1, bias=False))
            setattr(self, f'{name}_bn',
                    build_norm_layer(norm_cfg, channels)[1])
            setattr(self, f'{name}_spike',
                    build_spike_neuron(spike_cfg, num_timesteps))
        self.kv_spike = build_spike_neuron(kv_spike_cfg, num_timesteps)
        self.proj_conv = nn.Conv2d(channels, channels, 1)
        self.proj_bn = build_norm_layer(norm_cfg, channels)[1]

    def _spikes(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """q, k or v spikes of shortcut spikes ``x``: ``[R, C, N]``."""
        return getattr(self, f'{name}_spike')(conv_norm_tokens(
            getattr(self, f'{name}_conv'), getattr(self, f'{name}_bn'), x))

    def matmul_macs(
            self,
            tokens: torch.Tensor,
            context: Optional[torch.Tensor] = None
    ) -> List[Tuple[int, nn.Module]]:
        """Token products for ``tokens: [R, C, N]`` over ``context: [R, C,
        M]`` (default: the tokens), each with the neuron whose spikes drive
        it: ``k * v`` summed over tokens (``R C M``, k spikes) and ``q * a``
        (``R C N``, q spikes)."""
        rows, channels, num_queries = tokens.shape
        num_keys = num_queries if context is None else context.shape[2]
        return [(rows * channels * num_keys, self.k_spike),
                (rows * channels * num_queries, self.q_spike)]

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """The shortcut neuron: ``[R, C, N]`` -> spikes ``[R, C, N]``."""
        return self.shortcut_spike(tokens)

    def attend(self, queries: torch.Tensor, keys: torch.Tensor,
               key_mask: Optional[torch.Tensor]) -> torch.Tensor:
        """``q * spike_kv(sum_m k_m * v_m)``: ``[R, C, N]`` query spikes
        over ``[R, C, M]`` key spikes (masked tokens left out of the sum)
        -> ``[R, C, N]``, the branch output (no residual)."""
        q = self._spikes('q', queries)
        kv = mask_keys(self._spikes('k', keys) * self._spikes('v', keys),
                       key_mask)
        kv = self.kv_spike(kv.sum(-1, keepdim=True))
        return conv_norm_tokens(self.proj_conv, self.proj_bn, q * kv)


class SpikeDrivenMLP(BaseModule):
    """Token-wise spiking MLP:
    ``spike -> fc1 -> BN -> spike -> fc2 -> BN`` (1x1 convs).

    As in the public code, a hidden width equal to the input width
    (``mlp_ratio=1``) adds an inner membrane shortcut around ``fc1``.

    Args:
        channels (int): Token channels.
        spike_cfg (dict): Neuron config.
        norm_cfg (dict): Norm config (2-D).
        mlp_ratio (float): Hidden width ratio. Default: 4.
        num_timesteps (int): ``T`` for stateful neurons.
    """

    def __init__(self,
                 channels: int,
                 spike_cfg: dict,
                 norm_cfg: dict,
                 mlp_ratio: float = 4,
                 num_timesteps: int = 1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        hidden = int(channels * mlp_ratio)
        self.inner_shortcut = hidden == channels
        self.fc1_spike = build_spike_neuron(spike_cfg, num_timesteps)
        self.fc1_conv = nn.Conv2d(channels, hidden, 1)
        self.fc1_bn = build_norm_layer(norm_cfg, hidden)[1]
        self.fc2_spike = build_spike_neuron(spike_cfg, num_timesteps)
        self.fc2_conv = nn.Conv2d(hidden, channels, 1)
        self.fc2_bn = build_norm_layer(norm_cfg, channels)[1]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[R, C, N]`` -> ``[R, C, N]``, the branch output (no outer
        residual)."""
        hidden = conv_norm_tokens(self.fc1_conv, self.fc1_bn,
                                  self.fc1_spike(tokens))
        stream = tokens + hidden if self.inner_shortcut else hidden
        out = conv_norm_tokens(self.fc2_conv, self.fc2_bn,
                               self.fc2_spike(stream))
        return hidden + out if self.inner_shortcut else out


class SpikeDrivenBlock(TokenBlock):
    """Spike-driven Transformer encoder block: SDSA and MLP residuals.

    The block has no spatial part, so :meth:`mix` is the identity and the
    whole block runs on any set of flat tokens (what token pruning drives).
    SDSA sums over tokens: filler slots (``token_mask``) are left out of the
    sum, and a ``context`` gives the keys and values of the sum.

    Args:
        channels (int): Channels.
        spike_cfg (dict): Neuron config.
        kv_spike_cfg (dict): Neuron config after SDSA's key-value sum.
        norm_cfg (dict): Norm config.
        mlp_ratio (float): MLP hidden ratio. Default: 4.
        num_timesteps (int): ``T`` for stateful neurons.
    """

    def __init__(self,
                 channels: int,
                 spike_cfg: dict,
                 kv_spike_cfg: dict,
                 norm_cfg: dict,
                 mlp_ratio: float = 4,
                 num_timesteps: int = 1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(num_timesteps=num_timesteps, init_cfg=init_cfg)
        self.attn = SpikeDrivenSelfAttention(channels, spike_cfg,
                                             kv_spike_cfg, norm_cfg,
                                             num_timesteps)
        self.mlp = SpikeDrivenMLP(channels, spike_cfg, norm_cfg, mlp_ratio,
                                  num_timesteps)
