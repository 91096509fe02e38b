"""Token scorers of TP-Spikformer: which tokens carry the most information.

Every scorer is a parameter-free module that maps the block input
``x: [T * B, C, H, W]`` (timestep-major) to one score per token
``[T * B, H * W]``; higher means "keep". Scores are normalised per row over
the valid (non-padded) tokens.

* :class:`SpatialScorer` -- ``S = 1 - cos(x, local mean of x)`` (paper), or
  the public code's ``reference`` variant.
* :class:`TemporalScorer` -- ``mean_c |X_t - X_(t-1)|``, ``mean_c |X_1|`` at
  ``t = 1``.
* :class:`IRToPScorer` -- the information-retaining criterion
  ``w_s * S + w_t * Tm`` (temporal term only when ``T > 1``).
* :class:`RandomScorer`, :class:`L2NormScorer` -- ablation baselines.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmtpspike.registry import TOKEN_SCORERS

NORMALIZATIONS = ('softmax', 'minmax', 'sum', 'none')


def normalize_scores(scores: torch.Tensor,
                     valid: Optional[torch.Tensor],
                     method: str = 'softmax') -> torch.Tensor:
    """Normalise scores per row over the valid tokens.

    Args:
        scores (Tensor): ``[R, N]`` raw scores.
        valid (Tensor, optional): ``[R, N]`` bool, True for real tokens.
        method (str): ``'softmax'`` (public code), ``'minmax'`` (to
            ``[0, 1]``), ``'sum'`` (shift to >= 0, then sum to one) or
            ``'none'``.

    Returns:
        Tensor: ``[R, N]``; padded tokens get 0.
    """
    if method not in NORMALIZATIONS:
        raise ValueError(f'normalize must be one of {NORMALIZATIONS}, '
                         f'got {method!r}')
    if valid is None:
        valid = torch.ones_like(scores, dtype=torch.bool)
    if method == 'none':
        return scores.masked_fill(~valid, 0.)
    if method == 'softmax':
        return scores.masked_fill(~valid, float('-inf')).softmax(-1)
    low = scores.masked_fill(~valid, float('inf')).amin(-1, keepdim=True)
    shifted = (scores - low).masked_fill(~valid, 0.)
    if method == 'minmax':
        span = shifted.amax(-1, keepdim=True)
    else:
        span = shifted.sum(-1, keepdim=True)
    return shifted / span.clamp_min(torch.finfo(scores.dtype).eps)


class TokenScorer(nn.Module):
    """Base class of token scorers.

    Args:
        normalize (str): See :func:`normalize_scores`. Default: 'softmax'.
    """

    def __init__(self, normalize: str = 'softmax') -> None:
        super().__init__()
        if normalize not in NORMALIZATIONS:
            raise ValueError(f'normalize must be one of {NORMALIZATIONS}, '
                             f'got {normalize!r}')
        self.normalize = normalize

    def raw_scores(self,
                   x: torch.Tensor,
                   num_timesteps: int,
                   valid: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``[T * B, C, H, W]`` -> unnormalised ``[T * B, H * W]``.

        ``valid`` (``[T * B, H * W]`` bool or None) marks the tokens inside
        each image; scorers that look at neighbours must ignore the others.
        """
        raise NotImplementedError

    def forward(self,
                x: torch.Tensor,
                num_timesteps: int = 1,
                valid: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Score tokens.

        Args:
            x (Tensor): ``[T * B, C, H, W]`` block input, timestep-major.
            num_timesteps (int): ``T``.
            valid (Tensor, optional): ``[T * B, H * W]`` bool valid tokens.

        Returns:
            Tensor: ``[T * B, H * W]`` normalised scores (higher = keep).
        """
        return normalize_scores(
            self.raw_scores(x, num_timesteps, valid), valid, self.normalize)


@TOKEN_SCORERS.register_module()
class SpatialScorer(TokenScorer):
    """Spatial information score ``S = 1 - cos(x, y)``.

    ``variant='paper'``: ``y`` is the per-channel mean of the valid tokens
    in the ``k x k`` window centred on the token; positions outside the map
    and tokens outside the image (mmdet / mmseg padding, given by ``valid``)
    are excluded from the mean. A depthwise box filter: ``O(k^2 C N)`` adds
    plus ``3 C N`` MACs for the cosine, never a dense ``C x C x k x k`` conv.
    Zero-norm cases are defined: a token with ``|x| = 0`` carries nothing and
    scores 0 (the lowest score, ``cos := 1``); a non-zero token whose window
    mean is zero scores 1 (``cos := 0``).

    ``variant='reference'``: the public TP-Spikformer code's arithmetic,
    operation for operation, for reproducing its selections: a dense
    all-ones ``C x C x k x k`` kernel divided by ``k^2`` (zero padding), so
    every channel of ``y`` is the window sum over *all* channels over
    ``k^2``; ``cosine_similarity(dim=1, eps=1e-6)`` on ``[R, C, N]``; the
    raw score is ``-cos`` (the same ranking as ``1 - cos``, and the same
    floats after the default softmax, so tokens tied there are tied here).
    Spiking maps have many exactly tied scores, so computing the same
    quantity by another float path would break ties differently. Costs
    ``O(C^2 k^2 N)``: a reference, not a fast path. Tokens outside the image
    count as zero padding.

    Args:
        window_size (int): ``k``, odd. Default: 3.
        variant (str): ``'paper'`` (default) or ``'reference'``.
        normalize (str): See :func:`normalize_scores`.
        eps (float, optional): Guard of the cosine's denominator. Default:
            None, the variant's own (1e-8 for ``'paper'``, the public
            code's 1e-6 for ``'reference'``).
    """

    def __init__(self,
                 window_size: int = 3,
                 variant: str = 'paper',
                 normalize: str = 'softmax',
                 eps: Optional[float] = None) -> None:
        super().__init__(normalize)
        if window_size < 1 or window_size % 2 == 0:
            raise ValueError(
                f'window_size must be a positive odd int, got {window_size}')
        if variant not in ('paper', 'reference'):
            raise ValueError("variant must be 'paper' or 'reference', "
                             f'got {variant!r}')
        self.window_size = window_size
        self.variant = variant
        self.eps = self.default_eps[variant] if eps is None else eps

    #: cosine guard of each variant (the public code's for ``reference``)
    default_eps = dict(paper=1e-8, reference=1e-6)

    def _window_sum(self, x: torch.Tensor) -> torch.Tensor:
        """Zero-padded ``k x k`` box sum per channel: ``[R, C, H, W]`` (a
        depthwise all-ones conv: on CPU about twice as fast as
        ``avg_pool2d`` on channels-last maps)."""
        k, channels = self.window_size, x.shape[1]
        kernel = x.new_ones(channels, 1, k, k).contiguous(
            memory_format=torch.channels_last if x.is_contiguous(
                memory_format=torch.channels_last) else torch.contiguous_format)
        return F.conv2d(x, kernel, padding=k // 2, groups=channels)

    def raw_scores(self,
                   x: torch.Tensor,
                   num_timesteps: int,
                   valid: Optional[torch.Tensor] = None) -> torch.Tensor:
        if valid is not None and not bool(valid.all()):
            x = x * valid.view(x.shape[0], 1, *x.shape[2:]).to(x.dtype)
        if self.variant == 'reference':
            return -self._public_cosine(x)
        # the window sum of the valid tokens is their mean times a positive
        # count per token, and the cosine does not see that factor
        local = self._window_sum(x)
        x_norm, local_norm = x.norm(dim=1), local.norm(dim=1)
        cos = (x * local).sum(1) / (x_norm * local_norm).clamp_min(self.eps)
        cos = torch.where(local_norm > self.eps, cos, torch.zeros_like(cos))
        cos = torch.where(x_norm > self.eps, cos, torch.ones_like(cos))
        return (1 - cos).flatten(1)

    def _public_cosine(self, x: torch.Tensor) -> torch.Tensor:
        """The public code's ``cos(x, y)``: ``[R, C, H, W]`` -> ``[R, N]``."""
        channels, k = x.shape[1], self.window_size
        kernel = x.new_ones(channels, channels, k, k) / float(k * k)
        local_mean = F.conv2d(x, kernel, padding=k // 2)
        return F.cosine_similarity(x.flatten(2), local_mean.flatten(2),
                                   dim=1, eps=self.eps)


@TOKEN_SCORERS.register_module()
class TemporalScorer(TokenScorer):
    """Temporal information score: how much a token changes over time.

    ``Tm_t = mean_c |X_t - X_(t-1)|`` for ``t > 1`` and ``mean_c |X_1|`` for
    ``t = 1``; normalised per timestep and image. Defined for any ``T``
    (at ``T = 1`` it is the mean absolute activation), never NaN.

    Args:
        normalize (str): See :func:`normalize_scores`.
    """

    def raw_scores(self,
                   x: torch.Tensor,
                   num_timesteps: int,
                   valid: Optional[torch.Tensor] = None) -> torch.Tensor:
        seq = x.view(num_timesteps, -1, *x.shape[1:])
        previous = torch.cat([torch.zeros_like(seq[:1]), seq[:-1]])
        return (seq - previous).abs().mean(2).flatten(2).flatten(0, 1)


@TOKEN_SCORERS.register_module()
class IRToPScorer(TokenScorer):
    """Information-retaining token score of TP-Spikformer (IRToP).

    ``score = w_s * norm(S) + w_t * norm(Tm)``; the temporal term is used only
    when ``T > 1`` (it is absent at ``T = 1``).

    Args:
        spatial_weight (float): ``w_s``. Default: 1.
        temporal_weight (float): ``w_t``. Default: 1.
        window_size (int): Spatial window ``k``. Default: 3.
        variant (str): Spatial variant, ``'paper'`` or ``'reference'``.
        normalize (str): Per-term normalisation. Default: 'softmax'.
    """

    def __init__(self,
                 spatial_weight: float = 1.,
                 temporal_weight: float = 1.,
                 window_size: int = 3,
                 variant: str = 'paper',
                 normalize: str = 'softmax') -> None:
        super().__init__(normalize)
        if spatial_weight < 0 or temporal_weight < 0 or \
                spatial_weight + temporal_weight == 0:
            raise ValueError('spatial_weight and temporal_weight must be >= 0 '
                             'and not both 0')
        self.spatial_weight = spatial_weight
        self.temporal_weight = temporal_weight
        self.spatial = SpatialScorer(window_size, variant, normalize)
        self.temporal = TemporalScorer(normalize)

    def forward(self,
                x: torch.Tensor,
                num_timesteps: int = 1,
                valid: Optional[torch.Tensor] = None) -> torch.Tensor:
        scores = self.spatial_weight * self.spatial(x, num_timesteps, valid)
        if num_timesteps > 1 and self.temporal_weight > 0:
            scores = scores + self.temporal_weight * self.temporal(
                x, num_timesteps, valid)
        return scores


@TOKEN_SCORERS.register_module()
class RandomScorer(TokenScorer):
    """Random token scores (ablation baseline), reproducible from a seed.

    The generator is seeded once at construction, so a run over the same data
    in the same order selects the same tokens.

    Args:
        seed (int): Seed of the private generator. Default: 0.
    """

    def __init__(self, seed: int = 0) -> None:
        super().__init__('none')
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)

    def raw_scores(self,
                   x: torch.Tensor,
                   num_timesteps: int,
                   valid: Optional[torch.Tensor] = None) -> torch.Tensor:
        scores = torch.rand(
            x.shape[0], x.shape[2] * x.shape[3], generator=self.generator)
        return scores.to(device=x.device, dtype=x.dtype)


@TOKEN_SCORERS.register_module()
class L2NormScorer(TokenScorer):
    """Token magnitude ``|x|_2`` over channels (ablation baseline).

    Args:
        normalize (str): See :func:`normalize_scores`.
    """

    def raw_scores(self,
                   x: torch.Tensor,
                   num_timesteps: int,
                   valid: Optional[torch.Tensor] = None) -> torch.Tensor:
        return x.norm(dim=1).flatten(1)
