"""Restoring early-stopped tokens into full-resolution maps.

Tokens that stop early in a block are not deleted: the restorer puts the
updated kept tokens back at their original positions, so the next block and
every stage output (what the FPN / decode head receives) is a complete
``[B, C, H, W]`` map. It also records, per block, which tokens were kept.
"""
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmtpspike.registry import TOKEN_RESTORERS


@dataclass
class TokenRecord:
    """What happened to the tokens of one transformer block in one forward.

    Attributes:
        block_name (str): e.g. ``'stages.2.blocks.0'``.
        stage_index (int): Stage of the block (0-based, as ``out_indices``).
        keep_ratio (float): Configured retention ratio of the block.
        kept (Tensor): ``[R, H, W]`` bool, True where attention + MLP ran.
            ``R = T * B`` rows (timestep-major).
        valid (Tensor): ``[R, H, W]`` bool, tokens inside the image.
        scores (Tensor | None): ``[R, H, W]`` scores used for the selection
            (None for a dense block).
    """

    block_name: str
    stage_index: int
    keep_ratio: float
    kept: torch.Tensor
    valid: torch.Tensor
    scores: Optional[torch.Tensor] = None

    @property
    def realised_keep_ratio(self) -> float:
        """Kept valid tokens / valid tokens, over the whole batch."""
        valid = self.valid.sum().clamp_min(1)
        return float((self.kept & self.valid).sum() / valid)


class TokenRestorer(nn.Module):
    """Base class: merge processed kept tokens back into the full map."""

    def forward(self, tokens: torch.Tensor, kept: torch.Tensor,
                index: torch.Tensor, slot_mask: torch.Tensor) -> torch.Tensor:
        """Restore a full token map.

        Args:
            tokens (Tensor): ``[R, C, N]`` block input (after the mixer).
            kept (Tensor): ``[R, C, K]`` kept tokens after attention + MLP.
            index (Tensor): ``[R, K]`` their positions (fillers = ``N``).
            slot_mask (Tensor): ``[R, K]`` bool, False for filler slots.

        Returns:
            Tensor: ``[R, C, N]``.
        """
        raise NotImplementedError


@TOKEN_RESTORERS.register_module()
class CarryOverRestorer(TokenRestorer):
    """Paper default: stopped tokens carry their last value forward.

    Kept tokens are scattered back to their positions; early-stopped tokens
    keep the value they entered attention with.
    """

    def forward(self, tokens: torch.Tensor, kept: torch.Tensor,
                index: torch.Tensor, slot_mask: torch.Tensor) -> torch.Tensor:
        expanded = index.unsqueeze(1).expand_as(kept)
        if bool(slot_mask.all()):
            return tokens.scatter(2, expanded, kept)
        # filler slots write into a scratch column that is dropped again
        padded = F.pad(tokens, (0, 1)).scatter(2, expanded, kept)
        return padded[..., :tokens.shape[2]]
