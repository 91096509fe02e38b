"""Token-attention arithmetic shared by the spiking attentions."""
from typing import Callable, Optional, Tuple

import torch


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """``[R, C, N]`` -> ``[R, heads, N, C / heads]``."""
    rows, channels, num_tokens = x.shape
    return x.view(rows, num_heads, channels // num_heads,
                  num_tokens).transpose(-1, -2)


def linear_attention_macs(tokens: torch.Tensor,
                          context: Optional[torch.Tensor], v_channels: int,
                          num_heads: int) -> Tuple[int, int]:
    """MACs of ``q (k^T v)`` per head for ``tokens: [R, C, N]`` querying
    ``context: [R, C, M]`` (default: the tokens themselves), split by the
    spike operand that drives each matmul: ``k^T v`` costs ``R M C C_v / h``
    (k spikes), ``q (k^T v)`` ``R N C C_v / h`` (q spikes).

    Returns:
        tuple[int, int]: ``(k side, q side)``.
    """
    rows, channels, num_queries = tokens.shape
    num_keys = num_queries if context is None else context.shape[2]
    per_token = rows * channels * v_channels // num_heads
    return num_keys * per_token, num_queries * per_token


def query_and_key_inputs(
    tokens: torch.Tensor,
    token_mask: Optional[torch.Tensor],
    context: Optional[torch.Tensor],
    context_mask: Optional[torch.Tensor],
    encode: Optional[Callable[[torch.Tensor], torch.Tensor]] = None
) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """The inputs of an attention's query and key / value projections.

    Queries come from ``tokens``; keys and values from ``context`` when it
    is given (all tokens of the map, ``pruning.attention_context='all'``),
    else from the same tokens.

    Args:
        tokens (Tensor): ``[R, C, K]`` tokens that query.
        token_mask (Tensor, optional): ``[R, K]`` bool, False for filler
            slots.
        context (Tensor, optional): ``[R, C, M]`` tokens that give keys and
            values instead.
        context_mask (Tensor, optional): ``[R, M]`` bool, False for context
            tokens left out (padding).
        encode (callable, optional): Applied once to each distinct input,
            e.g. the attention's input neuron.

    Returns:
        tuple: the ``[R, C, K]`` query input, the ``[R, C, M]`` key / value
        input and its ``[R, M]`` mask (None = every token counts).
    """
    if encode is not None:
        tokens = encode(tokens)
    if context is None:
        return tokens, tokens, token_mask
    if encode is not None:
        context = encode(context)
    return tokens, context, context_mask


def mask_keys(keys: torch.Tensor,
              key_mask: Optional[torch.Tensor]) -> torch.Tensor:
    """Zero ``keys: [R, C, M]`` (or any key-side tensor summed over tokens)
    where ``key_mask: [R, M]`` is False, so filler slots and padding add
    nothing to another token's output; None keeps every token."""
    if key_mask is None:
        return keys
    return keys * key_mask.unsqueeze(1).to(keys.dtype)
