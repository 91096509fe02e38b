"""Stochastic depth for timestep-folded spiking batches."""
from typing import List

import torch
import torch.nn as nn


def drop_path_rates(drop_path_rate: float, num_blocks: int) -> List[float]:
    """Per-block stochastic depth rates, rising linearly from 0 to
    ``drop_path_rate`` over ``num_blocks`` blocks.

    Raises:
        ValueError: ``drop_path_rate`` outside ``[0, 1)``.
    """
    if not 0 <= drop_path_rate < 1:
        raise ValueError(f'drop_path_rate must be in [0, 1), got '
                         f'{drop_path_rate}')
    return torch.linspace(0, drop_path_rate, num_blocks).tolist()


class ImageDropPath(nn.Module):
    """Stochastic depth that drops a residual branch per image.

    Spiking layers fold the ``T`` timesteps of ``B`` images into one
    timestep-major batch of ``R = T * B`` rows (row ``r = t * B + b``). A
    per-row decision would drop an image's branch at some timesteps only;
    here one decision per image is shared by its ``T`` rows. Kept branches
    are scaled by ``1 / (1 - drop_prob)``, so the expectation is unchanged;
    in eval mode the input passes through. For ``T = 1`` the random draws
    and results are those of the usual per-sample drop path.

    Args:
        drop_prob (float): Probability of dropping an image's branch, in
            ``[0, 1)``.
        num_timesteps (int): ``T``, the rows per image. Default: 1.
    """

    def __init__(self, drop_prob: float, num_timesteps: int = 1) -> None:
        super().__init__()
        if not 0 <= drop_prob < 1:
            raise ValueError(f'drop_prob must be in [0, 1), got {drop_prob}')
        if num_timesteps < 1:
            raise ValueError(f'num_timesteps must be >= 1, got '
                             f'{num_timesteps}')
        self.drop_prob = drop_prob
        self.num_timesteps = num_timesteps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[T * B, ...]`` -> same, each image's rows kept or zeroed
        together."""
        if not self.training or self.drop_prob == 0:
            return x
        rows = x.shape[0]
        if rows % self.num_timesteps:
            raise ValueError(f'{rows} rows are not T={self.num_timesteps} '
                             'timesteps of whole images')
        keep_prob = 1 - self.drop_prob
        ones = (1, ) * (x.dim() - 1)
        draws = torch.rand((rows // self.num_timesteps, ) + ones,
                           dtype=x.dtype, device=x.device)
        keep = (keep_prob + draws).floor_().repeat(self.num_timesteps, *ones)
        return x.div(keep_prob) * keep

    def extra_repr(self) -> str:
        return (f'drop_prob={self.drop_prob}, '
                f'num_timesteps={self.num_timesteps}')
