"""Block-level early stopping of low-score tokens (TP-Spikformer IR-Arc).

:class:`TokenPruner` wraps the transformer blocks of a backbone: every
image keeps the ``ceil(keep * N_valid)`` best-scoring tokens of the block's
input (as in the paper; ``score_on='mixed'`` scores after the mixer), the
spatial SepConv mixer runs on the full map, only the kept tokens go through
attention and MLP (gathered into a flat ``[R, C, K]`` tensor), and the
restorer puts them back. Nothing is deleted; stopped tokens keep their
values.

Beyond the paper, stopped tokens can also skip the mixer's pointwise convs
(``skip_mixer``), and the convolutional stages can stop tokens too
(``conv_keep_ratios``): their ``3 x 3`` channel MLP then runs at the kept
positions only (:class:`~mmtpspike.models.layers.PositionConv2d`), or, with
``conv_tile``, on whole kept tiles of tokens as dense convolutions
(:mod:`~mmtpspike.models.pruning.tiles`).
"""
from collections import OrderedDict
from typing import Callable, List, Optional, Tuple, Union

import torch
import torch.nn as nn
from torch.utils.hooks import RemovableHandle

from mmtpspike.registry import TOKEN_RESTORERS, TOKEN_SCORERS
from .config import PruningConfig, PruningLayout, Ratios
from .merging import (MergePlan, merge_tokens, plan_merges, repeat_plan,
                      unmerge_updates)
from .restore import (CarryOverRestorer, Selection, TokenRecord,
                      gather_tokens, scatter_tokens)
from .selection import (keep_counts, mass_counts, protect_tokens,
                        select_tokens)
from .tiles import TileSelection, pool_tile_scores, tile_any, tile_grid


def _build(registry, cfg: dict, field: str) -> nn.Module:
    """Build from a registry, naming the config field on an unknown type.

    The class is looked up directly (not through ``registry.build``), so the
    build does not depend on the config's ``default_scope``.
    """
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise ValueError(f'{field} must be a dict with a "type" key, '
                         f'got {cfg!r}')
    args = dict(cfg)
    cls = registry.get(args.pop('type'))
    if cls is None:
        raise KeyError(f'{field}.type={cfg["type"]!r} is unknown; available: '
                       f'{sorted(registry.module_dict)}')
    return cls(**args)


