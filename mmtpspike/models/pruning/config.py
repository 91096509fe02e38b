"""The validated pruning configuration: a backbone's ``pruning`` dict.

:class:`PruningConfig` is the one place that knows the pruning options and
their rules. A backbone builds it from its ``pruning`` dict
(:meth:`PruningConfig.from_dict`: unknown keys are errors),
:class:`~mmtpspike.models.pruning.TokenPruner` resolves it against the
backbone's blocks (:meth:`PruningConfig.block_ratios`), and a retention
change (``set_keep_ratios``, e.g. from ``RetentionScheduleHook``) goes
through :meth:`PruningConfig.replace_ratios`, so every change passes the
same checks as the first build.
"""
import dataclasses
from dataclasses import dataclass
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

Ratios = Union[float, Sequence[float]]

MODES = ('per_block', 'cumulative')
SCORE_ON = ('input', 'mixed')
ATTENTION_CONTEXTS = ('kept', 'all')
REDUCTIONS = ('stop', 'merge')
TEMPORAL_SELECTIONS = ('shared', 'per_timestep')
DYNAMIC_DEFAULTS = dict(mass=0.9, min_ratio=0.25, max_ratio=1.0)


def expand_keep_ratios(keep_ratios: Ratios,
                       blocks_per_stage: Sequence[int],
                       field: str = 'pruning.keep_ratios') -> List[float]:
    """Expand keep ratios to one value per block.

    Args:
        keep_ratios (float | list[float]): one value for all blocks, one per
            stage, or one per block.
        blocks_per_stage (list[int]): blocks of each stage.
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
                f'float, {len(blocks_per_stage)} (one per stage) '
                f'or {num_blocks} (one per block)')
    for ratio in ratios:
        if not 0 < ratio <= 1:
            raise ValueError(
                f'{field} values must be in (0, 1], got {ratio}')
    return ratios


class PruningLayout(NamedTuple):
    """What a backbone tells the pruning configuration about itself.

    Attributes:
        block_names (list[str]): Prunable transformer blocks, in order.
        blocks_per_stage (list[int]): Their number per stage.
        conv_block_names (list[str]): Convolutional blocks that
            ``conv_keep_ratios`` can stop tokens in.
        conv_blocks_per_stage (list[int]): Their number per conv stage.
        num_timesteps (int): ``T``.
        stateful_neurons (bool): The neurons carry a membrane state from one
            timestep to the next (LIF), so a slot must hold the same token
            at every timestep.
    """
    block_names: Sequence[str]
    blocks_per_stage: Sequence[int]
    conv_block_names: Sequence[str] = ()
    conv_blocks_per_stage: Sequence[int] = ()
    num_timesteps: int = 1
    stateful_neurons: bool = False


class BlockRatios(NamedTuple):
    """Per-block retention resolved against a :class:`PruningLayout`."""
    keep: List[float]
    mlp_keep: Optional[List[float]]
    conv_keep: Optional[List[float]]


def _choice(field: str, value, choices: Tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f'pruning.{field} must be one of {choices}, got '
                         f'{value!r}')


def _is_dense(ratios: Optional[Ratios]) -> bool:
    values = [ratios] if isinstance(ratios, (int, float)) else ratios
    return all(float(r) == 1.0 for r in values)


@dataclass(frozen=True)
class PruningConfig:
    """Token pruning options of a backbone (its ``pruning`` dict).

    Construction checks every rule that does not depend on the backbone
    (choices, ranges, combinations); :meth:`block_ratios` checks the rest
    against the backbone's :class:`PruningLayout`;
    :class:`~mmtpspike.models.pruning.TokenPruner` runs it.

    Args:
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
            restorer, one retention for attention and MLP; with ``T > 1``
            and a shared selection, one merge plan per image for all its
            timesteps).
        skip_mixer (bool): In transformer blocks, stopped tokens also skip
            the mixer's pointwise convs (the depthwise conv runs on the full
            map, where they emit no spikes). Needs ``score_on='input'``.
            Default: False (the paper: the mixer runs on every token).
        conv_keep_ratios (float | list[float], optional): Early stopping in
            the convolutional blocks (given by the backbone) with its own
            retention, one value, one per conv stage or one per conv block:
            stopped positions skip the block's ``3 x 3`` channel MLP and
            keep their values after the mixer, which runs on the full map
            (its pointwise convs are ~5 % of a conv block's MACs; running
            them sparsely cost more in gathers than it saved, measured in
            docs/benchmarks/fast_config.md). None (default) runs the conv
            blocks densely.
        conv_tile (int, optional): With ``conv_keep_ratios``, stop whole
            ``t x t`` tiles of tokens in the conv blocks instead of single
            tokens: scores are averaged per tile, the ratio counts tiles
            (the tiles holding valid tokens), and the kept tiles run the
            channel MLP as dense convolutions on a batch of haloed tiles
            (see :mod:`~mmtpspike.models.pruning.tiles`). None (default)
            stops single tokens.

    Example:
        >>> from mmtpspike.models.pruning import PruningConfig
        >>> config = PruningConfig.from_dict(dict(keep_ratios=0.78))
        >>> config.replace_ratios(keep_ratios=0.56).keep_ratios
        0.56
    """
    keep_ratios: Ratios = 1.0
    scorer: Optional[dict] = None
    mode: str = 'per_block'
    temporal_selection: str = 'shared'
    restorer: Optional[dict] = None
    score_on: str = 'input'
    attention_context: str = 'kept'
    mlp_keep_ratios: Optional[Ratios] = None
    dynamic: Optional[dict] = None
    reduction: str = 'stop'
    skip_mixer: bool = False
    conv_keep_ratios: Optional[Ratios] = None
    conv_tile: Optional[int] = None

    @classmethod
    def from_dict(cls, pruning: dict) -> 'PruningConfig':
        """Build from a ``pruning`` dict; unknown keys are errors."""
        if isinstance(pruning, cls):
            return pruning
        if not isinstance(pruning, dict):
            raise TypeError(f'pruning must be a dict or None, got {pruning!r}')
        unknown = set(pruning) - set(cls.keys())
        if unknown:
            raise KeyError(f'pruning has unknown key(s) {sorted(unknown)}; '
                           f'allowed: {list(cls.keys())}')
        return cls(**pruning)

    @classmethod
    def keys(cls) -> Tuple[str, ...]:
        """The option names a ``pruning`` dict may use."""
        return tuple(field.name for field in dataclasses.fields(cls))

    def __post_init__(self) -> None:
        for field, choices in (('mode', MODES),
                               ('temporal_selection', TEMPORAL_SELECTIONS),
                               ('score_on', SCORE_ON),
                               ('attention_context', ATTENTION_CONTEXTS),
                               ('reduction', REDUCTIONS)):
            _choice(field, getattr(self, field), choices)
        if self.dynamic is not None:
            object.__setattr__(self, 'dynamic', self._checked_dynamic())
            if not _is_dense(self.keep_ratios) or \
                    self.mlp_keep_ratios is not None:
                raise ValueError(
                    'pruning.dynamic sets the retention per image; leave '
                    'keep_ratios at 1.0 and mlp_keep_ratios unset')
            if self.conv_keep_ratios is not None:
                raise ValueError('pruning.dynamic applies to the transformer '
                                 'blocks only; leave conv_keep_ratios unset')
        if self.conv_tile is not None:
            self._check_conv_tile()
        if self.reduction == 'merge':
            self._check_merge()
        if self.skip_mixer and self.score_on != 'input':
            raise ValueError(
                'pruning.skip_mixer=True lets stopped tokens skip the mixer, '
                "so they must be chosen before it: use score_on='input'")

    def _checked_dynamic(self) -> dict:
        """``dynamic`` with its defaults filled in, or a ValueError."""
        if not isinstance(self.dynamic, dict) or \
                set(self.dynamic) - set(DYNAMIC_DEFAULTS):
            raise ValueError(
                f'pruning.dynamic must be a dict with keys '
                f'{sorted(DYNAMIC_DEFAULTS)}, got {self.dynamic!r}')
        cfg = dict(DYNAMIC_DEFAULTS, **self.dynamic)
        if not 0 < cfg['mass'] <= 1:
            raise ValueError(f'pruning.dynamic.mass must be in (0, 1], got '
                             f'{cfg["mass"]}')
        if not 0 < cfg['min_ratio'] <= cfg['max_ratio'] <= 1:
            raise ValueError('pruning.dynamic needs 0 < min_ratio <= '
                             f'max_ratio <= 1, got {cfg}')
        return cfg

    def _check_conv_tile(self) -> None:
        if isinstance(self.conv_tile, bool) or \
                not isinstance(self.conv_tile, int) or self.conv_tile < 2:
            raise ValueError('pruning.conv_tile must be an int >= 2 (the '
                             'tile side in tokens) or None for per-token '
                             f'stopping, got {self.conv_tile!r}')
        if self.conv_keep_ratios is None:
            raise ValueError('pruning.conv_tile sets how the conv blocks '
                             'stop tokens, but conv_keep_ratios is unset: '
                             'give conv_keep_ratios or remove conv_tile')

    def _check_merge(self) -> None:
        restorer = (self.restorer or {}).get('type', 'CarryOverRestorer')
        if self.mode != 'per_block' or self.dynamic or \
                self.mlp_keep_ratios is not None or \
                restorer != 'CarryOverRestorer':
            raise ValueError(
                "pruning.reduction='merge' merges and unmerges tokens itself: "
                "use it with mode='per_block', the default restorer, no "
                'dynamic retention and no mlp_keep_ratios')
        if self.skip_mixer:
            raise ValueError("pruning.skip_mixer does not apply to "
                             "reduction='merge'")

    def replace_ratios(self, **ratios) -> 'PruningConfig':
        """A copy with new ``keep_ratios`` / ``mlp_keep_ratios`` /
        ``conv_keep_ratios``, checked like a new config."""
        allowed = ('keep_ratios', 'mlp_keep_ratios', 'conv_keep_ratios')
        unknown = set(ratios) - set(allowed)
        if unknown:
            raise KeyError(f'replace_ratios takes {allowed}, got '
                           f'{sorted(unknown)}')
        return dataclasses.replace(self, **ratios)

    def block_ratios(self, layout: PruningLayout) -> BlockRatios:
        """Check the config against a backbone and expand its ratios to one
        value per block.

        Raises:
            ValueError: a ratio list of the wrong length or range, conv
                stopping on a backbone without conv blocks, or per-timestep
                selection with stateful neurons.
        """
        if layout.stateful_neurons and layout.num_timesteps > 1 and \
                self.temporal_selection == 'per_timestep':
            raise ValueError(
                "pruning.temporal_selection='per_timestep' needs stateless "
                'neurons: a LIF neuron must see the same tokens at every '
                "timestep; use 'shared' or spike_cfg type 'MultiSpike'")
        keep = expand_keep_ratios(self.keep_ratios, layout.blocks_per_stage)
        mlp_keep = None if self.mlp_keep_ratios is None else \
            expand_keep_ratios(self.mlp_keep_ratios, layout.blocks_per_stage,
                               'pruning.mlp_keep_ratios')
        conv_keep = None
        if self.conv_keep_ratios is not None:
            if not layout.conv_block_names:
                raise ValueError(
                    'pruning.conv_keep_ratios is set, but this backbone has '
                    'no convolutional blocks that can stop tokens; remove it')
            conv_keep = expand_keep_ratios(self.conv_keep_ratios,
                                           layout.conv_blocks_per_stage,
                                           'pruning.conv_keep_ratios')
        return BlockRatios(keep, mlp_keep, conv_keep)
