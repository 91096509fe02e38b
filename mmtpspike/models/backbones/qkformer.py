"""QKFormer (hierarchical spiking transformer with Q-K attention) backbone
with token pruning."""
from typing import List, Optional, Sequence, Tuple

import torch.nn as nn
from mmengine.model import BaseModule

from mmtpspike.registry import register_model
from ..layers.drop_path import drop_path_rates
from ..layers.qkformer_blocks import QKFormerBlock, SpikingPatchEmbed
from .prunable import PrunableBackbone, PrunableStage
from .qkformer_checkpoint import load_qkformer_checkpoint, upgrade_legacy_keys


class QKFormerStage(BaseModule):
    """A spiking patch embedding followed by a list of blocks."""

    def __init__(self, patch_embed: nn.Module,
                 blocks: List[nn.Module]) -> None:
        super().__init__()
        self.patch_embed = patch_embed
        self.blocks = nn.ModuleList(blocks)


@register_model
class QKFormer(PrunableBackbone):
    """QKFormer (Zhou et al., NeurIPS 2024) for dense prediction.

    Layout (strides w.r.t. the input): stage 1 (stem + patch embedding,
    stride 4, ``depths[0]`` Q-K token attention blocks), stage 2 (patch
    embedding, stride 8, ``depths[1]`` QKTA blocks), stage 3 (patch
    embedding, stride 16, ``depths[2]`` spiking self-attention blocks). Each
    patch embedding is a SPEDS layer (convs + max pooling with a deformed 1x1
    shortcut). With ``with_stride32`` one more SPEDS layer (``C_3`` to
    ``C_3`` channels, stride 32) follows as stage 4 for FPN heads; it is not
    part of QKFormer and is newly initialised (a pretrained checkpoint
    reports its keys as missing).

    With ``pruning`` set, every transformer block runs TP-Spikformer's token
    early stopping (see :class:`~mmtpspike.models.pruning.TokenPruner`);
    ``keep_ratios`` may hold one value per stage (3) or per block. The
    ``attention_context='all'`` option only changes the SSA blocks: QKTA is
    token-wise, so a wider key / value context has no effect there. Every
    output is still a full-resolution ``[B, C, H, W]`` map.

    Padding: as for :class:`~mmtpspike.models.backbones.SDTV3`, call
    :meth:`set_img_shapes` (the ``PaddingAwarePruningHook`` does it for
    runners); with ``mask_padding`` the tokens outside each image never
    enter a transformer block and keep their values.

    Args:
        arch (str): ``'10-384'``, ``'10-512'`` or ``'10-768'`` (16.47M /
            29.08M / 64.96M with the 1000-class head). Gives the widths and
            heads that ``embed_dims`` / ``num_heads`` leave unset.
            Default: '10-384'.
        embed_dims (list[int], optional): Widths of stages 1-3 (the
            published sizes use ``E/4, E/2, E``; the stem has half of stage
            1).
        depths (list[int]): Blocks of stages 1-3. Default: (1, 2, 7).
        num_heads (int, optional): Heads of every block; None = the arch's
            (6 / 8 / 12).
        in_channels (int): Image channels. Default: 3.
        mlp_ratio (int): MLP hidden ratio. Default: 4.
        with_stride32 (bool): Add the newly initialised stride-32 stage.
        out_indices (Sequence[int], optional): Stages (0-2, and 3 with
            ``with_stride32``) whose outputs are returned; None = all.
        num_timesteps (int): ``T``. Images ``[B, C, H, W]`` are repeated T
            times; event frames come as ``[B, T, C, H, W]``. Outputs are
            averaged over ``T``. Default: 4.
        spike_cfg (dict): Neuron of every layer. Default: multi-step LIF,
            tau 2, threshold 1 (the public code).
        attn_spike_cfg (dict): Neuron of the attention vector (QKTA) / map
            (SSA). Default: LIF, tau 2, threshold 0.5 (the public code).
        attn_scale (float): SSA scale, > 0. Default: 0.125 (public code).
        norm_cfg (dict): Norm config. Default: ``dict(type='BN')``.
        drop_path_rate (float): Stochastic depth in [0, 1), linear over all
            blocks, one decision per image (the public code defines but does
            not apply it). Default: 0.
        frozen_stages (int): -1 freezes nothing, ``n`` in [0, number of
            stages] the first patch embedding (with the stem) and stages
            1..n (embeddings and blocks). Default: -1.
        norm_eval (bool): Keep norm layers in eval mode while training.
        pruning (dict, optional): Token pruning, e.g.
            ``dict(keep_ratios=0.78)``. None = dense.
        mask_padding (bool): Keep padded tokens out of the transformer
            blocks. Default: True.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=...)``
            loads a public QKFormer ImageNet checkpoint (keys converted and
            reported; a missing file is an error). None trains from scratch.

    Example:
        >>> import torch
        >>> from mmtpspike.models.backbones import QKFormer
        >>> model = QKFormer(embed_dims=[16, 32, 64], depths=(1, 1, 2),
        ...                  num_heads=2, num_timesteps=2, with_stride32=True,
        ...                  pruning=dict(keep_ratios=0.78)).eval()
        >>> outs = model(torch.rand(1, 3, 64, 96))
        >>> [tuple(o.shape) for o in outs]
        [(1, 16, 16, 24), (1, 32, 8, 12), (1, 64, 4, 6), (1, 64, 2, 3)]
        >>> model.out_strides
        [4, 8, 16, 32]
    """

    pretrained_weights = 'public QKFormer ImageNet weights'

    arch_settings = {
        '10-384': dict(embed_dims=[96, 192, 384], num_heads=6),
        '10-512': dict(embed_dims=[128, 256, 512], num_heads=8),
        '10-768': dict(embed_dims=[192, 384, 768], num_heads=12),
    }
    stage_attentions = ('qkta', 'qkta', 'ssa')

    def __init__(self,
                 arch: str = '10-384',
                 embed_dims: Optional[Sequence[int]] = None,
                 depths: Sequence[int] = (1, 2, 7),
                 num_heads: Optional[int] = None,
                 in_channels: int = 3,
                 mlp_ratio: int = 4,
                 with_stride32: bool = False,
                 out_indices: Optional[Sequence[int]] = None,
                 num_timesteps: int = 4,
                 spike_cfg: dict = dict(type='LIF', tau=2.0, v_threshold=1.0),
                 attn_spike_cfg: dict = dict(
                     type='LIF', tau=2.0, v_threshold=0.5),
                 attn_scale: float = 0.125,
                 norm_cfg: dict = dict(type='BN'),
                 drop_path_rate: float = 0.,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 pruning: Optional[dict] = None,
                 mask_padding: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(num_timesteps, spike_cfg, mask_padding, init_cfg)
        if embed_dims is None or num_heads is None:
            if arch not in self.arch_settings:
                raise KeyError(f'arch must be one of '
                               f'{sorted(self.arch_settings)}, got {arch!r} '
                               '(or give embed_dims and num_heads)')
            setting = self.arch_settings[arch]
            embed_dims = setting['embed_dims'] if embed_dims is None \
                else embed_dims
            num_heads = setting['num_heads'] if num_heads is None \
                else num_heads
        self.embed_dims = list(embed_dims)
        self.depths = list(depths)
        self._check_layout(self.embed_dims, self.depths, num_heads)
        self.stage_strides = [4, 8, 16] + ([32] if with_stride32 else [])
        num_stages = len(self.stage_strides)
        if out_indices is None:
            out_indices = range(num_stages)
        if not out_indices or any(i not in range(num_stages)
                                  for i in out_indices):
            raise ValueError(
                f'out_indices must be a non-empty subset of '
                f'{tuple(range(num_stages))}, got {tuple(out_indices)}' +
                ('' if with_stride32 else
                 '; stage 3 (stride 32) needs with_stride32=True'))
        self.out_indices = tuple(out_indices)
        self.with_stride32 = with_stride32

        common = dict(spike_cfg=spike_cfg, norm_cfg=norm_cfg,
                      num_timesteps=num_timesteps)
        drop_rates = drop_path_rates(drop_path_rate, sum(self.depths))
        self.stages = nn.ModuleList()
        in_dims = in_channels
        for index, (dims, depth) in enumerate(zip(self.embed_dims,
                                                  self.depths)):
            stem = dims // 2 if index == 0 else None
            patch_embed = SpikingPatchEmbed(in_dims, dims, stem_channels=stem,
                                            **common)
            blocks = [
                QKFormerBlock(dims, num_heads, self.stage_attentions[index],
                              attn_spike_cfg=attn_spike_cfg,
                              mlp_ratio=mlp_ratio,
                              attn_scale=attn_scale,
                              drop_path=drop_rates.pop(0), **common)
                for _ in range(depth)
            ]
            self.stages.append(QKFormerStage(patch_embed, blocks))
            in_dims = dims
        if with_stride32:
            self.stages.append(QKFormerStage(
                SpikingPatchEmbed(in_dims, in_dims, **common), []))
        self._register_load_state_dict_pre_hook(upgrade_legacy_keys)
        self.init_pruning(pruning)
        self.init_freezing(frozen_stages, norm_eval)

    @staticmethod
    def _check_layout(embed_dims: List[int], depths: List[int],
                      num_heads: int) -> None:
        if len(embed_dims) != 3 or len(depths) != 3:
            raise ValueError('embed_dims and depths need 3 values (stages '
                             f'1-3), got {embed_dims} and {depths}')
        if any(depth < 1 for depth in depths):
            raise ValueError(f'every stage needs at least one block, got '
                             f'depths={depths}')
        if embed_dims[0] % 2:
            raise ValueError(f'embed_dims[0] must be even (the stem has '
                             f'half of it), got {embed_dims[0]}')
        for dims in embed_dims:
            if dims % num_heads:
                raise ValueError(f'embed_dims {embed_dims} must be divisible '
                                 f'by num_heads ({num_heads})')

    @property
    def out_channels(self) -> List[int]:
        """Channels of the returned maps, in order."""
        channels = self.embed_dims + self.embed_dims[-1:]
        return [channels[i] for i in self.out_indices]

    @property
    def out_strides(self) -> List[int]:
        """Strides of the returned maps w.r.t. the input, in order."""
        return [self.stage_strides[i] for i in self.out_indices]

    def forward_stages(self) -> List[PrunableStage]:
        """Stages 1-3 (and the stride-32 stage), each a patch embedding and
        its blocks; every stage with blocks is prunable."""
        return [
            PrunableStage(index, f'stages.{index}.blocks', stage.blocks,
                          self.stage_strides[index], stage.patch_embed)
            for index, stage in enumerate(self.stages)
        ]

    def freezable_stages(self) -> Tuple[nn.Module, List[nn.Module]]:
        """The first patch embedding (with the stem), then the stages."""
        return self.stages[0].patch_embed, list(self.stages)

    def load_pretrained(self, checkpoint: str,
                        prefix: Optional[str]) -> None:
        """Load public weights (keys converted, every change reported)."""
        load_qkformer_checkpoint(self, checkpoint, prefix=prefix)
