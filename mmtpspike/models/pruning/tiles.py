"""Tile-granular early stopping in the convolutional blocks.

With ``pruning.conv_tile=t`` a conv block stops whole ``t x t`` tiles of
tokens instead of single tokens: token scores are averaged over the valid
tokens of each tile, whole tiles are kept or stopped (the ratio counts
tiles), and the kept tiles run the block's ``3 x 3`` channel MLP as ordinary
dense convolutions on a batch of tiles, each read with a ``k // 2`` pixel
halo (valid padding, so every output is one the block needs).

:class:`TileSelection` holds the kept tiles; :class:`TileRows` turns them
into the flat row indices the block gathers and writes with one
``index_select`` / ``index_add_`` per map, in channels-last storage:

* ``halo_rows``: the haloed tiles in the map's rows ``[R * H * W, C]``;
* ``live_rows``: the tile positions that are real kept tokens (inside the
  map and the valid area, in a real tile): only they are normalised and
  fire, so BN statistics in training see the kept tokens only;
* ``hidden_rows``: the same haloed tiles in the *compact* hidden map, the
  live positions' hidden spikes ``[L, C']``; every other position (stopped,
  outside the image or padding) reads zero, so stopped positions emit no
  hidden spikes without a full hidden map;
* ``output_rows``: the map row of each live position.
"""
import math
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from .restore import Selection


def tile_grid(spatial_shape: Tuple[int, int], tile: int) -> Tuple[int, int]:
    """``(ceil(H / t), ceil(W / t))`` tiles of an ``(H, W)`` map."""
    height, width = spatial_shape
    return math.ceil(height / tile), math.ceil(width / tile)


def tile_maps(values: torch.Tensor, spatial_shape: Tuple[int, int],
              tile: int) -> torch.Tensor:
    """``[R, H * W]`` -> ``[R, nH, nW, t * t]``, zero-padded at the bottom
    and right to whole tiles."""
    height, width = spatial_shape
    grid_h, grid_w = tile_grid(spatial_shape, tile)
    padded = F.pad(values.view(-1, height, width),
                   (0, grid_w * tile - width, 0, grid_h * tile - height))
    tiles = padded.view(-1, grid_h, tile, grid_w, tile).transpose(2, 3)
    return tiles.reshape(-1, grid_h, grid_w, tile * tile)


