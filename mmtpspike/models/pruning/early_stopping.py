"""Block-level early stopping of low-score tokens (TP-Spikformer IR-Arc).

:class:`TokenPruner` wraps the transformer blocks of a backbone: every
image keeps the ``ceil(keep * N_valid)`` best-scoring tokens of the block's
input (as in the paper; ``score_on='mixed'`` scores after the mixer), the
spatial SepConv mixer runs on the full map, only the kept tokens go through
attention and MLP (gathered into a flat ``[R, C, K]`` tensor), and the
restorer puts them back. Nothing is deleted; stopped tokens keep their
values.
"""
from collections import OrderedDict
from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from torch.utils.hooks import RemovableHandle

from mmtpspike.registry import TOKEN_RESTORERS, TOKEN_SCORERS
from .restore import TokenRecord
from .selection import index_to_mask, keep_counts, select_tokens

MODES = ('per_block', 'cumulative')
SCORE_ON = ('input', 'mixed')
TEMPORAL_SELECTIONS = ('shared', 'per_timestep')


def expand_keep_ratios(keep_ratios: Union[float, Sequence[float]],
                       blocks_per_stage: Sequence[int]) -> List[float]:
    """Expand keep ratios to one value per transformer block.

    Args:
        keep_ratios (float | list[float]): one value for all blocks, one per
            transformer stage, or one per transformer block.
        blocks_per_stage (list[int]): transformer blocks of each stage.

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
                f'pruning.keep_ratios has {len(values)} values; give one '
                f'float, {len(blocks_per_stage)} (one per transformer stage) '
                f'or {num_blocks} (one per transformer block)')
    for ratio in ratios:
        if not 0 < ratio <= 1:
            raise ValueError(
                f'pruning.keep_ratios values must be in (0, 1], got {ratio}')
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


class TokenPruner(nn.Module):
    """Training-free token pruning with block-level early stopping.

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
                 num_timesteps: int = 1) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f'pruning.mode must be one of {MODES}, '
                             f'got {mode!r}')
        if temporal_selection not in TEMPORAL_SELECTIONS:
            raise ValueError('pruning.temporal_selection must be one of '
                             f'{TEMPORAL_SELECTIONS}, got '
                             f'{temporal_selection!r}')
        if score_on not in SCORE_ON:
            raise ValueError(f'pruning.score_on must be one of {SCORE_ON}, '
                             f'got {score_on!r}')
        self.score_on = score_on
        self.block_names = list(block_names)
        self.blocks_per_stage = list(blocks_per_stage)
        self.keep_ratios = expand_keep_ratios(keep_ratios,
                                              self.blocks_per_stage)
        self.mode = mode
        self.temporal_selection = temporal_selection
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

    def _select(self, x: torch.Tensor, keep: float, valid: torch.Tensor,
                active: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor,
                                               torch.Tensor]:
        """Score and select: returns ``index``, ``slot_mask`` ``[R, K]`` and
        the scores ``[R, N]``. At ``keep = 1`` every valid, active token is
        selected without scoring (padding is excluded exactly as for
        ``keep < 1``, so the ratio is continuous at 1)."""
        candidates = valid & active
        if keep >= 1.0:
            # every candidate runs: no scores needed, ascending positions
            scores = candidates.to(x.dtype)
            counts = candidates.sum(1)
        else:
            scores = self._scores(x, valid)
            counts = torch.minimum(keep_counts(keep, valid.sum(1)),
                                   candidates.sum(1))
        index, slot_mask = select_tokens(scores, counts, candidates)
        return index, slot_mask, scores

    def _scores(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Token scores ``[R, N]``, averaged over time for a shared
        selection."""
        scores = self.scorer(x, self.num_timesteps, valid)
        if self.num_timesteps > 1 and self.temporal_selection == 'shared':
            per_image = scores.view(self.num_timesteps, -1,
                                    scores.shape[1]).mean(0)
            scores = per_image.repeat(self.num_timesteps, 1)
        return scores

    def forward(self, block: nn.Module, x: torch.Tensor, block_index: int,
                stage_index: int, valid: torch.Tensor,
                active: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Run one transformer block with early stopping.

        Args:
            block (SpikeTransformerBlock): the block (``mix`` and
                ``transform_tokens``).
            x (Tensor): ``[R, C, H, W]`` block input, ``R = T * B``.
            block_index (int): Index among the pruned blocks.
            stage_index (int): Stage of the block.
            valid (Tensor): ``[R, N]`` bool, tokens inside the image.
            active (Tensor): ``[R, N]`` bool, tokens not stopped earlier in
                the stage (all True in ``per_block`` mode).

        Returns:
            tuple[Tensor, Tensor]: the full ``[R, C, H, W]`` output and the
            updated ``active`` map.
        """
        keep = self.keep_ratios[block_index]
        name = self.block_names[block_index]
        rows, channels, height, width = x.shape
        if keep >= 1.0 and bool((active & valid).all()):
            # no padding and nothing stopped: the dense block, bit for bit
            # what gather / scatter at K = N computes
            out = block(x)
            self._record(TokenRecord(name, stage_index, keep,
                                     kept=active.view(rows, height, width),
                                     valid=valid.view(rows, height, width)))
            return out, active
        if self.score_on == 'input':
            index, slot_mask, scores = self._select(x, keep, valid, active)
            x = block.mix(x)
        else:
            x = block.mix(x)
            index, slot_mask, scores = self._select(x, keep, valid, active)
        tokens = x.flatten(2)
        gather_index = index.clamp(max=tokens.shape[2] - 1)
        kept = tokens.gather(
            2, gather_index.unsqueeze(1).expand(-1, channels, -1))
        filler = None if bool(slot_mask.all()) else slot_mask
        kept = block.transform_tokens(kept, filler)
        out = self.restorer(tokens, kept, index, slot_mask)
        kept_map = index_to_mask(index, tokens.shape[2])
        self._record(TokenRecord(
            name, stage_index, keep,
            kept=kept_map.view(rows, height, width),
            valid=valid.view(rows, height, width),
            scores=None if keep >= 1.0 else scores.detach().view(
                rows, height, width)))
        if self.mode == 'cumulative':
            active = kept_map
        return out.view(rows, channels, height, width), active
