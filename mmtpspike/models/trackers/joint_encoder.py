"""Joint (one-stream) spiking token encoder of template and search crops."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from mmtpspike.registry import register_model
from ..layers.sdtv3_blocks import (Downsampling, SpikeConvBlock,
                                   SpikeTransformerBlock)
from ..layers.spikformer_blocks import SpikformerBlock
from ..pruning import PruningConfig, PruningLayout, TokenPruner
from ..pruning.restore import TokenRecord
from .joint_block import JointBlock
from .joint_layout import JointContext, JointLayout

BLOCK_TYPES = ('sdtv3', 'spikformer')


def build_patch_embed(in_channels: int, patch_dims: Sequence[int],
                      conv_blocks: int, spike_cfg: dict, norm_cfg: dict,
                      mlp_ratio: int, num_timesteps: int) -> nn.Sequential:
    """SDT-V3's convolutional front: per entry of ``patch_dims`` a stride-2
    :class:`Downsampling` (7x7 on the events, 3x3 after) followed by
    ``conv_blocks`` :class:`SpikeConvBlock`; stride ``2 ** len(patch_dims)``.
    """
    common = dict(spike_cfg=spike_cfg, norm_cfg=norm_cfg,
                  num_timesteps=num_timesteps)
    layers: List[nn.Module] = []
    channels = in_channels
    for level, dims in enumerate(patch_dims):
        first = level == 0
        layers.append(Downsampling(channels, dims, 7 if first else 3, 2,
                                   encodes_input=first, **common))
        layers += [SpikeConvBlock(dims, mlp_ratio=mlp_ratio, **common)
                   for _ in range(conv_blocks)]
        channels = dims
    return nn.Sequential(*layers)


@register_model
class JointTokenEncoder(BaseModule):
    """Template and search tokens encoded together (OSTrack's one stream),
    with token early stopping of the search tokens.

    A spiking patch embedding (SDT-V3's downsampling + conv blocks, shared
    weights) maps the template ``[B, T, 2, St, St]`` and the search ``[B, T,
    2, Ss, Ss]`` event crops to token maps; their tokens are concatenated
    into one ``[R, C, 1, Nt + Ns]`` sequence (``R = T * B``,
    timestep-major, template first) that runs through ``depth`` transformer
    blocks, each wrapped by a :class:`JointBlock` (mixer per map, attention
    over the joint sequence). With ``pruning`` the blocks run through
    :class:`~mmtpspike.models.pruning.TokenPruner` with the template tokens
    protected: they never stop and do not count in the ratio, so block
    ``l`` runs every template token and ``ceil(keep_l * Ns)`` search tokens.

    Args:
        in_channels (int): Event frame channels (polarities). Default: 2.
        patch_dims (list[int]): Widths of the stride-2 patch levels; the
            last is the token width ``C``. Default: (16, 32, 64, 128).
        conv_blocks (int): Conv blocks per patch level. Default: 1.
        depth (int): Transformer blocks. Default: 4.
        block_type (str): ``'sdtv3'`` (SpikeTransformerBlock) or
            ``'spikformer'`` (SpikformerBlock). Default: 'sdtv3'.
        num_heads (int): Attention heads. Default: 8.
        mlp_ratio (int): MLP ratio of every block. Default: 4.
        num_timesteps (int): ``T``. Default: 1.
        spike_cfg (dict): Neuron config. Default: MultiSpike, D = 4.
        attn_spike_cfg (dict, optional): Spikformer's neuron after ``q k^T
            v``; None = ``spike_cfg``.
        norm_cfg (dict): Norm config. Default: BN.
        drop_path (float): Stochastic depth of the transformer blocks.
        pruning (dict, optional): A ``pruning`` dict (see
            :class:`~mmtpspike.models.pruning.PruningConfig`); None runs
            densely. A scorer with a ``bind`` method (e.g.
            ``CandidateEliminationScorer``) is bound to the token layout.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: int = 2,
                 patch_dims: Sequence[int] = (16, 32, 64, 128),
                 conv_blocks: int = 1,
                 depth: int = 4,
                 block_type: str = 'sdtv3',
                 num_heads: int = 8,
                 mlp_ratio: int = 4,
                 num_timesteps: int = 1,
                 spike_cfg: dict = dict(type='MultiSpike', max_spikes=4),
                 attn_spike_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 drop_path: float = 0.,
                 pruning: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if block_type not in BLOCK_TYPES:
            raise ValueError(f'block_type must be one of {BLOCK_TYPES}, got '
                             f'{block_type!r}')
        self.num_timesteps = num_timesteps
        self.spike_cfg = dict(spike_cfg)
        self.embed_dims = patch_dims[-1]
        self.stride = 2**len(patch_dims)
        self.context = JointContext()
        self.patch_embed = build_patch_embed(in_channels, patch_dims,
                                             conv_blocks, spike_cfg, norm_cfg,
                                             mlp_ratio, num_timesteps)
        self.blocks = nn.ModuleList([
            JointBlock(self._block(block_type, num_heads, mlp_ratio,
                                   spike_cfg, attn_spike_cfg or spike_cfg,
                                   norm_cfg, drop_path), self.context)
            for _ in range(depth)
        ])
        self.pruner = self._build_pruner(pruning)

    def _block(self, block_type: str, num_heads: int, mlp_ratio: int,
               spike_cfg: dict, attn_spike_cfg: dict, norm_cfg: dict,
               drop_path: float) -> nn.Module:
        if block_type == 'sdtv3':
            return SpikeTransformerBlock(
                self.embed_dims, spike_cfg, norm_cfg, num_heads=num_heads,
                mlp_ratio=mlp_ratio, drop_path=drop_path,
                num_timesteps=self.num_timesteps)
        return SpikformerBlock(self.embed_dims, num_heads, spike_cfg,
                               attn_spike_cfg, norm_cfg, mlp_ratio,
                               drop_path=drop_path,
                               num_timesteps=self.num_timesteps)

    def _build_pruner(self, pruning: Optional[dict]) -> Optional[TokenPruner]:
        if pruning is None:
            return None
        config = PruningConfig.from_dict(pruning)
        if config.skip_mixer or config.reduction != 'stop':
            raise ValueError(
                'JointTokenEncoder protects the template tokens: use '
                "pruning.reduction='stop' and skip_mixer=False")
        layout = PruningLayout(
            block_names=[f'blocks.{i}' for i in range(len(self.blocks))],
            blocks_per_stage=[len(self.blocks)],
            num_timesteps=self.num_timesteps,
            stateful_neurons=self.spike_cfg['type'] == 'LIF')
        pruner = TokenPruner(config, layout)
        if hasattr(pruner.scorer, 'bind'):
            pruner.scorer.bind(self.context)
        return pruner

    # ------------------------------------------------------------ pruning
    def set_keep_ratios(self, keep_ratios, **ratios) -> None:
        """Change retention ratios, see :meth:`TokenPruner.set_keep_ratios`.
        """
        if self.pruner is None:
            raise RuntimeError('this JointTokenEncoder was built with '
                               'pruning=None')
        self.pruner.set_keep_ratios(keep_ratios, **ratios)

    @property
    def token_records(self) -> List[TokenRecord]:
        """Per-block :class:`TokenRecord` of the last forward; maps are
        ``[R, 1, Nt + Ns]`` (split them with :meth:`search_kept_maps`)."""
        return [] if self.pruner is None else self.pruner.records

    def search_kept_maps(self) -> List[torch.Tensor]:
        """Per block, ``[R, Hs, Ws]`` bool: the search tokens that ran
        attention and MLP in the last forward (none without a pruner or
        before the first forward)."""
        records = self.token_records
        if not records:
            return []
        layout = self.context.require()
        return [layout.split(record.kept.flatten(1))[1]
                for record in records]

    # ------------------------------------------------------------ forward
    def to_timesteps(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, T, C, H, W]`` -> ``[T * B, C, H, W]`` (timestep-major)."""
        if x.dim() != 5 or x.shape[1] != self.num_timesteps:
            raise ValueError(f'expected [B, T={self.num_timesteps}, C, H, W] '
                             f'event frames, got {tuple(x.shape)}')
        return x.transpose(0, 1).flatten(0, 1)

    def merge_timesteps(self, x: torch.Tensor) -> torch.Tensor:
        """``[T * B, C, H, W]`` -> mean over T ``[B, C, H, W]``."""
        return x.view(self.num_timesteps, -1, *x.shape[1:]).mean(0)

    def forward(self, template: torch.Tensor, search: torch.Tensor
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Encode a template and a search crop together.

        Args:
            template (Tensor): ``[B, T, C_in, St, St]`` event frames.
            search (Tensor): ``[B, T, C_in, Ss, Ss]`` event frames.

        Returns:
            tuple[Tensor, Tensor]: template ``[B, C, Ht, Wt]`` and search
            ``[B, C, Hs, Ws]`` token maps, averaged over T.
        """
        template = self.patch_embed(self.to_timesteps(template))
        search = self.patch_embed(self.to_timesteps(search))
        layout = JointLayout(tuple(template.shape[-2:]),
                             tuple(search.shape[-2:]))
        self.context.layout = layout
        x = self.run_blocks(layout.join(template, search), layout)
        template, search = layout.split(x)
        return self.merge_timesteps(template), self.merge_timesteps(search)

    def run_blocks(self, x: torch.Tensor, layout: JointLayout) -> torch.Tensor:
        """The transformer blocks on ``[R, C, 1, N]``, through the pruner
        (template tokens protected) when there is one."""
        if self.pruner is None:
            for block in self.blocks:
                x = block(x)
            return x
        self.pruner.reset_records()
        rows = x.shape[0]
        valid = x.new_ones(rows, layout.num_tokens, dtype=torch.bool)
        active = torch.ones_like(valid)
        protected = layout.template_mask(rows, x.device)
        for index, block in enumerate(self.blocks):
            x, active = self.pruner(block, x, index, 0, valid, active,
                                    protected=protected)
        return x
