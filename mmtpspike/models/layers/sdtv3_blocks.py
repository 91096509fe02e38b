"""Building blocks of the Spike-Driven Transformer V3 (E-SpikeFormer).

Module names inside the blocks follow the official SDT-V3 code
(``encode_conv``, ``pwconv1``, ``q_conv``, ``fc1_conv``, ...) so that official
checkpoints map onto them with a short, explicit key table (see
:mod:`mmtpspike.models.backbones.sdtv3_checkpoint`).

Every synaptic layer reads spikes from the neuron in front of it, except the
encoding conv of the first down-sampling layer, which reads the image.
"""
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule

from ..pruning.restore import Selection, gather_tokens, scatter_tokens
from ..pruning.tiles import TileRows, TileSelection
from .attention_ops import linear_attention_macs, mask_keys, split_heads
from .position_conv import PositionConv2d
from .spike_neurons import build_spike_neuron
from .token_attention import TokenAttention
from .token_block import TokenBlock


def norm1d_cfg(norm_cfg: dict) -> dict:
    """Return the 1-D counterpart of a 2-D norm config (BN -> BN1d)."""
    cfg = dict(norm_cfg)
    if cfg['type'] in ('BN', 'BN2d'):
        cfg['type'] = 'BN1d'
    return cfg


