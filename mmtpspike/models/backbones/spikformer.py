"""Spikformer (Zhou et al., ICLR 2023) backbone with token pruning."""
from typing import List, Optional, Tuple

import torch.nn as nn

from mmtpspike.registry import register_model
from ..layers.drop_path import drop_path_rates
from ..layers.spikformer_blocks import (DEFAULT_ATTN_SPIKE_CFG,
                                        DEFAULT_SPIKE_CFG, SpikformerBlock,
                                        SpikingPatchSplitting)
from .prunable import PrunableBackbone, PrunableStage
from .spikformer_checkpoint import load_spikformer_checkpoint


@register_model
class Spikformer(PrunableBackbone):
    """Spikformer for dense prediction: one stride-16 token map.

    Layout: the spiking patch splitting (SPS: four conv-BN-LIF-max-pool
    steps and the RPE shortcut, stride 16) and ``depth`` encoder blocks
    (spiking self-attention without softmax + spiking MLP, SEW residuals).
    The output is the mean over ``T`` of the last block's map; chain
    ``SimplePyramidAdapter`` before an FPN for multi-scale heads.

    With ``pruning`` set, every encoder block runs TP-Spikformer's token
    early stopping (see :class:`~mmtpspike.models.pruning.TokenPruner`); the
    output is still the full ``[B, C, H / 16, W / 16]`` map. SSA sums
    ``k^T v`` over tokens, so filler slots are kept out of it, and with
    ``pruning.attention_context='all'`` the stopped tokens still give keys
    and values. Padding: call :meth:`set_img_shapes` (the
    ``PaddingAwarePruningHook`` does it for runners); with ``mask_padding``
    the padded tokens then never enter a block, so ``keep = 1`` equals the
    dense backbone.

    Args:
        arch (str): ``'8-384'``, ``'8-512'`` or ``'8-768'`` (blocks - width,
            the published ImageNet sizes, 8 heads). Default: '8-384'.
        embed_dims (int, optional): Width ``D``; overrides the arch's.
        depth (int, optional): Encoder blocks; overrides the arch's.
        num_heads (int, optional): Attention heads; overrides the arch's.
        in_channels (int): Image channels. Default: 3.
        mlp_ratio (float): MLP hidden width / ``D``. Default: 4.
        num_timesteps (int): ``T``. Images ``[B, C, H, W]`` are repeated T
            times; event frames come as ``[B, T, C, H, W]``. Default: 4.
        spike_cfg (dict): Neuron of every layer but the attention output:
            LIF, tau 2, threshold 1 (the public code's).
        attn_spike_cfg (dict): Neuron after ``q k^T v``: LIF, tau 2,
            threshold 0.5 (the public code's).
        attn_scale (float): Scale of ``q k^T v``. Default: 0.125.
        norm_cfg (dict): 2-D norm config. Default: ``dict(type='BN')``.
        drop_path_rate (float): Stochastic depth in [0, 1), linear over the
            blocks, one decision per image (the public code never applies
            it). Default: 0.
        frozen_stages (int): -1 freezes nothing, ``n`` in [0, depth] the
            patch embedding and the first ``n`` blocks. Default: -1.
        norm_eval (bool): Keep norm layers in eval mode while training.
        pruning (dict, optional): Token pruning, e.g.
            ``dict(keep_ratios=0.78, scorer=dict(type='IRToPScorer'))``.
            None = dense.
        mask_padding (bool): Keep padded tokens (known from
            :meth:`set_img_shapes`) out of the blocks. Default: True.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=...)``
            loads a public Spikformer ImageNet checkpoint (keys converted and
            reported, classifier dropped; a missing file is an error).

    Example:
        >>> import torch
        >>> from mmtpspike.models.backbones import Spikformer
        >>> model = Spikformer(embed_dims=32, depth=2, num_heads=4,
        ...                    num_timesteps=2,
        ...                    pruning=dict(keep_ratios=0.78)).eval()
        >>> outs = model(torch.rand(1, 3, 72, 100))
        >>> [tuple(o.shape) for o in outs]
        [(1, 32, 5, 7)]
        >>> model.out_channels, model.out_strides
        ([32], [16])
    """

    pretrained_weights = ('public Spikformer ImageNet weights (e.g. the 8-384 '
                          '.pth.tar)')

    arch_settings = {
        '8-384': dict(embed_dims=384, depth=8, num_heads=8),
        '8-512': dict(embed_dims=512, depth=8, num_heads=8),
        '8-768': dict(embed_dims=768, depth=8, num_heads=8),
    }

    def __init__(self,
                 arch: str = '8-384',
                 embed_dims: Optional[int] = None,
                 depth: Optional[int] = None,
                 num_heads: Optional[int] = None,
                 in_channels: int = 3,
                 mlp_ratio: float = 4.,
                 num_timesteps: int = 4,
                 spike_cfg: dict = DEFAULT_SPIKE_CFG,
                 attn_spike_cfg: dict = DEFAULT_ATTN_SPIKE_CFG,
                 attn_scale: float = 0.125,
                 norm_cfg: dict = dict(type='BN'),
                 drop_path_rate: float = 0.,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 pruning: Optional[dict] = None,
                 mask_padding: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(num_timesteps, spike_cfg, mask_padding, init_cfg)
        if arch not in self.arch_settings:
            raise KeyError(f'arch must be one of {sorted(self.arch_settings)}'
                           f', got {arch!r}; or give embed_dims / depth / '
                           f'num_heads with one of them')
        settings = dict(self.arch_settings[arch])
        for key, value in (('embed_dims', embed_dims), ('depth', depth),
                           ('num_heads', num_heads)):
            if value is not None:
                settings[key] = value
        if settings['depth'] < 1:
            raise ValueError(f'depth must be >= 1, got {settings["depth"]}')
        self.embed_dims = settings['embed_dims']
        self.depth = settings['depth']
        self.num_heads = settings['num_heads']

        self.patch_embed = SpikingPatchSplitting(
            in_channels, self.embed_dims, spike_cfg, norm_cfg, num_timesteps)
        drop_rates = drop_path_rates(drop_path_rate, self.depth)
        self.blocks = nn.ModuleList(
            SpikformerBlock(self.embed_dims, self.num_heads, spike_cfg,
                            attn_spike_cfg, norm_cfg, mlp_ratio, attn_scale,
                            rate, num_timesteps) for rate in drop_rates)
        self.init_pruning(pruning)
        self.init_freezing(frozen_stages, norm_eval)

    @property
    def out_channels(self) -> List[int]:
        """Channels of the returned map."""
        return [self.embed_dims]

    @property
    def out_strides(self) -> List[int]:
        """Stride of the returned map w.r.t. the input."""
        return [self.patch_embed.stride]

    def forward_stages(self) -> List[PrunableStage]:
        """One stage: the patch embedding and every encoder block, at
        stride 16."""
        return [PrunableStage(0, 'blocks', self.blocks,
                              self.patch_embed.stride, self.patch_embed)]

    def freezable_stages(self) -> Tuple[nn.Module, nn.ModuleList]:
        """The patch embedding, then the blocks."""
        return self.patch_embed, self.blocks

    def load_pretrained(self, checkpoint: str,
                        prefix: Optional[str]) -> None:
        """Load public weights (keys converted, every change reported)."""
        load_spikformer_checkpoint(self, checkpoint, prefix=prefix)
