"""Convolutions evaluated at chosen positions of a map only.

Early stopping in the convolutional stages (``pruning.conv_keep_ratios``)
runs a block's ``3 x 3`` channel MLP at the kept positions alone. A dense
conv would compute every position and throw most away, so
:class:`PositionConv2d` computes exactly the kept outputs with one GEMM:

* **map input** ``[R, C, H, W]`` (every position holds a value): the
  ``k x k`` patches around the kept positions are gathered from the
  zero-padded channels-last map (im2col at ``K`` positions) and multiplied
  by the flattened kernel: ``[R K, k^2 C] @ [k^2 C, O]``;
* **token input** ``[R, C, K]`` (values only at the kept positions, zero
  elsewhere, e.g. the hidden spikes of a channel MLP that ran only there):
  each token is multiplied by all ``k^2`` kernel taps at once, ``[R K, C] @
  [C, k^2 O]``, and the partial sums are added into the output positions
  they reach (the transposed view of the same conv); only kept outputs are
  read back.

Both cost ``K x C x k^2 x O`` MACs, the dense conv's share ``K / N``, and
both return ``[R, O, K]``, so MAC counters that see the output (``numel x
C_in x k^2``) count them right.

* **haloed tiles** ``[M, C, t + k - 1, t + k - 1]`` (tile-granular stopping,
  :mod:`~mmtpspike.models.pruning.tiles`): the ordinary conv without
  padding, ``[M, O, t, t]``, exactly the tiles' outputs.
 Filler slots of a selection (index ``N``,
padding of rows with fewer kept tokens) give garbage outputs that the
restorer drops, and contribute nothing in the token mode.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


def padded_rows(index: torch.Tensor, height: int, width: int,
                pad: int) -> torch.Tensor:
    """Row of each position in the row-stacked, zero-padded channels-last
    map ``[R * (H + 2 pad) * (W + 2 pad), C]``.

    Args:
        index (Tensor): ``[R, K]`` positions in the ``H * W`` map (fillers,
            ``>= H * W``, are clamped to the last position).
        height (int): ``H``.
        width (int): ``W``.
        pad (int): zero padding on each side.

    Returns:
        Tensor: ``[R, K]`` long.
    """
    index = index.clamp(max=height * width - 1)
    padded_width = width + 2 * pad
    plane = (height + 2 * pad) * padded_width
    rows = (index // width + pad) * padded_width + index % width + pad
    offsets = torch.arange(index.shape[0], device=index.device) * plane
    return rows + offsets[:, None]


def kernel_offsets(kernel_size: int, padded_width: int,
                   device: torch.device) -> torch.Tensor:
    """``[k * k]`` row offsets of the kernel taps (row-major ``(ky, kx)``,
    the order of ``weight[:, :, ky, kx]``) in a padded map."""
    half = kernel_size // 2
    taps = torch.arange(kernel_size, device=device) - half
    return (taps[:, None] * padded_width + taps[None, :]).flatten()


def rows_linear(rows: torch.Tensor, weight: torch.Tensor,
                bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``rows @ weight.T + bias`` for ``rows: [M, C_in]``, ``weight:
    [C_out, C_in]``, run as a 1x1 conv on a channels-last view: on CPU the
    oneDNN conv kernels reach a higher rate than ``torch.mm`` on these
    tall-skinny products (measured 1.1-1.6x). Returns ``[M, C_out]``."""
    image = rows.view(1, rows.shape[0], 1, rows.shape[1]).permute(0, 3, 1, 2)
    out = F.conv2d(image, weight[:, :, None, None], bias)
    return out.permute(0, 2, 3, 1).reshape(rows.shape[0], weight.shape[0])


