"""Restoring early-stopped tokens into full-resolution maps.

Tokens that stop early in a block are not deleted: the restorer puts the
updated kept tokens back at their original positions, so the next block and
every stage output (what the FPN / decode head receives) is a complete
``[B, C, H, W]`` map. What a stopped token holds afterwards is the
restorer's choice:

* :class:`CarryOverRestorer` (paper default): its last value.
* :class:`NeighbourUpdateRestorer`: its value plus the mean update of its
  kept neighbours (a training-free reconstruction in the spirit of Expedit /
  Hourglass token reconstruction).
* :class:`ZeroRestorer` (ablation): zero, i.e. the token is deleted as plain
  token pruning would, which measures what early stopping itself is worth.
"""
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmtpspike.registry import TOKEN_RESTORERS
from .selection import index_to_mask


@dataclass
class TokenRecord:
    """What happened to the tokens of one transformer block in one forward.

    Attributes:
        block_name (str): e.g. ``'stages.2.blocks.0'``.
        stage_index (int): Stage of the block (0-based, as ``out_indices``;
            -1 for a stem).
        keep_ratio (float): Configured retention ratio of the block.
        kept (Tensor): ``[R, H, W]`` bool, True where attention ran (and the
            MLP, unless ``mlp_kept`` says otherwise). ``R = T * B`` rows
            (timestep-major).
        valid (Tensor): ``[R, H, W]`` bool, tokens inside the image.
        scores (Tensor | None): ``[R, H, W]`` scores used for the selection
            (None when nothing was scored).
        mlp_kept (Tensor | None): ``[R, H, W]`` bool, where the MLP ran,
            when it had its own retention ratio.
    """

    block_name: str
    stage_index: int
    keep_ratio: float
    kept: torch.Tensor
    valid: torch.Tensor
    scores: Optional[torch.Tensor] = None
    mlp_kept: Optional[torch.Tensor] = None

    @property
    def realised_keep_ratio(self) -> float:
        """Kept valid tokens / valid tokens, over the whole batch."""
        valid = self.valid.sum().clamp_min(1)
        return float((self.kept & self.valid).sum() / valid)

    @property
    def keep_ratio_per_row(self) -> List[float]:
        """Kept valid tokens / valid tokens of each row (image and
        timestep), e.g. to report dynamic retention per image."""
        kept = (self.kept & self.valid).flatten(1).sum(1).double()
        valid = self.valid.flatten(1).sum(1).clamp_min(1).double()
        return (kept / valid).tolist()


@dataclass
class Selection:
    """The tokens of one sub-layer run, as the restorer needs them.

    Attributes:
        index (Tensor): ``[R, K]`` long, kept positions (fillers = ``N``).
        slot_mask (Tensor): ``[R, K]`` bool, False for filler slots.
        valid (Tensor): ``[R, N]`` bool, tokens inside the image.
        spatial_shape (tuple[int, int]): ``(H, W)`` of the token map.
    """

    index: torch.Tensor
    slot_mask: torch.Tensor
    valid: torch.Tensor
    spatial_shape: Tuple[int, int]

    @property
    def has_fillers(self) -> bool:
        return not bool(self.slot_mask.all())

    def kept_map(self) -> torch.Tensor:
        """``[R, N]`` bool, True at the kept positions."""
        return index_to_mask(self.index, self.valid.shape[1])


def channels_innermost(tokens: torch.Tensor) -> bool:
    """Whether ``[R, C, N]`` tokens are stored token-major (``[R, N, C]``
    in memory, as a flattened channels-last map is)."""
    return tokens.shape[1] > 1 and tokens.transpose(1, 2).is_contiguous()


def _flat_rows(index: torch.Tensor, num_tokens: int) -> torch.Tensor:
    """``[R, K]`` positions -> rows of the ``[R * N, C]`` token-major
    storage (fillers, ``>= N``, to the scratch row ``R * N``)."""
    offsets = torch.arange(index.shape[0], device=index.device) * num_tokens
    rows = index + offsets[:, None]
    return torch.where(index < num_tokens, rows,
                       torch.full_like(rows, index.shape[0] * num_tokens))


def scatter_tokens(tokens: torch.Tensor, kept: torch.Tensor,
                   selection: Selection) -> torch.Tensor:
    """Write ``kept: [R, C, K]`` into a copy of ``tokens: [R, C, N]`` at the
    selected positions; filler slots write nowhere. Token-major tokens stay
    token-major (whole rows are copied)."""
    rows, channels, num_tokens = tokens.shape
    if channels_innermost(tokens):
        storage = F.pad(tokens.transpose(1, 2).reshape(-1, channels),
                        (0, 0, 0, 1))  # + a scratch row for fillers
        storage = storage.index_copy(
            0, _flat_rows(selection.index, num_tokens).flatten(),
            kept.transpose(1, 2).reshape(-1, channels))
        return storage[:-1].view(rows, num_tokens, channels).transpose(1, 2)
    expanded = selection.index.unsqueeze(1).expand_as(kept)
    if not selection.has_fillers:
        return tokens.scatter(2, expanded, kept)
    # filler slots write into a scratch column that is dropped again
    padded = F.pad(tokens, (0, 1)).scatter(2, expanded, kept)
    return padded[..., :num_tokens]