def pool_tile_scores(scores: torch.Tensor, valid: torch.Tensor,
                     spatial_shape: Tuple[int, int], tile: int
                     ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Tile scores: the mean score of each tile's valid tokens.

    Args:
        scores (Tensor): ``[R, N]`` token scores.
        valid (Tensor): ``[R, N]`` bool, tokens inside the image.
        spatial_shape (tuple[int, int]): ``(H, W)``, ``N = H * W``.
        tile (int): ``t``.

    Returns:
        tuple[Tensor, Tensor]: ``[R, n_tiles]`` scores and ``[R, n_tiles]``
        bool, tiles holding at least one valid token.
    """
    weights = valid.to(scores.dtype)
    # invalid tokens may score -inf: they must not reach the sum
    masked = torch.where(valid, scores, torch.zeros_like(scores))
    total = tile_maps(masked, spatial_shape, tile).sum(-1).flatten(1)
    count = tile_maps(weights, spatial_shape, tile).sum(-1).flatten(1)
    return total / count.clamp_min(1), count > 0


def tile_any(mask: torch.Tensor, spatial_shape: Tuple[int, int],
             tile: int) -> torch.Tensor:
    """``[R, N]`` bool -> ``[R, n_tiles]``: tiles with any True token."""
    return tile_maps(mask.to(torch.uint8), spatial_shape,
                     tile).amax(-1).flatten(1).bool()


@dataclass
class TileSelection:
    """The kept tiles of one conv block run.

    Attributes:
        tiles (Selection): kept tiles on the tile grid: ``index [R, K]``
            tile ids (fillers = ``n_tiles``), ``slot_mask``, tile validity
            and the grid shape ``(nH, nW)``.
        tile (int): ``t``.
        valid (Tensor): ``[R, N]`` bool, tokens inside the image.
        spatial_shape (tuple[int, int]): ``(H, W)`` of the token map.
    """

    tiles: Selection
    tile: int
    valid: torch.Tensor
    spatial_shape: Tuple[int, int]

    def kept_map(self) -> torch.Tensor:
        """``[R, N]`` bool: valid tokens of the kept tiles."""
        height, width = self.spatial_shape
        grid_h, grid_w = self.tiles.spatial_shape
        kept = self.tiles.kept_map().view(-1, grid_h, 1, grid_w, 1)
        kept = kept.expand(-1, -1, self.tile, -1, self.tile).reshape(
            -1, grid_h * self.tile, grid_w * self.tile)
        return kept[:, :height, :width].flatten(1) & self.valid


@dataclass
class TileRows:
    """Flat row indices of the kept tiles (see the module docstring).

    Maps are read as their channels-last rows ``[R * H * W, C]``. A tile
    position is *live* when it lies inside the map and the valid area of a
    real (not filler) tile: only live positions are normalised, fire hidden
    spikes and are written back, so BN statistics in training see exactly
    the kept tokens. Halo positions that must read zero (outside the map,
    or no live position there) point at row 0 and are zeroed after the
    gather; they lie on tile borders, so this touches far less memory than a
    zero-padded copy of a map.

    Attributes:
        halo_rows (Tensor): ``[M * (t + 2 h)^2]`` map rows of the haloed
            tiles (``M = R * K`` tile slots); ``halo_dead`` those outside
            the map.
        live_rows (Tensor | None): ``[L]`` live positions among the ``M * t
            * t`` tile positions (tile-major, row-major inside a tile), None
            when every position is live.
        hidden_rows (Tensor): ``[M * (t + 2 h)^2]`` rows of the same halo
            positions among the ``L`` live ones; ``hidden_dead`` those with
            no live position.
        output_rows (Tensor): ``[L]`` map rows of the live positions.
        tile (int): ``t``.
        halo (int): ``h``.
    """

    halo_rows: torch.Tensor
    halo_dead: torch.Tensor
    live_rows: Optional[torch.Tensor]
    hidden_rows: torch.Tensor
    hidden_dead: torch.Tensor
    output_rows: torch.Tensor
    tile: int
    halo: int

    @classmethod
    def build(cls, selection: TileSelection, halo: int) -> 'TileRows':
        """Index the kept tiles of ``selection`` for a conv of kernel
        ``2 halo + 1``."""
        tile, (height, width) = selection.tile, selection.spatial_shape
        grid_w = selection.tiles.spatial_shape[1]
        index = selection.tiles.index
        rows = index.shape[0]
        device = index.device
        tile_id = index.clamp(max=selection.tiles.valid.shape[1] - 1)
        image = torch.arange(rows, device=device)[:, None].expand_as(index)
        image = image.flatten()[:, None, None]
        top = ((tile_id // grid_w) * tile).flatten()[:, None, None]
        left = ((tile_id % grid_w) * tile).flatten()[:, None, None]

        def map_rows(offsets: torch.Tensor):
            """Map rows of the positions ``(top + dy, left + dx)`` of every
            tile (``offsets`` gives ``dy`` / ``dx``; outside the map: row
            0) and whether each lies inside the map."""
            ys, xs = top + offsets[:, None], left + offsets[None, :]
            inside = (ys >= 0) & (ys < height) & (xs >= 0) & (xs < width)
            flat = image * (height * width) + ys * width + xs
            return torch.where(inside, flat, torch.zeros_like(flat)), inside

        halo_rows, halo_inside = map_rows(
            torch.arange(-halo, tile + halo, device=device))
        centre_rows, inside = map_rows(torch.arange(tile, device=device))
        live = inside & selection.tiles.slot_mask.flatten()[:, None, None] \
            & selection.valid[image, centre_rows % (height * width)]
        live_rows = _positions(live.flatten())
        output_rows = centre_rows.flatten().index_select(0, live_rows)
        # live hidden rows: map row -> its rank among the live positions,
        # -1 where no live position is (a scatter: torch 2.1's ONNX exporter
        # cannot export a 1-D index_copy with a data-dependent index)
        inverse = torch.full((rows * height * width, ), -1, dtype=torch.long,
                             device=device).scatter(
            0, output_rows, torch.arange(output_rows.numel(), device=device))
        halo_rows, halo_inside = halo_rows.flatten(), halo_inside.flatten()
        hidden_rows = torch.where(halo_inside,
                                  inverse.index_select(0, halo_rows),
                                  torch.full_like(halo_rows, -1))
        hidden_live = hidden_rows >= 0
        return cls(halo_rows=halo_rows,
                   halo_dead=_positions(~halo_inside),
                   live_rows=None if bool(live.all()) else live_rows,
                   hidden_rows=torch.where(hidden_live, hidden_rows,
                                           torch.zeros_like(hidden_rows)),
                   hidden_dead=_positions(~hidden_live),
                   output_rows=output_rows,
                   tile=tile,
                   halo=halo)

    def gather_halo(self, x: torch.Tensor) -> torch.Tensor:
        """Haloed tiles of a full map: ``[R, C, H, W]`` -> ``[M, C, t +
        2 h, t + 2 h]`` (channels-last storage), zero outside the map."""
        picked = _rows_of(x).index_select(0, self.halo_rows)
        picked.index_fill_(0, self.halo_dead, 0)
        return _as_tiles(picked, self.tile + 2 * self.halo)

    def live(self, tiles: torch.Tensor) -> torch.Tensor:
        """The live positions of ``[M, C, t, t]`` tiles as ``[L, C, 1, 1]``
        (a view when every position is live), for norms and neurons."""
        rows = _rows_of(tiles)
        if self.live_rows is not None:
            rows = rows.index_select(0, self.live_rows)
        return rows[:, :, None, None]

    def gather_hidden_halo(self, hidden: torch.Tensor) -> torch.Tensor:
        """Haloed tiles of the live hidden spikes ``[L, C', 1, 1]`` ->
        ``[M, C', t + 2 h, t + 2 h]``, zero wherever no live position
        is (stopped tokens emit no hidden spikes)."""
        picked = _rows_of(hidden).index_select(0, self.hidden_rows)
        picked.index_fill_(0, self.hidden_dead, 0)
        return _as_tiles(picked, self.tile + 2 * self.halo)

    def add(self, x: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """``x: [R, C, H, W]`` plus ``values: [L, C, 1, 1]`` at the live
        positions, ``x`` elsewhere: a new map in the memory format of ``x``
        (compiled ops downstream, e.g. mmcv's RoIAlign, read their input as
        contiguous NCHW whatever its strides)."""
        rows, channels, height, width = x.shape
        storage = _rows_of(x).clone()
        # in place on the new storage: autograd needs neither operand
        storage.index_add_(0, self.output_rows, _rows_of(values))
        out = storage.view(rows, height, width, channels).permute(0, 3, 1, 2)
        if x.is_contiguous(memory_format=torch.channels_last):
            return out
        return out.contiguous()


def _positions(mask: torch.Tensor) -> torch.Tensor:
    """``[P]`` bool -> the ``[D]`` long positions where it is True."""
    return torch.nonzero(mask).flatten()


def _rows_of(x: torch.Tensor) -> torch.Tensor:
    """``[R, C, H, W]`` -> its channels-last rows ``[R * H * W, C]`` (a
    view of channels-last storage)."""
    return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])


def _as_tiles(rows: torch.Tensor, side: int) -> torch.Tensor:
    """``[M * side * side, C]`` -> ``[M, C, side, side]`` view."""
    return rows.view(-1, side, side, rows.shape[1]).permute(0, 3, 1, 2)
