"""The shape every prunable transformer block shares."""
from typing import Optional

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from ..pruning.restore import Selection, gather_tokens
from .drop_path import ImageDropPath


class TokenBlock(BaseModule):
    """Base of the prunable transformer blocks.

    A block is a spatial part on the full map (:meth:`mix`, the identity
    unless a subclass has one) followed by two token-wise residuals,
    ``x + attn(x)`` and ``x + mlp(x)``, on flat ``[R, C, K]`` tokens, which is
    what :class:`~mmtpspike.models.pruning.TokenPruner` drives. Subclasses
    build ``self.attn`` (called as ``attn(tokens, token_mask, context,
    context_mask)``, e.g. a :class:`~.token_attention.TokenAttention`) and
    ``self.mlp`` (``mlp(tokens)``), both returning the branch output without
    the residual.

    Args:
        drop_path (float): Stochastic depth rate of both residuals, one
            decision per image for all its timesteps (see
            :class:`ImageDropPath`). Default: 0.
        num_timesteps (int): ``T``, the timestep rows per image. Default: 1.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 drop_path: float = 0.,
                 num_timesteps: int = 1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.drop_path = ImageDropPath(drop_path, num_timesteps) \
            if drop_path > 0 else nn.Identity()

    def mix(self, x: torch.Tensor) -> torch.Tensor:
        """Spatial part on the full map: ``[R, C, H, W]`` -> same (none
        here)."""
        return x

    def mix_at(self, x: torch.Tensor, selection: Selection) -> torch.Tensor:
        """The spatial part for the selected tokens only
        (``pruning.skip_mixer``): ``[R, C, H, W]`` -> ``[R, C, K]``; the
        selected tokens themselves here (no spatial part)."""
        return gather_tokens(x.flatten(2), selection)

    def attention_residual(
            self,
            tokens: torch.Tensor,
            token_mask: Optional[torch.Tensor] = None,
            context: Optional[torch.Tensor] = None,
            context_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Attention residual: ``[R, C, K]`` -> ``[R, C, K]``.

        Args:
            tokens (Tensor): ``[R, C, K]`` tokens that query.
            token_mask (Tensor, optional): ``[R, K]`` bool, False for filler
                slots that must not contribute to other tokens.
            context (Tensor, optional): ``[R, C, M]`` tokens that give keys
                and values instead (``pruning.attention_context='all'``).
            context_mask (Tensor, optional): ``[R, M]`` bool, False for
                context tokens left out (padding).
        """
        return tokens + self.drop_path(
            self.attn(tokens, token_mask, context, context_mask))

    def mlp_residual(self, tokens: torch.Tensor) -> torch.Tensor:
        """MLP residual, token-wise: ``[R, C, K]`` -> ``[R, C, K]``."""
        return tokens + self.drop_path(self.mlp(tokens))

    def transform_tokens(
            self,
            tokens: torch.Tensor,
            token_mask: Optional[torch.Tensor] = None,
            context: Optional[torch.Tensor] = None,
            context_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Attention + MLP residuals: ``[R, C, K]`` -> ``[R, C, K]``."""
        return self.mlp_residual(self.attention_residual(
            tokens, token_mask, context, context_mask))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Dense block: ``[R, C, H, W]`` -> ``[R, C, H, W]``."""
        x = self.mix(x)
        return self.transform_tokens(x.flatten(2)).view_as(x)