def gather_tokens(tokens: torch.Tensor,
                  selection: Selection) -> torch.Tensor:
    """``tokens: [R, C, N]`` -> the selected ``[R, C, K]`` (fillers hold
    the last token, and are masked wherever it matters). Token-major tokens
    give token-major ``[R, C, K]``."""
    rows, channels, num_tokens = tokens.shape
    index = selection.index.clamp(max=num_tokens - 1)
    if channels_innermost(tokens):
        flat = tokens.transpose(1, 2).reshape(-1, channels)
        picked = flat.index_select(0, _flat_rows(index, num_tokens).flatten())
        return picked.view(rows, -1, channels).transpose(1, 2)
    return tokens.gather(2, index.unsqueeze(1).expand(-1, channels, -1))


class TokenRestorer(nn.Module):
    """Base class: merge processed kept tokens back into the full map."""

    def forward(self, tokens: torch.Tensor, kept: torch.Tensor,
                selection: Selection) -> torch.Tensor:
        """Restore a full token map.

        Args:
            tokens (Tensor): ``[R, C, N]`` input of the sub-layer.
            kept (Tensor): ``[R, C, K]`` kept tokens after the sub-layer.
            selection (Selection): their positions and the valid map.

        Returns:
            Tensor: ``[R, C, N]``.
        """
        raise NotImplementedError


@TOKEN_RESTORERS.register_module()
class CarryOverRestorer(TokenRestorer):
    """Paper default: stopped tokens carry their last value forward.

    Kept tokens are scattered back to their positions; early-stopped tokens
    keep the value they entered the block with.
    """

    def forward(self, tokens: torch.Tensor, kept: torch.Tensor,
                selection: Selection) -> torch.Tensor:
        return scatter_tokens(tokens, kept, selection)


@TOKEN_RESTORERS.register_module()
class NeighbourUpdateRestorer(TokenRestorer):
    """A stopped token receives the mean update of its kept neighbours.

    The update of a kept token is ``out - in``; a stopped valid token adds
    the mean update of the kept tokens in the ``k x k`` window around it
    (none kept nearby: no update, as carry-over). Kept tokens and tokens
    outside the image are left as the carry-over restorer leaves them. No
    parameters: a training-free reconstruction of what the block would have
    done to the stopped token.

    Args:
        window_size (int): ``k``, odd. Default: 3.
    """

    def __init__(self, window_size: int = 3) -> None:
        super().__init__()
        if window_size < 1 or window_size % 2 == 0:
            raise ValueError('NeighbourUpdateRestorer.window_size must be a '
                             f'positive odd int, got {window_size}')
        self.window_size = window_size

    def _window_sum(self, x: torch.Tensor) -> torch.Tensor:
        k = self.window_size
        return F.avg_pool2d(x, k, stride=1, padding=k // 2,
                            count_include_pad=True) * (k * k)

    def forward(self, tokens: torch.Tensor, kept: torch.Tensor,
                selection: Selection) -> torch.Tensor:
        rows, channels, num_tokens = tokens.shape
        height, width = selection.spatial_shape
        update = kept - gather_tokens(tokens, selection)
        update = update * selection.slot_mask.unsqueeze(1).to(update.dtype)
        update_map = scatter_tokens(torch.zeros_like(tokens), update,
                                    selection)
        kept_map = selection.kept_map()
        sums = self._window_sum(update_map.view(rows, channels, height,
                                                width))
        counts = self._window_sum(
            kept_map.view(rows, 1, height, width).to(tokens.dtype))
        mean_update = (sums / counts.clamp_min(1)).flatten(2)
        receives = (~kept_map & selection.valid).unsqueeze(1)
        return tokens + torch.where(receives, mean_update, update_map)


@TOKEN_RESTORERS.register_module()
class ZeroRestorer(TokenRestorer):
    """Ablation: stopped valid tokens are set to zero (deleted), as plain
    token pruning would leave them; tokens outside the image keep their
    values. Compared with :class:`CarryOverRestorer` it measures what
    keeping the stopped tokens (the paper's early stopping) is worth."""

    def forward(self, tokens: torch.Tensor, kept: torch.Tensor,
                selection: Selection) -> torch.Tensor:
        stopped = (~selection.kept_map() & selection.valid).unsqueeze(1)
        cleared = tokens.masked_fill(stopped, 0.)
        return scatter_tokens(cleared, kept, selection)
