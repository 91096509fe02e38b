"""Draw which tokens each transformer block kept and how they scored."""
from typing import List, Optional, Sequence

import cv2
import numpy as np

from mmtpspike.models.pruning import TokenRecord

TITLE_HEIGHT = 18
STOPPED_TINT = np.array([40, 40, 200], dtype=np.float32)  # BGR red
PADDING_TINT = np.array([80, 80, 80], dtype=np.float32)


def _fit(image: np.ndarray, max_side: int) -> np.ndarray:
    """Downscale so that the longer side is at most ``max_side``."""
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale == 1.0:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _upsample(token_map: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour upsampling of an ``[h, w]`` map to the tile."""
    return cv2.resize(token_map.astype(np.float32), (width, height),
                      interpolation=cv2.INTER_NEAREST)


def kept_overlay(image: np.ndarray, kept: np.ndarray,
                 valid: np.ndarray) -> np.ndarray:
    """Image with early-stopped tokens tinted red and padding grey."""
    height, width = image.shape[:2]
    stopped = _upsample(valid & ~kept, height, width)[..., None]
    padding = _upsample(~valid, height, width)[..., None]
    out = image.astype(np.float32)
    out = out * (1 - 0.6 * stopped) + 0.6 * stopped * STOPPED_TINT
    out = out * (1 - 0.8 * padding) + 0.8 * padding * PADDING_TINT
    return out.clip(0, 255).astype(np.uint8)


def score_heatmap(image: np.ndarray, scores: Optional[np.ndarray],
                  valid: np.ndarray) -> np.ndarray:
    """Scores rank-normalised over valid tokens, as a JET heat map blended
    with the image (plain image for a dense block)."""
    if scores is None:
        return image.copy()
    height, width = image.shape[:2]
    ranks = np.zeros_like(scores, dtype=np.float32)
    order = np.argsort(scores[valid], kind='stable')
    ranks[valid] = np.argsort(order, kind='stable') / max(len(order) - 1, 1)
    heat = cv2.applyColorMap(
        (_upsample(ranks, height, width) * 255).astype(np.uint8),
        cv2.COLORMAP_JET)
    return cv2.addWeighted(image, 0.4, heat, 0.6, 0)


def _titled(tile: np.ndarray, title: str) -> np.ndarray:
    bar = np.full((TITLE_HEIGHT, tile.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, title, (2, TITLE_HEIGHT - 5), cv2.FONT_HERSHEY_SIMPLEX,
                0.38, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, tile])


def draw_token_grid(image: np.ndarray,
                    records: Sequence[TokenRecord],
                    row: int = 0,
                    max_side: int = 320) -> np.ndarray:
    """A PNG-ready grid: per transformer block, kept tokens (top) and the
    score heat map (bottom).

    Args:
        image (np.ndarray): BGR uint8 ``[H, W, 3]`` image as fed to the
            backbone (before padding).
        records (list[TokenRecord]): the backbone's ``token_records``.
        row (int): which image of the batch (``0 <= row < B``).
        max_side (int): longer side of each tile in pixels.

    Returns:
        np.ndarray: BGR uint8 ``[2 * (TITLE_HEIGHT + h), n_blocks * w, 3]``
        where ``(h, w)`` is the tile size.
    """
    if not records:
        raise ValueError('no token records: the backbone has no pruner or '
                         'has not run yet')
    tile = _fit(image, max_side)
    columns: List[np.ndarray] = []
    for record in records:
        kept = record.kept[row].cpu().numpy()
        valid = record.valid[row].cpu().numpy()
        scores = None if record.scores is None else \
            record.scores[row].float().cpu().numpy()
        # crop the token maps to the image's own (unpadded) area
        rows_used = int(valid.any(1).sum())
        cols_used = int(valid.any(0).sum())
        kept, valid = kept[:rows_used, :cols_used], valid[:rows_used,
                                                          :cols_used]
        if scores is not None:
            scores = scores[:rows_used, :cols_used]
        ratio = float((kept & valid).sum() / max(valid.sum(), 1))
        name = record.block_name.replace('stages.', 's').replace(
            '.blocks.', 'b')
        top = _titled(kept_overlay(tile, kept, valid),
                      f'{name} kept {ratio:.0%}')
        bottom = _titled(score_heatmap(tile, scores, valid), f'{name} score')
        columns.append(np.concatenate([top, bottom]))
    return np.concatenate(columns, axis=1)
