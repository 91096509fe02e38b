"""The interface of the attentions inside prunable blocks."""
from typing import Optional

import torch
from mmengine.model import BaseModule

from .attention_ops import query_and_key_inputs


class TokenAttention(BaseModule):
    """Base of the attentions that :class:`~.token_block.TokenBlock` calls.

    :meth:`forward` takes what token pruning gives a block (the kept tokens,
    the filler mask, the optional all-token context) and hands
    :meth:`attend` the query input, the key / value input and the key mask,
    each input run through :meth:`encode` once. An attention that sums over
    tokens zeroes the masked keys in :meth:`attend` (see
    :func:`~.attention_ops.mask_keys`); a token-wise one ignores them.
    """

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Input neuron shared by queries and keys / values: ``[R, C, N]``
        -> same (the identity here)."""
        return tokens

    def attend(self, queries: torch.Tensor, keys: torch.Tensor,
               key_mask: Optional[torch.Tensor]) -> torch.Tensor:
        """The attention proper.

        Args:
            queries (Tensor): ``[R, C, K]`` encoded tokens that query.
            keys (Tensor): ``[R, C, M]`` encoded tokens that give keys and
                values (the queries themselves without a context).
            key_mask (Tensor, optional): ``[R, M]`` bool, False for keys
                that must not contribute (filler slots, padding).

        Returns:
            Tensor: ``[R, C, K]``, the branch output (no residual).
        """
        raise NotImplementedError

    def forward(self,
                tokens: torch.Tensor,
                token_mask: Optional[torch.Tensor] = None,
                context: Optional[torch.Tensor] = None,
                context_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Attend over tokens.

        Args:
            tokens (Tensor): ``[R, C, K]`` queries (and keys / values unless
                ``context`` is given).
            token_mask (Tensor, optional): ``[R, K]`` bool; False marks
                filler slots, which must not contribute to other tokens.
            context (Tensor, optional): ``[R, C, M]`` tokens that give the
                keys and values instead of ``tokens`` (all tokens of the map
                while only kept tokens query,
                ``pruning.attention_context='all'``).
            context_mask (Tensor, optional): ``[R, M]`` bool; False marks
                context tokens left out (padding).

        Returns:
            Tensor: ``[R, C, K]``, the branch output (no residual).
        """
        return self.attend(*query_and_key_inputs(
            tokens, token_mask, context, context_mask, self.encode))
