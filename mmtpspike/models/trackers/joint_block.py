"""One adapter that makes any token block work on a one-stream sequence."""
from typing import Optional

import torch
import torch.nn as nn

from ..pruning.restore import Selection
from .joint_layout import JointContext


class JointBlock(nn.Module):
    """A transformer block on a joint ``[R, C, 1, Nt + Ns]`` sequence.

    Attention and MLP are token-wise (attention over every token given), so
    they run on the joint sequence as they are; the block's spatial mixer
    (SDT-V3's SepConv residual; the identity for Spikformer) runs on the
    template map and on the search map separately, never across them.
    The adapter exposes what
    :class:`~mmtpspike.models.pruning.TokenPruner` drives (``mix``,
    ``attention_residual``, ``mlp_residual``, ``transform_tokens``, dense
    ``forward``), so one adapter serves every block type.

    Args:
        block (TokenBlock): e.g. ``SpikeTransformerBlock`` or
            ``SpikformerBlock``.
        context (JointContext): Holds the layout of the current sequence.
    """

    def __init__(self, block: nn.Module, context: JointContext) -> None:
        super().__init__()
        self.block = block
        self.context = context

    def mix(self, x: torch.Tensor) -> torch.Tensor:
        """The inner mixer on each map: ``[R, C, 1, N]`` -> same."""
        layout = self.context.require()
        template, search = layout.split(x)
        return layout.join(self.block.mix(template), self.block.mix(search))

    def mix_at(self, x: torch.Tensor, selection: Selection) -> torch.Tensor:
        raise NotImplementedError(
            'JointBlock has no sparse mixer: leave pruning.skip_mixer False')

    def attention_residual(
            self,
            tokens: torch.Tensor,
            token_mask: Optional[torch.Tensor] = None,
            context: Optional[torch.Tensor] = None,
            context_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The inner attention residual: ``[R, C, K]`` -> ``[R, C, K]``."""
        return self.block.attention_residual(tokens, token_mask, context,
                                             context_mask)

    def mlp_residual(self, tokens: torch.Tensor) -> torch.Tensor:
        """The inner MLP residual: ``[R, C, K]`` -> ``[R, C, K]``."""
        return self.block.mlp_residual(tokens)

    def transform_tokens(
            self,
            tokens: torch.Tensor,
            token_mask: Optional[torch.Tensor] = None,
            context: Optional[torch.Tensor] = None,
            context_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Attention + MLP residuals: ``[R, C, K]`` -> ``[R, C, K]``."""
        return self.block.transform_tokens(tokens, token_mask, context,
                                           context_mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Dense block: ``[R, C, 1, N]`` -> ``[R, C, 1, N]``."""
        x = self.mix(x)
        return self.transform_tokens(x.flatten(2)).view_as(x)
