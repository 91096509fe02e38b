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
positions only (:class:`~mmtpspike.models.layers.PositionConv2d`).
"""
from collections import OrderedDict
from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from torch.utils.hooks import RemovableHandle

from mmtpspike.registry import TOKEN_RESTORERS, TOKEN_SCORERS
from .merging import merge_tokens, plan_merges, unmerge_updates
from .restore import (Selection, TokenRecord, gather_tokens,
                      scatter_tokens)
from .selection import keep_counts, mass_counts, select_tokens

MODES = ('per_block', 'cumulative')
SCORE_ON = ('input', 'mixed')
ATTENTION_CONTEXTS = ('kept', 'all')
REDUCTIONS = ('stop', 'merge')
TEMPORAL_SELECTIONS = ('shared', 'per_timestep')


def expand_keep_ratios(keep_ratios: Union[float, Sequence[float]],
                       blocks_per_stage: Sequence[int],
                       field: str = 'pruning.keep_ratios') -> List[float]:
    """Expand keep ratios to one value per transformer block.

    Args:
        keep_ratios (float | list[float]): one value for all blocks, one per
            transformer stage, or one per transformer block.
        blocks_per_stage (list[int]): transformer blocks of each stage.
        field (str): config field named in errors.

    Returns:
        list[float]: one ratio per block, each in ``(0, 1]``.

    Raises:
        ValueError: naming the field on a wrong length or value.
    """
    num_blocks = sum(blocks_per_stage)
    if isinstance(keep_ratios, (int, float)):
        ratios = [float(keep_ratios)] * num_blocks
    else:
        values = [float(r) for r in keep_ratios]
        if len(values) == num_blocks:
            ratios = values
        elif len(values) == len(blocks_per_stage):
            ratios = [r for r, n in zip(values, blocks_per_stage)
                      for _ in range(n)]
        else:
            raise ValueError(
                f'{field} has {len(values)} values; give one '
                f'float, {len(blocks_per_stage)} (one per transformer stage) '
                f'or {num_blocks} (one per transformer block)')
    for ratio in ratios:
        if not 0 < ratio <= 1:
            raise ValueError(
                f'{field} values must be in (0, 1], got {ratio}')
    return ratios


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


def _check_dynamic(dynamic: Optional[dict]) -> Optional[dict]:
    """Validate ``pruning.dynamic``; returns it with defaults filled in."""
    if dynamic is None:
        return None
    allowed = {'mass', 'min_ratio', 'max_ratio'}
    if not isinstance(dynamic, dict) or set(dynamic) - allowed:
        raise ValueError(f'pruning.dynamic must be a dict with keys '
                         f'{sorted(allowed)}, got {dynamic!r}')
    cfg = dict(dict(mass=0.9, min_ratio=0.25, max_ratio=1.0), **dynamic)
    if not 0 < cfg['mass'] <= 1:
        raise ValueError(f'pruning.dynamic.mass must be in (0, 1], got '
                         f'{cfg["mass"]}')
    if not 0 < cfg['min_ratio'] <= cfg['max_ratio'] <= 1:
        raise ValueError('pruning.dynamic needs 0 < min_ratio <= max_ratio '
                         f'<= 1, got {cfg}')
    return cfg


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

    Args:
        block_names (list[str]): Names of the pruned transformer blocks.
        blocks_per_stage (list[int]): Transformer blocks per stage.
        keep_ratios (float | list[float]): Retention ratio(s), see
            :func:`expand_keep_ratios`. 1.0 runs the block densely.
        scorer (dict): Token scorer config. Default: IRToP.
        mode (str): ``'per_block'`` (re-score all tokens in every block, as
            the paper's code) or ``'cumulative'`` (a token stopped in a block
            stays stopped for the rest of its stage). In both modes
            ``keep_ratios[l]`` is the share of an image's valid tokens that
            run block ``l``, so cumulative pruning with uniform ratios stops
            tokens only in a stage's first block; give decreasing ratios
            (e.g. ``[0.9, 0.8, 0.7, ...]``) for progressive stopping.
        temporal_selection (str): For ``T > 1``: ``'shared'`` (one selection
            from scores averaged over time, required by stateful neurons) or
            ``'per_timestep'``.
        restorer (dict): Restorer config. Default: CarryOverRestorer.
        score_on (str): Which tensor is scored: ``'input'`` (default), the
            block's input ``X^(l-1)`` as in the paper and the public code;
            ``'mixed'``, the residual stream after the SepConv mixer (what
            attention receives).
        attention_context (str): ``'kept'`` (default, paper) or ``'all'``.
        mlp_keep_ratios (float | list[float], optional): Retention of the
            MLP; None = the attention's.
        dynamic (dict, optional): ``dict(mass=0.9, min_ratio=0.25,
            max_ratio=1.0)`` for per-image retention; ``keep_ratios`` must
            then stay 1.0.
        reduction (str): ``'stop'`` (default, early stopping) or
            ``'merge'`` (the merging baseline; per-block mode, the default
            restorer, one retention for attention and MLP).
        skip_mixer (bool): In transformer blocks, stopped tokens also skip
            the mixer's pointwise convs (the depthwise conv runs on the full
            map, where they emit no spikes). Needs ``score_on='input'``.
            Default: False (the paper: the mixer runs on every token).
        conv_keep_ratios (float | list[float], optional): Early stopping in
            the convolutional blocks (``conv_block_names``) with its own
            retention, one value, one per conv stage or one per conv block:
            stopped positions skip the block's ``3 x 3`` channel MLP and
            keep their values after the mixer, which runs on the full map
            (its pointwise convs are ~5 % of a conv block's MACs; running
            them sparsely cost more in gathers than it saved, measured in
            docs/benchmarks/fast_config.md). None (default) runs the conv
            blocks densely.
        conv_block_names (list[str]): Names of the convolutional blocks
            that ``conv_keep_ratios`` can stop (given by the backbone).
        conv_blocks_per_stage (list[int]): Their number per conv stage.
        num_timesteps (int): ``T``.

    Tokens with equal scores are ranked by position, lowest token index
    first, so a selection never depends on the sort implementation.
    """

    def __init__(self,
                 block_names: Sequence[str],
                 blocks_per_stage: Sequence[int],
                 keep_ratios: Union[float, Sequence[float]] = 1.0,
                 scorer: Optional[dict] = None,
                 mode: str = 'per_block',
                 temporal_selection: str = 'shared',
                 restorer: Optional[dict] = None,
                 score_on: str = 'input',
                 attention_context: str = 'kept',
                 mlp_keep_ratios: Optional[Union[float,
                                                 Sequence[float]]] = None,
                 dynamic: Optional[dict] = None,
                 reduction: str = 'stop',
                 skip_mixer: bool = False,
                 conv_keep_ratios: Optional[Union[float,
                                                  Sequence[float]]] = None,
                 conv_block_names: Sequence[str] = (),
                 conv_blocks_per_stage: Sequence[int] = (),
                 num_timesteps: int = 1) -> None:
        super().__init__()
        for field, value, choices in (
                ('mode', mode, MODES),
                ('temporal_selection', temporal_selection,
                 TEMPORAL_SELECTIONS), ('score_on', score_on, SCORE_ON),
                ('attention_context', attention_context, ATTENTION_CONTEXTS),
                ('reduction', reduction, REDUCTIONS)):
            if value not in choices:
                raise ValueError(f'pruning.{field} must be one of {choices}, '
                                 f'got {value!r}')
        self.block_names = list(block_names)
        self.blocks_per_stage = list(blocks_per_stage)
        self.keep_ratios = expand_keep_ratios(keep_ratios,
                                              self.blocks_per_stage)
        self.mlp_keep_ratios = None if mlp_keep_ratios is None else \
            expand_keep_ratios(mlp_keep_ratios, self.blocks_per_stage,
                               'pruning.mlp_keep_ratios')
        self.dynamic = _check_dynamic(dynamic)
        if self.dynamic and (any(r < 1 for r in self.keep_ratios) or
                             mlp_keep_ratios is not None):
            raise ValueError('pruning.dynamic sets the retention per image; '
                             'leave keep_ratios at 1.0 and mlp_keep_ratios '
                             'unset')
        if reduction == 'merge' and (
                mode != 'per_block' or self.dynamic or
                mlp_keep_ratios is not None or
                (restorer or {}).get('type', 'CarryOverRestorer') !=
                'CarryOverRestorer'):
            raise ValueError(
                "pruning.reduction='merge' merges and unmerges tokens itself: "
                "use it with mode='per_block', the default restorer, no "
                'dynamic retention and no mlp_keep_ratios')
        if skip_mixer and score_on != 'input':
            raise ValueError(
                "pruning.skip_mixer=True lets stopped tokens skip the mixer, "
                "so they must be chosen before it: use score_on='input'")
        if skip_mixer and reduction == 'merge':
            raise ValueError("pruning.skip_mixer does not apply to "
                             "reduction='merge'")
        self.skip_mixer = skip_mixer
        self.conv_block_names = list(conv_block_names)
        self.conv_keep_ratios = None
        if conv_keep_ratios is not None:
            if not self.conv_block_names:
                raise ValueError(
                    'pruning.conv_keep_ratios is set, but this backbone has '
                    'no convolutional blocks that can stop tokens; remove it')
            if self.dynamic:
                raise ValueError('pruning.dynamic applies to the transformer '
                                 'blocks only; leave conv_keep_ratios unset')
            self.conv_keep_ratios = expand_keep_ratios(
                conv_keep_ratios, list(conv_blocks_per_stage),
                'pruning.conv_keep_ratios')
        self.reduction = reduction
        self.mode = mode
        self.temporal_selection = temporal_selection
        self.score_on = score_on
        self.attention_context = attention_context
        self.num_timesteps = num_timesteps
        self.scorer = _build(TOKEN_SCORERS, scorer or dict(type='IRToPScorer'),
                             'pruning.scorer')
        self.restorer = _build(TOKEN_RESTORERS,
                               restorer or dict(type='CarryOverRestorer'),
                               'pruning.restorer')
        self.records: List[TokenRecord] = []
        self._callbacks: OrderedDict = OrderedDict()

    def set_keep_ratios(self, keep_ratios: Union[float,
                                                 Sequence[float]]) -> None:
        """Change the retention ratios (e.g. from a schedule hook)."""
        self.keep_ratios = expand_keep_ratios(keep_ratios,
                                              self.blocks_per_stage)

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
        if self.num_timesteps > 1 and self.temporal_selection == 'shared':
            per_image = scores.view(self.num_timesteps, -1,
                                    scores.shape[1]).mean(0)
            scores = per_image.repeat(self.num_timesteps, 1)
        return scores

    def _select(self, scores: Optional[torch.Tensor], keep: float,
                valid: torch.Tensor, active: torch.Tensor,
                spatial_shape: Tuple[int, int]) -> Selection:
        """Keep ``ceil(keep * N_valid)`` (or the dynamic count of) the best
        valid, active tokens of each row. ``scores`` None (nothing to rank)
        keeps every candidate, padding excluded exactly as for ``keep < 1``,
        so the ratio is continuous at 1."""
        candidates = valid & active
        if scores is None:
            counts = candidates.sum(1)
            scores = candidates.to(torch.float32)
        elif self.dynamic:
            counts = mass_counts(scores, candidates, valid.sum(1),
                                 **self.dynamic)
        else:
            counts = torch.minimum(keep_counts(keep, valid.sum(1)),
                                   candidates.sum(1))
        index, slot_mask = select_tokens(scores, counts, candidates)
        return Selection(index, slot_mask, valid, spatial_shape)

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
        if self.attention_context == 'all':
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

    def _merge_block(self, block: nn.Module, x: torch.Tensor, keep: float,
                     valid: torch.Tensor, record: dict) -> torch.Tensor:
        """The merging baseline: merge, run the representatives, unmerge."""
        rows, channels, height, width = x.shape
        tokens = block.mix(x).flatten(2)
        plan = plan_merges(tokens, keep, valid, (height, width))
        merged = merge_tokens(tokens, plan)
        selection = plan.selection
        context = context_mask = None
        if self.attention_context == 'all':
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
                conv: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
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
        if self.reduction == 'merge' and not conv:
            return self._merge_block(block, x, keep, valid, record), active
        scores = None
        if self._needs_scores(keep, mlp_keep) and self.score_on == 'input':
            scores = self._scores(x, valid)
        sparse_mixer = self.skip_mixer and not conv
        if not sparse_mixer:
            x = block.mix(x)
            if self._needs_scores(keep, mlp_keep) and \
                    self.score_on == 'mixed':
                scores = self._scores(x, valid)
        selection = self._select(scores, keep, valid, active, (height, width))
        mixed = block.mix_at(x, selection) if sparse_mixer else None
        if conv:
            out = self.restorer(x.flatten(2), block.transform_at(x, selection),
                                selection)
            mlp_selection = None
        else:
            mlp_selection = None if mlp_keep == keep else self._select(
                scores, mlp_keep, valid, active, (height, width))
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
        if self.mode == 'cumulative':
            active = kept_map
        return out.view(rows, channels, height, width), active
