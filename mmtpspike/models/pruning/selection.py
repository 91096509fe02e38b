"""Count-based, padding-aware token selection.

Each image keeps ``K_b = ceil(keep * N_valid_b)`` tokens, where ``N_valid_b``
counts the tokens inside its valid (non-padded) area. Works for any ``H, W``.
"""
import math
from typing import Optional, Sequence, Tuple

import torch


def valid_token_mask(img_shapes: Optional[Sequence[Tuple[int, int]]],
                     stride: int, height: int, width: int,
                     device: torch.device) -> Optional[torch.Tensor]:
    """Boolean map of the tokens covering each image's valid area.

    mmdet / mmseg pad images at the bottom and right; a token at stride ``s``
    is valid when its top-left pixel lies inside the image:
    ``row < ceil(h / s)`` and ``col < ceil(w / s)``.

    Args:
        img_shapes (list[tuple[int, int]] | None): ``(h, w)`` of each image
            before padding; None means "no padding".
        stride (int): Stride of the token map w.r.t. the input.
        height (int): Token map height ``H``.
        width (int): Token map width ``W``.
        device (torch.device): Device of the result.

    Returns:
        Tensor | None: ``[B, H * W]`` bool, or None when ``img_shapes`` is None.
    """
    if img_shapes is None:
        return None
    rows = torch.tensor([math.ceil(h / stride) for h, _ in img_shapes],
                        device=device)
    cols = torch.tensor([math.ceil(w / stride) for _, w in img_shapes],
                        device=device)
    row_ok = torch.arange(height, device=device)[None] < rows[:, None]
    col_ok = torch.arange(width, device=device)[None] < cols[:, None]
    return (row_ok[:, :, None] & col_ok[:, None, :]).flatten(1)


def keep_counts(keep_ratio: float, num_valid: torch.Tensor) -> torch.Tensor:
    """``K = ceil(keep * N_valid)`` per row, at least one token.

    Args:
        keep_ratio (float): Retention ratio in ``(0, 1]``.
        num_valid (Tensor): ``[R]`` number of valid tokens per row.

    Returns:
        Tensor: ``[R]`` long.
    """
    # round first so that e.g. 0.78 * 100 = 78.00000000000001 keeps 78
    exact = (num_valid.double() * keep_ratio).round(decimals=6)
    return exact.ceil().long().clamp(min=1)


def select_tokens(scores: torch.Tensor, counts: torch.Tensor,
                  candidates: torch.Tensor
                  ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Pick the ``counts[r]`` highest-scoring candidate tokens of each row;
    ties go to the lower token index.

    Rows may keep different numbers of tokens; the result has ``K =
    max(counts)`` slots per row, padded with *filler* slots whose index is
    ``N`` (one past the last token) and whose mask is False.

    Args:
        scores (Tensor): ``[R, N]`` token scores (higher = keep).
        counts (Tensor): ``[R]`` tokens to keep per row, ``<=`` the number
            of candidates of that row.
        candidates (Tensor): ``[R, N]`` bool, tokens that may be kept.

    Returns:
        tuple[Tensor, Tensor]: ``index`` ``[R, K]`` long, ascending token
        positions (fillers last), and ``slot_mask`` ``[R, K]`` bool.
    """
    num_tokens = scores.shape[1]
    num_slots = int(counts.max())
    masked = scores.masked_fill(~candidates, float('-inf'))
    # a stable sort ranks equal scores by position (lowest index first)
    index = masked.sort(dim=1, descending=True, stable=True).indices[
        :, :num_slots]
    ranks = torch.arange(num_slots, device=scores.device)
    slot_mask = ranks[None] < counts[:, None]
    index = index.masked_fill(~slot_mask, num_tokens).sort(dim=1).values
    return index, index < num_tokens


def protect_tokens(scores: torch.Tensor, counts: torch.Tensor,
                   candidates: torch.Tensor, protected: torch.Tensor
                   ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Rank protected tokens first and add them to the counts.

    Args:
        scores (Tensor): ``[R, N]`` token scores (higher = keep).
        counts (Tensor): ``[R]`` unprotected tokens to keep per row.
        candidates (Tensor): ``[R, N]`` bool, tokens that may be kept.
        protected (Tensor): ``[R, N]`` bool, tokens that are always kept.

    Returns:
        tuple[Tensor, Tensor]: ``[R, N]`` scores with ``+inf`` at the
        protected tokens and ``[R]`` counts plus the protected candidates,
        for :func:`select_tokens`.
    """
    scores = scores.masked_fill(protected, float('inf'))
    return scores, counts + (candidates & protected).sum(1)


def index_to_mask(index: torch.Tensor, num_tokens: int) -> torch.Tensor:
    """``[R, K]`` token indices (fillers = ``N``) -> ``[R, N]`` bool map."""
    mask = index.new_zeros(index.shape[0], num_tokens + 1, dtype=torch.bool)
    # a tensor source, not the scalar True: the ONNX tracer has no
    # ``scatter_`` overload for a bool scalar
    mask.scatter_(1, index, torch.ones_like(index, dtype=torch.bool))
    return mask[:, :num_tokens]


def mass_counts(scores: torch.Tensor, candidates: torch.Tensor,
                num_valid: torch.Tensor, mass: float, min_ratio: float,
                max_ratio: float) -> torch.Tensor:
    """Dynamic retention: the fewest tokens holding ``mass`` of the score.

    Per row, the candidate scores (clamped at 0) are normalised to sum to
    one; the row keeps the smallest number of best tokens whose scores reach
    ``mass``, bounded by ``ceil(min_ratio * N_valid)`` and
    ``ceil(max_ratio * N_valid)`` (and by the candidates).

    Args:
        scores (Tensor): ``[R, N]`` token scores (higher = keep).
        candidates (Tensor): ``[R, N]`` bool, tokens that may be kept.
        num_valid (Tensor): ``[R]`` valid tokens per row.
        mass (float): Share of the score mass to keep, in ``(0, 1]``.
        min_ratio (float): Lower bound of the keep ratio.
        max_ratio (float): Upper bound of the keep ratio.

    Returns:
        Tensor: ``[R]`` long counts.
    """
    weights = scores.clamp_min(0).masked_fill(~candidates, 0.)
    total = weights.sum(1, keepdim=True)
    uniform = candidates.to(weights.dtype)
    # rows without positive score mass: every candidate weighs the same
    weights = torch.where(total > 0, weights, uniform)
    weights = weights / weights.sum(1, keepdim=True).clamp_min(1e-12)
    cumulative = weights.sort(dim=1, descending=True).values.cumsum(1)
    needed = (cumulative < mass - 1e-6).sum(1) + 1
    low = keep_counts(min_ratio, num_valid)
    high = keep_counts(max_ratio, num_valid)
    counts = torch.maximum(torch.minimum(needed, high), low)
    return torch.minimum(counts, candidates.sum(1)).clamp_min(1)