class TokenPruner(nn.Module):
    """Training-free token pruning with block-level early stopping.

    In each block every image keeps its best-scoring tokens; only those go
    through attention and MLP, the others stop early and keep their values
    (or what the restorer gives them). Options beyond the paper, each off by
    default:

    * ``attention_context='all'``: stopped tokens still give keys and values
      to the linear attention's ``k^T v`` (queries, projection and MLP run
      for kept tokens only), so kept tokens see the whole image.
    * ``mlp_keep_ratios``: the MLP keeps its own share of tokens (chosen by
      the same scores), e.g. more than attention.
    * ``dynamic``: per-image retention, the fewest tokens holding a share of
      the score mass (see :func:`mass_counts`) instead of fixed ratios.
    * ``reduction='merge'``: a token-merging baseline at the same counts
      (ToMe-style bipartite merge / unmerge, see
      :mod:`~mmtpspike.models.pruning.merging`) instead of early stopping.

    When the images of a batch keep different numbers of tokens (different
    valid areas), shorter rows are padded with filler slots: they are masked
    out of every other token's attention and dropped by the restorer, but in
    train mode they take part in the BN statistics of attention and MLP (a
    small bias; none at test time, where BN uses running statistics).

    Tokens with equal scores are ranked by position, lowest token index
    first, so a selection never depends on the sort implementation.

    A caller may pass *protected* tokens to :meth:`forward` (e.g. a
    tracker's template tokens): they always run the block and do not count
    in the ratio, which applies to the other valid tokens.

    Args:
        config (PruningConfig | dict): The options, see
            :class:`~mmtpspike.models.pruning.PruningConfig`.
        layout (PruningLayout): The backbone's prunable blocks.
    """

    def __init__(self, config: Union[PruningConfig, dict],
                 layout: PruningLayout) -> None:
        super().__init__()
        self.layout = layout
        self._apply_config(PruningConfig.from_dict(config))
        self.scorer = _build(TOKEN_SCORERS,
                             self.config.scorer or dict(type='IRToPScorer'),
                             'pruning.scorer')
        self.restorer = _build(
            TOKEN_RESTORERS,
            self.config.restorer or dict(type='CarryOverRestorer'),
            'pruning.restorer')
        self.records: List[TokenRecord] = []
        self._callbacks: OrderedDict = OrderedDict()

    def _apply_config(self, config: PruningConfig) -> None:
        """Resolve ``config`` against the layout (every check) and use it."""
        self.keep_ratios, self.mlp_keep_ratios, self.conv_keep_ratios = \
            config.block_ratios(self.layout)
        self.config = config

    def set_keep_ratios(self, keep_ratios: Ratios, **ratios) -> None:
        """Change the retention ratios (e.g. from a schedule hook).

        The new ratios pass every check of a new config: with ``dynamic``
        retention a ratio below 1 is an error, never silently ignored.

        Args:
            keep_ratios (float | list[float]): New ``keep_ratios``.
            **ratios: New ``mlp_keep_ratios`` and / or ``conv_keep_ratios``
                (None unsets them); those not given stay as they are.
        """
        self._apply_config(self.config.replace_ratios(
            keep_ratios=keep_ratios, **ratios))

    @property
    def block_names(self) -> List[str]:
        """Names of the pruned transformer blocks."""
        return list(self.layout.block_names)

    @property
    def blocks_per_stage(self) -> List[int]:
        """Transformer blocks per prunable stage."""
        return list(self.layout.blocks_per_stage)

    @property
    def conv_block_names(self) -> List[str]:
        """Names of the conv blocks ``conv_keep_ratios`` can stop."""
        return list(self.layout.conv_block_names)

    @property
    def num_timesteps(self) -> int:
        """``T``."""
        return self.layout.num_timesteps

    @property
    def dynamic(self) -> Optional[dict]:
        """``pruning.dynamic`` with its defaults, or None."""
        return self.config.dynamic

    @property
    def skip_mixer(self) -> bool:
        """``pruning.skip_mixer``."""
        return self.config.skip_mixer

    def register_record_hook(
            self, hook: Callable[[TokenRecord], None]) -> RemovableHandle:
        """Call ``hook(record)`` after every transformer block.

        Returns:
            RemovableHandle: ``handle.remove()`` unregisters the hook.
        """
        handle = RemovableHandle(self._callbacks)
        self._callbacks[handle.id] = hook
        return handle

    def reset_records(self) -> None:
        """Forget the records of the previous forward."""
        self.records = []

    def _record(self, record: TokenRecord) -> None:
        self.records.append(record)
        for hook in self._callbacks.values():
            hook(record)

    def _scores(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Token scores ``[R, N]``, averaged over time for a shared
        selection."""
        scores = self.scorer(x, self.num_timesteps, valid)
        if self.num_timesteps > 1 and \
                self.config.temporal_selection == 'shared':
            per_image = scores.view(self.num_timesteps, -1,
                                    scores.shape[1]).mean(0)
            scores = per_image.repeat(self.num_timesteps, 1)
        return scores

    def _select(self, scores: Optional[torch.Tensor], keep: float,
                valid: torch.Tensor, active: torch.Tensor,
                spatial_shape: Tuple[int, int],
                protected: Optional[torch.Tensor] = None) -> Selection:
        """Keep ``ceil(keep * N_valid)`` (or the dynamic count of) the best
        valid, active tokens of each row. ``scores`` None (nothing to rank)
        keeps every candidate, padding excluded exactly as for ``keep < 1``,
        so the ratio is continuous at 1. ``protected`` tokens (``[R, N]``
        bool) are always kept and not counted: the ratio applies to the
        others."""
        candidates = valid & active
        if scores is None:
            counts = candidates.sum(1)
            scores = candidates.to(torch.float32)
        else:
            ranked, ranked_valid = candidates, valid
            if protected is not None:
                ranked, ranked_valid = candidates & ~protected, \
                    valid & ~protected
            if self.dynamic:
                counts = mass_counts(scores, ranked, ranked_valid.sum(1),
                                     **self.dynamic)
            else:
                counts = keep_counts(keep, ranked_valid.sum(1))
            counts = torch.minimum(counts, ranked.sum(1))
            if protected is not None:
                scores, counts = protect_tokens(scores, counts, candidates,
                                                protected)
        index, slot_mask = select_tokens(scores, counts, candidates)
        return Selection(index, slot_mask, valid, spatial_shape)

    def _select_tiles(self, scores: Optional[torch.Tensor], keep: float,
                      valid: torch.Tensor, active: torch.Tensor,
                      spatial_shape: Tuple[int, int]) -> TileSelection:
        """Keep ``ceil(keep * n_valid_tiles)`` tiles of each row, ranked by
        the mean score of their valid tokens (``pruning.conv_tile``)."""
        tile = self.config.conv_tile
        tile_scores = None if scores is None else pool_tile_scores(
            scores, valid, spatial_shape, tile)[0]
        tiles = self._select(tile_scores, keep,
                             tile_any(valid, spatial_shape, tile),
                             tile_any(valid & active, spatial_shape, tile),
                             tile_grid(spatial_shape, tile))
        return TileSelection(tiles, tile, valid, spatial_shape)

    def _restore_map(self, x: torch.Tensor, out: torch.Tensor,
                     selection: TileSelection) -> torch.Tensor:
        """Hand a tile block's carried-over output map ``[R, C, H, W]`` to
        a restorer that treats stopped tokens otherwise."""
        if isinstance(self.restorer, CarryOverRestorer):
            return out
        kept = selection.kept_map()
        index, slot_mask = select_tokens(kept.to(x.dtype), kept.sum(1), kept)
        tokens = Selection(index, slot_mask, selection.valid,
                           selection.spatial_shape)
        return self.restorer(x.flatten(2),
                             gather_tokens(out.flatten(2), tokens), tokens)

    def _run_conv_block(self, block: nn.Module, x: torch.Tensor,
                        scores: Optional[torch.Tensor], keep: float,
                        valid: torch.Tensor, active: torch.Tensor
                        ) -> Tuple[Union[Selection, TileSelection],
                                   torch.Tensor]:
        """A conv block's channel MLP on its kept tokens (or tiles) of the
        mixed map ``x: [R, C, H, W]``: the selection and the ``[R, C, N]``
        or ``[R, C, H, W]`` output."""
        spatial_shape = tuple(x.shape[2:])
        if self.config.conv_tile:
            selection = self._select_tiles(scores, keep, valid, active,
                                           spatial_shape)
            out = block.transform_tiles(x, selection)
            return selection, self._restore_map(x, out, selection)
        selection = self._select(scores, keep, valid, active, spatial_shape)
        return selection, self.restorer(
            x.flatten(2), block.transform_at(x, selection), selection)

    def _needs_scores(self, keep: float, mlp_keep: float) -> bool:
        return bool(self.dynamic) or keep < 1.0 or mlp_keep < 1.0

    def _run_tokens(self,
                    block: nn.Module,
                    tokens: torch.Tensor,
                    selection: Selection,
                    mlp_selection: Optional[Selection],
                    mixed: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Attention (+ MLP) on the selected tokens of ``[R, C, N]``.

        ``mixed``: ``[R, C, K]`` selected tokens after the mixer when only
        they ran it (``skip_mixer``; ``tokens`` is then the block input).
        """
        kept = gather_tokens(tokens, selection) if mixed is None else mixed
        context = context_mask = None
        if self.config.attention_context == 'all':
            context = tokens if mixed is None else scatter_tokens(
                tokens, mixed, selection)
            context_mask = selection.valid
        filler = selection.slot_mask if selection.has_fillers else None
        if mlp_selection is None:
            kept = block.transform_tokens(kept, filler, context, context_mask)
            return self.restorer(tokens, kept, selection)
        kept = block.attention_residual(kept, filler, context, context_mask)
        tokens = self.restorer(tokens, kept, selection)
        kept = block.mlp_residual(gather_tokens(tokens, mlp_selection))
        return self.restorer(tokens, kept, mlp_selection)

    def _merge_plan(self, tokens: torch.Tensor, keep: float,
                    valid: torch.Tensor,
                    spatial_shape: Tuple[int, int]) -> MergePlan:
        """Merge plan of ``tokens: [R, C, N]``: one per image, matched on its
        time-averaged tokens, for a shared temporal selection; one per row
        otherwise."""
        steps = self.num_timesteps
        if steps == 1 or self.config.temporal_selection == 'per_timestep':
            return plan_merges(tokens, keep, valid, spatial_shape)
        per_image = tokens.view(steps, -1, *tokens.shape[1:]).mean(0)
        plan = plan_merges(per_image, keep, valid[:per_image.shape[0]],
                           spatial_shape)
        return repeat_plan(plan, steps)

    def _merge_block(self, block: nn.Module, x: torch.Tensor, keep: float,
                     valid: torch.Tensor, record: dict) -> torch.Tensor:
        """The merging baseline: merge, run the representatives, unmerge."""
        rows, channels, height, width = x.shape
        tokens = block.mix(x).flatten(2)
        plan = self._merge_plan(tokens, keep, valid, (height, width))
        merged = merge_tokens(tokens, plan)
        selection = plan.selection
        context = context_mask = None
        if self.config.attention_context == 'all':
            context, context_mask = tokens, valid
        processed = block.transform_tokens(
            gather_tokens(merged, selection),
            selection.slot_mask if selection.has_fillers else None, context,
            context_mask)
        out = unmerge_updates(tokens, merged, processed, plan)
        self._record(TokenRecord(
            kept=selection.kept_map().view(rows, height, width), **record))
        return out.view(rows, channels, height, width)

    def forward(self,
                block: nn.Module,
                x: torch.Tensor,
                block_index: int,
                stage_index: int,
                valid: torch.Tensor,
                active: torch.Tensor,
                conv: bool = False,
                protected: Optional[torch.Tensor] = None
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Run one block with early stopping.

        Args:
            block (nn.Module): a transformer block (``mix``, ``mix_at``,
                ``attention_residual``, ``mlp_residual``) or, with ``conv``,
                a convolutional block (``mix``, ``transform_at``).
            x (Tensor): ``[R, C, H, W]`` block input, ``R = T * B``.
            block_index (int): Index among the pruned transformer blocks
                (among the conv blocks with ``conv``).
            stage_index (int): Stage of the block.
            valid (Tensor): ``[R, N]`` bool, tokens inside the image.
            active (Tensor): ``[R, N]`` bool, tokens not stopped earlier in
                the stage (all True in ``per_block`` mode).
            conv (bool): ``block`` is a convolutional block, run with
                ``conv_keep_ratios``.
            protected (Tensor, optional): ``[R, N]`` bool, tokens that are
                never stopped (e.g. a tracker's template tokens) and not
                counted in the ratio: a row keeps its protected candidates
                plus ``ceil(keep * N_unprotected_valid)`` of the others,
                ranked by the scores. Not with ``reduction='merge'``.

        Returns:
            tuple[Tensor, Tensor]: the full ``[R, C, H, W]`` output and the
            updated ``active`` map.
        """
        if conv:
            keep = mlp_keep = self.conv_keep_ratios[block_index]
            name = self.conv_block_names[block_index]
        else:
            keep = self.keep_ratios[block_index]
            mlp_keep = keep if self.mlp_keep_ratios is None else \
                self.mlp_keep_ratios[block_index]
            name = self.block_names[block_index]
        rows, channels, height, width = x.shape
        record = dict(block_name=name, stage_index=stage_index,
                      keep_ratio=keep, valid=valid.view(rows, height, width))
        if not self._needs_scores(keep, mlp_keep) and \
                bool((active & valid).all()):
            # no padding and nothing stopped: the dense block, bit for bit
            # what gather / scatter at K = N computes
            self._record(TokenRecord(
                kept=active.view(rows, height, width), **record))
            return block(x), active
        if self.config.reduction == 'merge' and not conv:
            if protected is not None:
                raise ValueError("protected tokens need reduction='stop'; "
                                 "reduction='merge' cannot protect tokens")
            return self._merge_block(block, x, keep, valid, record), active
        scores = None
        if self._needs_scores(keep, mlp_keep) and \
                self.config.score_on == 'input':
            scores = self._scores(x, valid)
        sparse_mixer = self.skip_mixer and not conv
        if not sparse_mixer:
            x = block.mix(x)
            if self._needs_scores(keep, mlp_keep) and \
                    self.config.score_on == 'mixed':
                scores = self._scores(x, valid)
        mlp_selection = None
        if conv:
            selection, out = self._run_conv_block(block, x, scores, keep,
                                                  valid, active)
        else:
            selection = self._select(scores, keep, valid, active,
                                     (height, width), protected)
            mixed = block.mix_at(x, selection) if sparse_mixer else None
            mlp_selection = None if mlp_keep == keep else self._select(
                scores, mlp_keep, valid, active, (height, width), protected)
            out = self._run_tokens(block, x.flatten(2), selection,
                                   mlp_selection, mixed)
        kept_map = selection.kept_map()
        self._record(TokenRecord(
            kept=kept_map.view(rows, height, width),
            scores=None if scores is None else scores.detach().view(
                rows, height, width),
            mlp_kept=None if mlp_selection is None else
            mlp_selection.kept_map().view(rows, height, width),
            **record))
        if self.config.mode == 'cumulative':
            active = kept_map
        return out.view(rows, channels, height, width), active
