"""Spike-Driven Transformer V3 (E-SpikeFormer) backbone with token pruning."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from mmtpspike.registry import register_model
from ..layers.drop_path import drop_path_rates
from ..layers.fusion import fuse_conv_bn
from ..layers.sdtv3_blocks import (Downsampling, SpikeConvBlock,
                                   SpikeTransformerBlock)
from .prunable import PrunableBackbone, PrunableStage
from .sdtv3_checkpoint import load_sdtv3_checkpoint


class SDTV3Stage(BaseModule):
    """A down-sampling layer followed by a list of blocks."""

    def __init__(self, downsample: nn.Module, blocks: List[nn.Module]) -> None:
        super().__init__()
        self.downsample = downsample
        self.blocks = nn.ModuleList(blocks)


@register_model
class SDTV3(PrunableBackbone):
    """Spike-Driven Transformer V3 (E-SpikeFormer) for dense prediction.

    Layout (strides w.r.t. the input): a stem (7x7 s2 conv + conv block,
    stride 2), stage 1 (3x3 s2 + conv block, stride 4), stage 2 (3x3 s2 + two
    conv blocks, stride 8), stage 3 (3x3 s2 + 6 transformer blocks, stride 16)
    and stage 4 (3x3 conv with ``stage4_stride`` + 2 transformer blocks;
    stride 16 as published, 32 with ``stage4_stride=2``).

    With ``pruning`` set, the transformer blocks run TP-Spikformer's token
    early stopping (see :class:`~mmtpspike.models.pruning.TokenPruner`); every
    output is still a full-resolution ``[B, C, H, W]`` map.

    Padding: call :meth:`set_img_shapes` before a forward (the
    ``PaddingAwarePruningHook`` does it for runners, ``attach_img_shapes`` for
    ``mmdet.apis`` / ``mmseg.apis``). With ``mask_padding`` (default) the
    tokens outside each image then never enter a transformer block (neither
    as tokens nor as attention context) and keep their values, in the dense
    and the pruned backbone alike, so ``keep = 1`` is exactly the dense
    backbone and the retention ratio is continuous at 1. Without
    shapes every token counts as valid (the public code's behaviour); a
    backbone that needs them (pruned, or dense with ``mask_padding``) warns
    once when its input looks zero-padded.

    Args:
        arch (str): ``'t'``, ``'s'``, ``'m'`` or ``'l'`` (2.6M / 5.1M / 10M /
            19M). Ignored when ``embed_dims`` is given. Default: 'l'.
        embed_dims (list[int], optional): Widths of stages 1-4 (the stem has
            half of stage 1).
        depths (list[int]): Blocks of stages 1-4. Default: (1, 2, 6, 2).
        in_channels (int): Image channels. Default: 3.
        num_heads (int): Attention heads. Default: 8.
        mlp_ratio (int): MLP ratio of all blocks. Default: 4.
        v_expansion (int): Value expansion in attention. Default: 4.
        stage4_stride (int): Stride of stage 4's down-sampling conv, 1 or 2.
        out_indices (Sequence[int]): Stages (0-3) whose outputs are returned.
        out_stem (bool): Also return the stride-2 stem output (first).
        num_timesteps (int): ``T``. Images ``[B, C, H, W]`` are repeated T
            times; event frames come as ``[B, T, C, H, W]``. Outputs are
            averaged over ``T``. Default: 1.
        spike_cfg (dict): Neuron, ``dict(type='MultiSpike', max_spikes=4)``
            or ``dict(type='LIF', tau=2.0)``.
        norm_cfg (dict): Norm config. Default: ``dict(type='BN')``.
        attention_order (str): ``'linear'`` (``q (k^T v)``, default) or
            ``'quadratic'`` (``(q k^T) v``, the public code).
        drop_path_rate (float): Stochastic depth of transformer blocks, in
            [0, 1), linear over them. Default: 0.
        frozen_stages (int): -1 freezes nothing, ``n`` in [0, 4] the stem
            and stages 1..n. Default: -1.
        norm_eval (bool): Keep norm layers in eval mode while training.
        pruning (dict, optional): Token pruning, e.g.
            ``dict(keep_ratios=0.78, scorer=dict(type='IRToPScorer'),
            mode='per_block')``. None = dense. ``skip_mixer=True`` and
            ``conv_keep_ratios`` (the stem and stages 1-2, see
            :class:`~mmtpspike.models.pruning.TokenPruner`) stop tokens
            where the rest of the work is.
        mask_padding (bool): Keep padded tokens (known from
            :meth:`set_img_shapes`) out of the transformer blocks. Default:
            True. False reproduces the public code on padded batches.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=...)``
            loads an official SDT-V3 ImageNet checkpoint (keys converted and
            reported; a missing file is an error). None trains from scratch.

    Example:
        >>> import torch
        >>> from mmtpspike.models import SDTV3
        >>> model = SDTV3(arch='t', pruning=dict(keep_ratios=0.78)).eval()
        >>> outs = model(torch.rand(1, 3, 64, 96))
        >>> [tuple(o.shape) for o in outs]
        [(1, 24, 16, 24), (1, 48, 8, 12), (1, 96, 4, 6), (1, 128, 4, 6)]
    """

    arch_settings = {
        't': [24, 48, 96, 128],
        's': [32, 64, 128, 192],
        'm': [48, 96, 192, 240],
        'l': [64, 128, 256, 360],
    }
    num_conv_stages = 2
    pretrained_weights = 'SDT-V3 ImageNet weights'

    def __init__(self,
                 arch: str = 'l',
                 embed_dims: Optional[Sequence[int]] = None,
                 depths: Sequence[int] = (1, 2, 6, 2),
                 in_channels: int = 3,
                 num_heads: int = 8,
                 mlp_ratio: int = 4,
                 v_expansion: int = 4,
                 stage4_stride: int = 1,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 out_stem: bool = False,
                 num_timesteps: int = 1,
                 spike_cfg: dict = dict(type='MultiSpike', max_spikes=4),
                 norm_cfg: dict = dict(type='BN'),
                 attention_order: str = 'linear',
                 drop_path_rate: float = 0.,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 pruning: Optional[dict] = None,
                 mask_padding: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(num_timesteps, spike_cfg, mask_padding, init_cfg)
        if embed_dims is None:
            if arch not in self.arch_settings:
                raise KeyError(f'arch must be one of '
                               f'{sorted(self.arch_settings)}, got {arch!r}')
            embed_dims = self.arch_settings[arch]
        self.embed_dims = list(embed_dims)
        self.depths = list(depths)
        if len(self.embed_dims) != 4 or len(self.depths) != 4:
            raise ValueError('embed_dims and depths need 4 values (stages '
                             f'1-4), got {embed_dims} and {depths}')
        if stage4_stride not in (1, 2):
            raise ValueError(f'stage4_stride must be 1 or 2, '
                             f'got {stage4_stride}')
        if not out_indices or any(i not in range(4) for i in out_indices):
            raise ValueError(f'out_indices must be a non-empty subset of '
                             f'(0, 1, 2, 3), got {out_indices}')
        self.out_indices = tuple(out_indices)
        self.out_stem = out_stem
        self.stage_strides = [4, 8, 16, 16 * stage4_stride]

        common = dict(spike_cfg=spike_cfg, norm_cfg=norm_cfg,
                      num_timesteps=num_timesteps)
        stem_dims = self.embed_dims[0] // 2
        self.stem = SDTV3Stage(
            Downsampling(in_channels, stem_dims, 7, 2, encodes_input=True,
                         **common),
            [SpikeConvBlock(stem_dims, mlp_ratio=mlp_ratio, **common)])
        num_transformer_blocks = sum(self.depths[self.num_conv_stages:])
        drop_rates = drop_path_rates(drop_path_rate, num_transformer_blocks)
        self.stages = nn.ModuleList()
        in_dims = stem_dims
        for stage_index, (dims, depth) in enumerate(
                zip(self.embed_dims, self.depths)):
            stride = stage4_stride if stage_index == 3 else 2
            downsample = Downsampling(in_dims, dims, 3, stride,
                                      encodes_input=False, **common)
            if stage_index < self.num_conv_stages:
                blocks = [SpikeConvBlock(dims, mlp_ratio=mlp_ratio, **common)
                          for _ in range(depth)]
            else:
                blocks = [
                    SpikeTransformerBlock(
                        dims, num_heads=num_heads, mlp_ratio=mlp_ratio,
                        v_expansion=v_expansion,
                        drop_path=drop_rates.pop(0),
                        attention_order=attention_order, **common)
                    for _ in range(depth)
                ]
            self.stages.append(SDTV3Stage(downsample, blocks))
            in_dims = dims
        self.init_pruning(pruning)
        self.init_freezing(frozen_stages, norm_eval)

    @property
    def out_channels(self) -> List[int]:
        """Channels of the returned maps, in order."""
        chans = [self.embed_dims[i] for i in self.out_indices]
        return [self.embed_dims[0] // 2] + chans if self.out_stem else chans

    @property
    def out_strides(self) -> List[int]:
        """Strides of the returned maps w.r.t. the input, in order."""
        strides = [self.stage_strides[i] for i in self.out_indices]
        return [2] + strides if self.out_stem else strides

    def forward_stages(self) -> List[PrunableStage]:
        """The stem (stage index -1, stride 2) and stages 1-4 (indices 0-3),
        each a down-sampling layer and its blocks."""
        stem = PrunableStage(-1, 'stem.blocks', self.stem.blocks, 2,
                             self.stem.downsample)
        return [stem] + [
            PrunableStage(index, f'stages.{index}.blocks', stage.blocks,
                          self.stage_strides[index], stage.downsample)
            for index, stage in enumerate(self.stages)
        ]

    def conv_prunable_stages(self) -> List[PrunableStage]:
        """The stem and the conv stages 1-2; the transformer stages 3-4 are
        the prunable ones."""
        return [stage for stage in self.forward_stages()
                if stage.index < self.num_conv_stages]

    def is_output(self, stage: PrunableStage) -> bool:
        """Stages in ``out_indices``, and the stem with ``out_stem``."""
        return stage.index in self.out_indices or (self.out_stem and
                                                   stage.index == -1)

    def freezable_stages(self) -> Tuple[nn.Module, List[nn.Module]]:
        """The stem, then stages 1-4."""
        return self.stem, list(self.stages)

    def fuse(self, channels_last: bool = True) -> 'SDTV3':
        """Prepare for fast inference: fold every BN into its conv and use
        channels-last memory. Outputs equal eval mode up to float rounding.
        Training after ``fuse`` is not supported."""
        fuse_conv_bn(self)
        if channels_last:
            self.to(memory_format=torch.channels_last)
        self.fused = True
        return self

    def load_pretrained(self, checkpoint: str,
                        prefix: Optional[str]) -> None:
        """Load official SDT-V3 weights (keys converted and reported)."""
        load_sdtv3_checkpoint(self, checkpoint, prefix=prefix)
