"""Token-attention arithmetic shared by the spiking attentions."""
from typing import Optional, Tuple

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
