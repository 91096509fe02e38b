"""Spike-driven Transformer V1 backbone with token pruning."""
from typing import List, Optional, Tuple

import torch.nn as nn

from mmtpspike.registry import register_model
from ..layers.sdtv1_blocks import (SpikeDrivenBlock, SpikingPatchEmbed,
                                   with_threshold)
from .prunable import PrunableBackbone, PrunableStage
from .sdtv1_checkpoint import load_sdtv1_checkpoint


@register_model
class SDTV1(PrunableBackbone):
    """Spike-driven Transformer (V1, Yao et al., NeurIPS 2023) for dense
    prediction.

    Layout: a spiking patch splitting module (four 3x3 conv / BN / LIF /
    max-pool layers, stride 16, with a membrane-shortcut position embedding)
    and ``depth`` encoder blocks (spike-driven self-attention and MLP, both
    with membrane shortcuts) on the stride-16 token map. The output is that
    one map, averaged over the ``T`` timesteps; a neck such as
    ``SimplePyramidAdapter`` turns it into a pyramid.

    With ``pruning`` set, every encoder block runs TP-Spikformer's token
    early stopping (see :class:`~mmtpspike.models.pruning.TokenPruner`); the
    output is still the full map. SDSA sums key-value products over tokens:
    with ``pruning.attention_context='all'`` stopped tokens still feed that
    sum, with ``'kept'`` (default) only kept ones do.

    Padding: call :meth:`set_img_shapes` (the ``PaddingAwarePruningHook``
    does it for runners) before a forward. With ``mask_padding`` (default)
    padded tokens then never enter an encoder block and keep their values.
    Any input size works: each max-pool rounds up, so the map is ``ceil(H /
    16) x ceil(W / 16)`` (exactly the public code's for multiples of 16).

    Args:
        arch (str): ``'8-384'``, ``'8-512'`` or ``'8-768'`` (``depth -
            embed_dims``; 16.81M / 29.68M / 66.34M parameters with the
            ImageNet head). Ignored when ``embed_dims`` is given.
            Default: '8-384'.
        embed_dims (int, optional): Token channels (divisible by 8).
        depth (int, optional): Encoder blocks; required with
            ``embed_dims``, else overrides the arch's 8 (e.g. 6 with
            ``'8-512'`` for the published 6-512).
        in_channels (int): Image channels. Default: 3.
        mlp_ratio (float): MLP hidden ratio. Default: 4.
        num_timesteps (int): ``T``. Images ``[B, C, H, W]`` are repeated T
            times; event frames come as ``[B, T, C, H, W]``. Default: 4.
        spike_cfg (dict): Neuron config. Default: multi-step LIF, tau 2,
            threshold 1 (the public neurons).
        kv_threshold (float): LIF threshold of the neuron after SDSA's
            key-value sum. Default: 0.5 (public code).
        norm_cfg (dict): Norm config. Default: ``dict(type='BN')``.
        frozen_stages (int): -1 freezes nothing, ``n`` in [0, depth] the
            patch embedding and the first ``n`` blocks. Default: -1.
        norm_eval (bool): Keep norm layers in eval mode while training.
        pruning (dict, optional): Token pruning, e.g.
            ``dict(keep_ratios=0.78, scorer=dict(type='IRToPScorer'))``.
            None = dense.
        mask_padding (bool): Keep padded tokens (known from
            :meth:`set_img_shapes`) out of the blocks. Default: True.
        init_cfg (dict, optional): ``dict(type='Pretrained',
            checkpoint=...)`` loads a public Spike-driven Transformer
            ImageNet checkpoint (keys converted and reported; a missing file
            is an error). None keeps PyTorch's default initialisation.

    Example:
        >>> import torch
        >>> from mmtpspike.models.backbones import SDTV1
        >>> model = SDTV1(embed_dims=32, depth=2, num_timesteps=2,
        ...               pruning=dict(keep_ratios=0.78)).eval()
        >>> outs = model(torch.rand(1, 3, 64, 100))
        >>> [tuple(o.shape) for o in outs], model.out_strides
        ([(1, 32, 4, 7)], [16])
    """

    pretrained_weights = 'public Spike-driven Transformer ImageNet weights'

    arch_settings = {
        '8-384': dict(embed_dims=384, depth=8),
        '8-512': dict(embed_dims=512, depth=8),
        '8-768': dict(embed_dims=768, depth=8),
    }

    def __init__(self,
                 arch: str = '8-384',
                 embed_dims: Optional[int] = None,
                 depth: Optional[int] = None,
                 in_channels: int = 3,
                 mlp_ratio: float = 4,
                 num_timesteps: int = 4,
                 spike_cfg: dict = dict(type='LIF', tau=2.0, v_threshold=1.0),
                 kv_threshold: float = 0.5,
                 norm_cfg: dict = dict(type='BN'),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 pruning: Optional[dict] = None,
                 mask_padding: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(num_timesteps, spike_cfg, mask_padding, init_cfg)
        if embed_dims is None:
            if arch not in self.arch_settings:
                raise KeyError(f'arch must be one of '
                               f'{sorted(self.arch_settings)}, got {arch!r}; '
                               'or give embed_dims and depth')
            embed_dims = self.arch_settings[arch]['embed_dims']
            depth = self.arch_settings[arch]['depth'] if depth is None \
                else depth
        elif depth is None:
            raise ValueError('depth is required with embed_dims, e.g. '
                             'SDTV1(embed_dims=384, depth=8)')
        if depth < 1:
            raise ValueError(f'depth must be >= 1, got {depth}')
        self.embed_dims = embed_dims
        self.depth = depth
        common = dict(spike_cfg=spike_cfg, norm_cfg=norm_cfg,
                      num_timesteps=num_timesteps)
        self.patch_embed = SpikingPatchEmbed(in_channels, embed_dims,
                                             **common)
        kv_spike_cfg = with_threshold(spike_cfg, kv_threshold)
        self.blocks = nn.ModuleList([
            SpikeDrivenBlock(embed_dims, kv_spike_cfg=kv_spike_cfg,
                             mlp_ratio=mlp_ratio, **common)
            for _ in range(depth)
        ])
        self.init_pruning(pruning)
        self.init_freezing(frozen_stages, norm_eval)

    @property
    def out_channels(self) -> List[int]:
        """Channels of the returned map: ``[embed_dims]``."""
        return [self.embed_dims]

    @property
    def out_strides(self) -> List[int]:
        """Stride of the returned map w.r.t. the input: ``[16]``."""
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
        load_sdtv1_checkpoint(self, checkpoint, prefix=prefix)