class PositionConv2d(nn.Conv2d):
    """A stride-1 ``'same'`` conv that can run at chosen positions only.

    ``conv(x)`` is the ordinary dense conv. ``conv(x, index)`` returns the
    outputs at ``index`` only, ``[R, O, K]``: ``x`` is either the full map
    ``[R, C, H, W]`` or ``[R, C, K]`` tokens that hold the only non-zero
    inputs, at the same positions (``spatial_shape`` then gives ``(H,
    W)``). Parameters and state-dict keys are those of ``nn.Conv2d``.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int): Odd kernel size.
        bias (bool): Learnable bias. Default: False.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int = 3,
                 bias: bool = False) -> None:
        if kernel_size % 2 == 0:
            raise ValueError(f'PositionConv2d needs an odd kernel_size, got '
                             f'{kernel_size}')
        super().__init__(in_channels, out_channels, kernel_size,
                         padding=kernel_size // 2, bias=bias)

    def forward(self,
                x: torch.Tensor,
                index: Optional[torch.Tensor] = None,
                slot_mask: Optional[torch.Tensor] = None,
                spatial_shape: Optional[tuple] = None,
                tiles: bool = False) -> torch.Tensor:
        """Dense conv, its outputs at ``index``, or at the centres of
        haloed tiles.

        Args:
            x (Tensor): ``[R, C, H, W]`` map, or ``[R, C, K]`` tokens at
                ``index`` (zero elsewhere).
            index (Tensor, optional): ``[R, K]`` long output positions in
                the flattened ``H * W`` map; None runs the dense conv.
            slot_mask (Tensor, optional): ``[R, K]`` bool, False for filler
                slots (token input only: they must not spread).
            spatial_shape (tuple[int, int], optional): ``(H, W)``, needed
                for token input.
            tiles (bool): ``x`` is a batch of haloed tiles ``[M, C, t + k -
                1, t + k - 1]``: returns their ``[M, O, t, t]`` centres (no
                padding). Not with ``index``.

        Returns:
            Tensor: ``[R, O, H, W]`` dense, ``[M, O, t, t]`` for tiles, else
            ``[R, O, K]``.
        """
        if tiles:
            if index is not None:
                raise ValueError('PositionConv2d takes haloed tiles or '
                                 'positions, not both')
            return F.conv2d(x, self.weight, self.bias)
        if index is None:
            return super().forward(x)
        if x.dim() == 4:
            return self._at_positions(x, index)
        if spatial_shape is None:
            raise ValueError('PositionConv2d on [R, C, K] tokens needs the '
                             'spatial_shape (H, W) of their map')
        return self._from_positions(x, index, slot_mask, spatial_shape)

    @property
    def _pad(self) -> int:
        return self.kernel_size[0] // 2

    def _at_positions(self, x: torch.Tensor,
                      index: torch.Tensor) -> torch.Tensor:
        """Gathered im2col GEMM: ``[R, C, H, W]`` -> ``[R, O, K]``."""
        rows, channels, height, width = x.shape
        pad = self._pad
        # pad in channels-last order: a view of channels-last input
        flat = F.pad(x.permute(0, 2, 3, 1),
                     (0, 0, pad, pad, pad, pad)).reshape(-1, channels)
        taps = padded_rows(index, height, width, pad)[..., None] + \
            kernel_offsets(self.kernel_size[0], width + 2 * pad, x.device)
        patches = flat.index_select(0, taps.flatten()).view(
            -1, taps.shape[-1] * channels)
        weight = self.weight.permute(0, 2, 3, 1).reshape(
            self.out_channels, -1)
        out = rows_linear(patches, weight, self.bias)
        return out.view(rows, -1, self.out_channels).transpose(1, 2)

    def _from_positions(self, tokens: torch.Tensor, index: torch.Tensor,
                        slot_mask: Optional[torch.Tensor],
                        spatial_shape: tuple) -> torch.Tensor:
        """Scattered tap GEMM: ``[R, C, K]`` -> ``[R, O, K]``."""
        rows, channels, _ = tokens.shape
        height, width = spatial_shape
        pad = self._pad
        if slot_mask is not None:
            tokens = tokens * slot_mask[:, None].to(tokens.dtype)
        # partial[j, t] = weight_t @ x_j reaches the output at row_j - off_t
        weight = self.weight.permute(2, 3, 0, 1).reshape(-1, channels)
        partial = rows_linear(tokens.transpose(1, 2).reshape(-1, channels),
                              weight)
        positions = padded_rows(index, height, width, pad)
        targets = positions[..., None] - kernel_offsets(
            self.kernel_size[0], width + 2 * pad, tokens.device)
        plane = (height + 2 * pad) * (width + 2 * pad)
        # scatter_add (not index_add): ONNX ScatterElements adds repeated
        # targets with reduction='add'
        targets = targets.flatten()[:, None].expand(-1, self.out_channels)
        out = partial.new_zeros(rows * plane, self.out_channels).scatter_add(
            0, targets, partial.view(-1, self.out_channels))
        out = out.index_select(0, positions.flatten())
        if self.bias is not None:
            out = out + self.bias
        return out.view(rows, -1, self.out_channels).transpose(1, 2)
