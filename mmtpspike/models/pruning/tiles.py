"""Tile-granular early stopping in the convolutional blocks.

With ``pruning.conv_tile=t`` a conv block stops whole ``t x t`` tiles of
tokens instead of single tokens: token scores are averaged over the valid
tokens of each tile, whole tiles are kept or stopped (the ratio counts
tiles), and the kept tiles run the block's ``3 x 3`` channel MLP as ordinary
dense convolutions on a batch of tiles, each read with a ``k // 2`` pixel
halo (valid padding, so every output is one the block needs).

:class:`TileSelection` holds the kept tiles; :class:`TileRows` turns them
into the flat row indices the block gathers and writes with one
``index_select`` / ``index_copy`` per map, in channels-last storage:

* ``halo_rows``: the haloed tiles in the row-stacked, zero-padded map
  ``[R * (Hp + 2 h) * (Wp + 2 h), C]`` (``Hp, Wp`` rounded up to the tile);
* ``hidden_rows``: the same haloed tiles in the *compact* hidden map, the
  kept tiles' own outputs ``[M * t * t, C']`` followed by one zero row that
  every position outside a kept tile (stopped, outside the image or padding)
  reads, so stopped positions emit no hidden spikes without a full map;
* ``output_rows``: each tile position in ``[R * H * W, C]`` storage, or the
  scratch row ``R * H * W`` for filler tiles and positions outside the map
  or the valid area.
"""
import math
from dataclasses import dataclass
from typing import Tuple

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

    Attributes:
        halo_rows (Tensor): ``[M * (t + 2 h)^2]`` rows of the haloed tiles
            in the row-stacked padded map (``M = R * K`` tile slots).
        hidden_rows (Tensor): ``[M * (t + 2 h)^2]`` rows of the same
            positions in the compact hidden map ``[M * t * t + 1, C']``.
        output_rows (Tensor): ``[M * t * t]`` rows of the tile positions in
            ``[R * H * W + 1, C]`` storage (the last row is scratch).
        padding (tuple[int, int, int, int]): ``(left, right, top, bottom)``
            zero padding of an ``(H, W)`` map to the padded map.
        tile (int): ``t``.
        halo (int): ``h``.
    """

    halo_rows: torch.Tensor
    hidden_rows: torch.Tensor
    output_rows: torch.Tensor
    padding: Tuple[int, int, int, int]
    tile: int
    halo: int

    @classmethod
    def build(cls, selection: TileSelection, halo: int) -> 'TileRows':
        """Index the kept tiles of ``selection`` for a conv of kernel
        ``2 halo + 1``."""
        tile, (height, width) = selection.tile, selection.spatial_shape
        grid_h, grid_w = selection.tiles.spatial_shape
        index = selection.tiles.index
        rows, slots = index.shape
        device = index.device
        real = selection.tiles.slot_mask.flatten()
        tile_id = index.clamp(max=grid_h * grid_w - 1)
        row_id = torch.arange(rows, device=device)[:, None].expand_as(index)
        padded_h = grid_h * tile + 2 * halo
        padded_w = grid_w * tile + 2 * halo
        # top-left corner of each haloed tile in the padded map
        corner = row_id * (padded_h * padded_w) + \
            (tile_id // grid_w) * tile * padded_w + (tile_id % grid_w) * tile
        side = tile + 2 * halo
        span = torch.arange(side, device=device)
        halo_offsets = (span[:, None] * padded_w + span[None, :]).flatten()
        halo_rows = (corner.flatten()[:, None] + halo_offsets).flatten()

        # the tile positions: token coordinates and whether they are real
        inner = torch.arange(tile, device=device)
        ys = ((tile_id // grid_w) * tile).flatten()[:, None, None] + \
            inner[None, :, None]
        xs = ((tile_id % grid_w) * tile).flatten()[:, None, None] + \
            inner[None, None, :]
        inside = (ys < height) & (xs < width)
        token = (ys.clamp(max=height - 1) * width + xs.clamp(max=width - 1))
        image_row = row_id.flatten()[:, None, None]
        live = inside & real[:, None, None] & selection.valid[
            image_row, token]
        live = live.flatten()
        scratch = rows * height * width
        output_rows = torch.where(
            live, (image_row * height * width + token).flatten(),
            torch.full_like(live, scratch, dtype=torch.long))

        # compact hidden rows: position -> its row among the kept tiles'
        # outputs, every other position -> the zero row at the end
        # (one more entry, a scratch slot that dead positions write to)
        zero_row = rows * slots * tile * tile
        plane = rows * padded_h * padded_w
        centres = (corner.flatten()[:, None, None] + halo * padded_w + halo
                   + inner[None, :, None] * padded_w
                   + inner[None, None, :]).flatten()
        compact = torch.arange(zero_row, device=device)
        inverse = torch.full((plane + 1, ), zero_row, dtype=torch.long,
                             device=device).index_copy(
            0, torch.where(live, centres, torch.full_like(centres, plane)),
            torch.where(live, compact, torch.full_like(compact, zero_row)))
        return cls(halo_rows=halo_rows,
                   hidden_rows=inverse.index_select(0, halo_rows),
                   output_rows=output_rows,
                   padding=(halo, grid_w * tile - width + halo, halo,
                            grid_h * tile - height + halo),
                   tile=tile,
                   halo=halo)

    def gather_halo(self, x: torch.Tensor) -> torch.Tensor:
        """Haloed tiles of a full map: ``[R, C, H, W]`` -> ``[M, C, t +
        2 h, t + 2 h]`` (channels-last storage)."""
        channels = x.shape[1]
        padded = F.pad(x.permute(0, 2, 3, 1), (0, 0) + self.padding)
        picked = padded.reshape(-1, channels).index_select(0, self.halo_rows)
        return self._as_tiles(picked, self.tile + 2 * self.halo)

    def gather_hidden_halo(self, hidden: torch.Tensor) -> torch.Tensor:
        """Haloed tiles of the compact hidden map: the kept tiles' outputs
        ``[M, C', t, t]`` -> ``[M, C', t + 2 h, t + 2 h]``, zero wherever
        no kept tile put a value."""
        channels = hidden.shape[1]
        rows = F.pad(hidden.permute(0, 2, 3, 1).reshape(-1, channels),
                     (0, 0, 0, 1))
        picked = rows.index_select(0, self.hidden_rows)
        return self._as_tiles(picked, self.tile + 2 * self.halo)

    def add(self, x: torch.Tensor, tiles: torch.Tensor) -> torch.Tensor:
        """``x: [R, C, H, W]`` plus ``tiles: [M, C, t, t]`` at the live tile
        positions, ``x`` elsewhere (a new, channels-last map)."""
        rows, channels, height, width = x.shape
        storage = F.pad(x.permute(0, 2, 3, 1).reshape(-1, channels),
                        (0, 0, 0, 1))  # + the scratch row
        updated = storage.index_select(0, self.output_rows) + \
            tiles.permute(0, 2, 3, 1).reshape(-1, channels)
        storage = storage.index_copy(0, self.output_rows, updated)
        return storage[:-1].view(rows, height, width,
                                 channels).permute(0, 3, 1, 2)

    @staticmethod
    def _as_tiles(rows: torch.Tensor, side: int) -> torch.Tensor:
        """``[M * side * side, C]`` -> ``[M, C, side, side]`` view."""
        channels = rows.shape[1]
        return rows.view(-1, side, side, channels).permute(0, 3, 1, 2)