def conv_norm(in_channels: int,
              out_channels: int,
              norm_cfg: dict,
              kernel_size: int = 1,
              padding: int = 0,
              groups: int = 1) -> nn.Sequential:
    """A bias-free ``Conv2d`` followed by a norm layer (keys ``0`` / ``1``)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding,
                  groups=groups, bias=False),
        build_norm_layer(norm_cfg, out_channels)[1])


class Downsampling(BaseModule):
    """Strided conv + norm, preceded by a spike neuron except on the image.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int): Conv kernel size.
        stride (int): Conv stride.
        encodes_input (bool): True for the first layer, which reads the real
            image (no neuron in front of it).
        spike_cfg (dict): Neuron config.
        norm_cfg (dict): Norm config.
        num_timesteps (int): ``T`` for stateful neurons.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int,
                 stride: int,
                 encodes_input: bool,
                 spike_cfg: dict,
                 norm_cfg: dict,
                 num_timesteps: int = 1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if not encodes_input:
            self.encode_spike = build_spike_neuron(spike_cfg, num_timesteps)
        self.encode_conv = nn.Conv2d(in_channels, out_channels, kernel_size,
                                     stride, padding=kernel_size // 2)
        self.encode_conv.encodes_input = encodes_input
        self.encode_bn = build_norm_layer(norm_cfg, out_channels)[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C_in, H, W]`` -> ``[B, C_out, ceil(H/s), ceil(W/s)]``."""
        if hasattr(self, 'encode_spike'):
            x = self.encode_spike(x)
        return self.encode_bn(self.encode_conv(x))


class SepConv(BaseModule):
    """Spiking inverted separable conv (MobileNetV2 style, expansion 2).

    ``spike -> 1x1 -> spike -> depthwise kxk -> spike -> 1x1``.

    Args:
        channels (int): Input and output channels.
        kernel_size (int): Depthwise kernel size (7 in conv blocks, 3 in
            transformer blocks).
        spike_cfg (dict): Neuron config.
        norm_cfg (dict): Norm config.
        expansion (int): Hidden width ratio. Default: 2.
        num_timesteps (int): ``T`` for stateful neurons.
    """

    def __init__(self,
                 channels: int,
                 kernel_size: int,
                 spike_cfg: dict,
                 norm_cfg: dict,
                 expansion: int = 2,
                 num_timesteps: int = 1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        hidden = channels * expansion
        self.spike1 = build_spike_neuron(spike_cfg, num_timesteps)
        self.pwconv1 = conv_norm(channels, hidden, norm_cfg)
        self.spike2 = build_spike_neuron(spike_cfg, num_timesteps)
        self.dwconv = conv_norm(hidden, hidden, norm_cfg, kernel_size,
                                kernel_size // 2, groups=hidden)
        self.spike3 = build_spike_neuron(spike_cfg, num_timesteps)
        self.pwconv2 = conv_norm(hidden, channels, norm_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` -> ``[B, C, H, W]``."""
        x = self.pwconv1(self.spike1(x))
        x = self.dwconv(self.spike2(x))
        return self.pwconv2(self.spike3(x))

    def forward_at(self, x: torch.Tensor,
                   selection: Selection) -> torch.Tensor:
        """The mixer run by the selected tokens only (stopped tokens skip
        both pointwise convs): ``[R, C, H, W]`` -> ``[R, C, K]`` output at
        the selected positions.

        The depthwise conv still runs on the full map, where stopped
        positions emit no spikes, so a kept token mixes with its kept
        neighbours only.
        """
        rows, _, height, width = x.shape
        tokens = gather_tokens(x.flatten(2), selection).unsqueeze(-1)
        hidden = self.spike2(self.pwconv1(self.spike1(tokens))).squeeze(-1)
        if selection.has_fillers:
            hidden = hidden * selection.slot_mask[:, None].to(hidden.dtype)
        # token-major zeros: the map is channels-last, as fuse() makes it
        silent = hidden.new_zeros(rows, height * width,
                                  hidden.shape[1]).transpose(1, 2)
        hidden = scatter_tokens(silent, hidden, selection).reshape(
            rows, -1, height, width)
        mixed = gather_tokens(self.dwconv(hidden).flatten(2), selection)
        return self.pwconv2(self.spike3(mixed.unsqueeze(-1))).squeeze(-1)


class SpikeConvBlock(BaseModule):
    """Convolutional SDT-V3 block: SepConv mixer + 3x3 conv channel MLP.

    Args:
        channels (int): Channels.
        spike_cfg (dict): Neuron config.
        norm_cfg (dict): Norm config.
        mlp_ratio (int): Hidden ratio of the conv MLP. Default: 4.
        sep_kernel_size (int): SepConv depthwise kernel. Default: 7.
        num_timesteps (int): ``T`` for stateful neurons.
    """

    def __init__(self,
                 channels: int,
                 spike_cfg: dict,
                 norm_cfg: dict,
                 mlp_ratio: int = 4,
                 sep_kernel_size: int = 7,
                 num_timesteps: int = 1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        hidden = channels * mlp_ratio
        self.sep_conv = SepConv(channels, sep_kernel_size, spike_cfg,
                                norm_cfg, num_timesteps=num_timesteps)
        self.spike1 = build_spike_neuron(spike_cfg, num_timesteps)
        self.conv1 = PositionConv2d(channels, hidden, 3)
        self.bn1 = build_norm_layer(norm_cfg, hidden)[1]
        self.spike2 = build_spike_neuron(spike_cfg, num_timesteps)
        self.conv2 = PositionConv2d(hidden, channels, 3)
        self.bn2 = build_norm_layer(norm_cfg, channels)[1]

    def mix(self, x: torch.Tensor) -> torch.Tensor:
        """SepConv residual on the full map: ``[R, C, H, W]`` -> same."""
        return x + self.sep_conv(x)

    def transform_at(self, x: torch.Tensor,
                     selection: Selection) -> torch.Tensor:
        """The 3x3 channel MLP residual at the selected positions only:
        ``[R, C, H, W]`` -> ``[R, C, K]``.

        ``conv1`` reads the full spike map around each selected position;
        its hidden spikes exist at the selected positions only (stopped
        positions stay silent), which is all ``conv2`` reads.
        """
        index, shape = selection.index, selection.spatial_shape
        hidden = self.bn1(self.conv1(self.spike1(x), index).unsqueeze(-1))
        hidden = self.spike2(hidden).squeeze(-1)
        fillers = selection.slot_mask if selection.has_fillers else None
        y = self.conv2(hidden, index, fillers, shape)
        y = self.bn2(y.unsqueeze(-1)).squeeze(-1)
        return gather_tokens(x.flatten(2), selection) + y

    def transform_tiles(self, x: torch.Tensor,
                        selection: TileSelection) -> torch.Tensor:
        """The 3x3 channel MLP residual on the selected tiles only:
        ``[R, C, H, W]`` -> ``[R, C, H, W]`` (``x`` outside them).

        ``conv1`` reads each kept tile with its halo from the full spike
        map; ``conv2`` reads the kept tiles' hidden spikes with their halo,
        zero wherever no kept tile is (stopped positions stay silent). Both
        are dense convs on the batch of haloed tiles ``[M, C, t + 2, t +
        2]``; norms and neurons see the live positions only (kept tokens
        inside the image), ``[L, C', 1, 1]``.
        """
        rows = TileRows.build(selection, halo=self.conv1.padding[0])
        hidden = self.conv1(rows.gather_halo(self.spike1(x)), tiles=True)
        hidden = self.spike2(self.bn1(rows.live(hidden)))
        y = self.conv2(rows.gather_hidden_halo(hidden), tiles=True)
        return rows.add(x, self.bn2(rows.live(y)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` -> ``[B, C, H, W]``."""
        x = self.mix(x)
        y = self.bn1(self.conv1(self.spike1(x)))
        y = self.bn2(self.conv2(self.spike2(y)))
        return x + y


class SpikeAttention(TokenAttention):
    """Spike-driven linear self-attention of SDT-V3 on flat tokens.

    ``q, k = spike(BN(1x1 conv(spike(x))))``, ``v`` the same with ``4 C``
    channels, per head ``out = spike(q (k^T v) * attn_scale)`` with
    ``attn_scale = 2 / sqrt(d)``, then a 1x1 projection + BN. There is no
    softmax, so ``q (k^T v)`` equals ``(q k^T) v`` (exactly, since spikes
    are small multiples of ``1/D``) at a cost linear in the number of
    tokens.

    Args:
        channels (int): Token channels ``C``.
        num_heads (int): Heads. Default: 8.
        v_expansion (int): ``C_v / C``. Default: 4.
        spike_cfg (dict): Neuron config.
        norm_cfg (dict): Norm config (2-D).
        attention_order (str): ``'linear'`` for ``q (k^T v)`` (default) or
            ``'quadratic'`` for ``(q k^T) v`` as in the public code.
        num_timesteps (int): ``T`` for stateful neurons.
    """

    def __init__(self,
                 channels: int,
                 spike_cfg: dict,
                 norm_cfg: dict,
                 num_heads: int = 8,
                 v_expansion: int = 4,
                 attention_order: str = 'linear',
                 num_timesteps: int = 1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if channels % num_heads:
            raise ValueError(f'channels ({channels}) must be divisible by '
                             f'num_heads ({num_heads})')
        if attention_order not in ('linear', 'quadratic'):
            raise ValueError("attention_order must be 'linear' or "
                             f"'quadratic', got {attention_order!r}")
        self.num_heads = num_heads
        self.attention_order = attention_order
        self.attn_scale = 2 * (channels // num_heads)**-0.5
        v_channels = channels * v_expansion
        self.head_spike = build_spike_neuron(spike_cfg, num_timesteps)
        self.q_conv = conv_norm(channels, channels, norm_cfg)
        self.q_spike = build_spike_neuron(spike_cfg, num_timesteps)
        self.k_conv = conv_norm(channels, channels, norm_cfg)
        self.k_spike = build_spike_neuron(spike_cfg, num_timesteps)
        self.v_conv = conv_norm(channels, v_channels, norm_cfg)
        self.v_spike = build_spike_neuron(spike_cfg, num_timesteps)
        self.attn_spike = build_spike_neuron(spike_cfg, num_timesteps)
        self.proj_conv = conv_norm(v_channels, channels, norm_cfg)

    @staticmethod
    def _project(conv: nn.Module, spike: nn.Module,
                 tokens: torch.Tensor) -> torch.Tensor:
        """``spike(conv(tokens))`` for a 1x1 conv + norm on flat tokens:
        ``[B, C, N]`` -> ``[B, C', N]``."""
        return spike(conv(tokens.unsqueeze(-1))).squeeze(-1)

    def _attend(self, q: torch.Tensor, k: torch.Tensor,
                v: torch.Tensor) -> torch.Tensor:
        """``[B, h, N, d]`` q, k and ``[B, h, N, d_v]`` v -> ``[B, h, N,
        d_v]``, in the configured order (no softmax, so both are equal)."""
        if self.attention_order == 'linear':
            return q @ (k.transpose(-2, -1) @ v)
        return (q @ k.transpose(-2, -1)) @ v

    def matmul_macs(
            self,
            tokens: torch.Tensor,
            context: Optional[torch.Tensor] = None
    ) -> List[Tuple[int, nn.Module]]:
        """MACs of the attention matmuls for ``tokens: [B, C, N]`` querying
        ``context: [B, C, M]`` (default: the tokens themselves), each with
        the neuron whose spikes form its left operand.

        Linear order: ``k^T v`` (``M C C_v / h``, reads k spikes) and
        ``q (k^T v)`` (``N C C_v / h``, reads q spikes). Quadratic order:
        ``N M (C + C_v)`` in all, split in halves.
        """
        batch, channels, num_queries = tokens.shape
        num_keys = num_queries if context is None else context.shape[2]
        v_channels = self.v_conv[0].out_channels
        if self.attention_order == 'linear':
            k_side, q_side = linear_attention_macs(tokens, context,
                                                   v_channels, self.num_heads)
        else:
            total = batch * num_queries * num_keys * (channels + v_channels)
            k_side, q_side = total // 2, total - total // 2
        return [(k_side, self.k_spike), (q_side, self.q_spike)]

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """The head neuron: ``[B, C, N]`` -> spikes ``[B, C, N]``."""
        return self.head_spike(tokens)

    def attend(self, queries: torch.Tensor, keys: torch.Tensor,
               key_mask: Optional[torch.Tensor]) -> torch.Tensor:
        """``q (k^T v)`` (or ``(q k^T) v``) per head: ``[B, C, N]`` query
        spikes over ``[B, C, M]`` key spikes (masked keys zeroed) -> ``[B,
        C, N]``."""
        batch, _, num_tokens = queries.shape
        q = self._project(self.q_conv, self.q_spike, queries)
        k = mask_keys(self._project(self.k_conv, self.k_spike, keys),
                      key_mask)
        v = self._project(self.v_conv, self.v_spike, keys)
        out = self._attend(*(split_heads(t, self.num_heads)
                             for t in (q, k, v)))
        out = (out * self.attn_scale).transpose(-1, -2).reshape(
            batch, -1, num_tokens)
        out = self.attn_spike(out).unsqueeze(-1)
        return self.proj_conv(out).squeeze(-1)


class SpikeMLP(BaseModule):
    """Token-wise spiking MLP: ``spike -> fc1 -> BN -> spike -> fc2 -> BN``.

    Args:
        channels (int): Token channels.
        spike_cfg (dict): Neuron config.
        norm_cfg (dict): Norm config (2-D; its 1-D counterpart is used).
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
        hidden = channels * mlp_ratio
        self.fc1_spike = build_spike_neuron(spike_cfg, num_timesteps)
        self.fc1_conv = nn.Conv1d(channels, hidden, 1)
        self.fc1_bn = build_norm_layer(norm1d_cfg(norm_cfg), hidden)[1]
        self.fc2_spike = build_spike_neuron(spike_cfg, num_timesteps)
        self.fc2_conv = nn.Conv1d(hidden, channels, 1)
        self.fc2_bn = build_norm_layer(norm1d_cfg(norm_cfg), channels)[1]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[B, C, N]`` -> ``[B, C, N]``."""
        x = self.fc1_bn(self.fc1_conv(self.fc1_spike(tokens)))
        return self.fc2_bn(self.fc2_conv(self.fc2_spike(x)))


class SpikeTransformerBlock(TokenBlock):
    """Transformer block of SDT-V3: SepConv mixer, attention, MLP.

    The block is split in two so token pruning can wrap it:
    :meth:`mix` (the spatial SepConv residual, always on the full map) and
    :meth:`transform_tokens` (attention + MLP residuals on any set of flat
    tokens). ``forward`` runs both on all tokens (the dense block).

    Args:
        channels (int): Channels.
        spike_cfg (dict): Neuron config.
        norm_cfg (dict): Norm config.
        num_heads (int): Attention heads. Default: 8.
        mlp_ratio (int): MLP hidden ratio. Default: 4.
        v_expansion (int): Value expansion of attention. Default: 4.
        sep_kernel_size (int): SepConv depthwise kernel. Default: 3.
        drop_path (float): Stochastic depth rate. Default: 0.
        attention_order (str): See :class:`SpikeAttention`.
        num_timesteps (int): ``T`` for stateful neurons.
    """

    def __init__(self,
                 channels: int,
                 spike_cfg: dict,
                 norm_cfg: dict,
                 num_heads: int = 8,
                 mlp_ratio: int = 4,
                 v_expansion: int = 4,
                 sep_kernel_size: int = 3,
                 drop_path: float = 0.,
                 attention_order: str = 'linear',
                 num_timesteps: int = 1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(drop_path, num_timesteps, init_cfg)
        self.sep_conv = SepConv(channels, sep_kernel_size, spike_cfg,
                                norm_cfg, num_timesteps=num_timesteps)
        self.attn = SpikeAttention(channels, spike_cfg, norm_cfg, num_heads,
                                   v_expansion, attention_order, num_timesteps)
        self.mlp = SpikeMLP(channels, spike_cfg, norm_cfg, mlp_ratio,
                            num_timesteps)

    def mix(self, x: torch.Tensor) -> torch.Tensor:
        """SepConv residual on the full map: ``[B, C, H, W]`` -> same."""
        return x + self.drop_path(self.sep_conv(x))

    def mix_at(self, x: torch.Tensor, selection: Selection) -> torch.Tensor:
        """SepConv residual of the selected tokens only: ``[R, C, H, W]``
        -> ``[R, C, K]`` (see :meth:`SepConv.forward_at`)."""
        return super().mix_at(x, selection) + self.drop_path(
            self.sep_conv.forward_at(x, selection))
