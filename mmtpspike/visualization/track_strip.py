"""A picture strip of single-object tracking: event frames of a sequence
with the ground-truth box and each tracker's predicted box."""
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np

from .event_frames import event_frame_image
from .token_maps import STOPPED_TINT, _fit, _titled

GT_COLOUR = (0, 160, 0)  # BGR green
PRED_COLOUR = (0, 0, 220)  # BGR red


def draw_box(image: np.ndarray, box_xywh: Sequence[float], colour,
             scale: float = 1.) -> None:
    """Draw an ``(x, y, w, h)`` box (frame pixels) on ``image`` in place;
    nothing for a box that is not finite or has no area (absent
    target)."""
    box = np.asarray(box_xywh, np.float64) * scale
    if not np.isfinite(box).all() or box[2] <= 0 or box[3] <= 0:
        return
    x0, y0 = np.round(box[:2]).astype(int)
    x1, y1 = np.round(box[:2] + box[2:]).astype(int)
    cv2.rectangle(image, (int(x0), int(y0)), (int(x1), int(y1)), colour)


#: a search window ``(x0, y0, side)`` in frame pixels and the ``[Hs, Ws]``
#: bool map of the search tokens that ran a block there
SearchTokens = Tuple[Sequence[float], np.ndarray]


def tint_stopped(image: np.ndarray, tokens: SearchTokens,
                 scale: float = 1.) -> None:
    """Tint the search tokens that stopped (``~kept``) red over their
    cells of the search window, in place (cells outside the image are
    cut)."""
    (x0, y0, side), kept = tokens
    rows, cols = kept.shape
    height, width = image.shape[:2]
    for row, col in zip(*np.nonzero(~np.asarray(kept, bool))):
        top = int(round((y0 + row * side / rows) * scale))
        left = int(round((x0 + col * side / cols) * scale))
        bottom = int(round((y0 + (row + 1) * side / rows) * scale))
        right = int(round((x0 + (col + 1) * side / cols) * scale))
        top, left = max(top, 0), max(left, 0)
        bottom, right = min(bottom, height), min(right, width)
        if top < bottom and left < right:
            cell = image[top:bottom, left:right].astype(np.float32)
            image[top:bottom, left:right] = (
                0.5 * cell + 0.5 * STOPPED_TINT).astype(np.uint8)


def draw_track_strip(frames: Sequence[np.ndarray],
                     frame_indices: Sequence[int],
                     gt_boxes: np.ndarray,
                     predictions: Dict[str, np.ndarray],
                     max_side: int = 200,
                     search_tokens: Optional[Dict[str, Sequence[Optional[
                         SearchTokens]]]] = None) -> np.ndarray:
    """One row per tracker: the event frames, each with the ground truth
    (green) and the tracker's box (red); with ``search_tokens``, the search
    tokens a pruned tracker stopped are tinted red over its search window.

    Args:
        frames (list[np.ndarray]): ``F`` event frames, each ``[T, 2, H, W]``
            (or ``[T * 2, H, W]``).
        frame_indices (list[int]): ``F`` frame numbers, for the titles.
        gt_boxes (np.ndarray): ``[F, 4]`` ground truth ``(x, y, w, h)``,
            frame pixels (NaN: absent).
        predictions (dict[str, np.ndarray]): Tracker name -> ``[F, 4]``
            predicted boxes, frame pixels.
        max_side (int): Longer side of each tile in pixels.
        search_tokens (dict, optional): Tracker name -> per frame, None or
            ``(window, kept)`` (see :data:`SearchTokens`).

    Returns:
        np.ndarray: BGR uint8 ``[rows * (TITLE_HEIGHT + h), F * w, 3]``.
    """
    if not len(frames) == len(frame_indices) == len(gt_boxes):
        raise ValueError(f'{len(frames)} frames, {len(frame_indices)} '
                         f'indices and {len(gt_boxes)} boxes: one each')
    if not predictions:
        raise ValueError('no predictions to draw')
    pictures = [event_frame_image(frame) for frame in frames]
    rows = []
    for name, boxes in predictions.items():
        if len(boxes) != len(frames):
            raise ValueError(f'{name}: {len(boxes)} boxes for '
                             f'{len(frames)} frames')
        tiles = []
        tokens = (search_tokens or {}).get(name) or [None] * len(frames)
        for picture, index, gt, pred, frame_tokens in zip(
                pictures, frame_indices, gt_boxes, boxes, tokens):
            tile = _fit(picture, max_side).copy()
            scale = tile.shape[1] / picture.shape[1]
            if frame_tokens is not None:
                tint_stopped(tile, frame_tokens, scale)
            draw_box(tile, gt, GT_COLOUR, scale)
            draw_box(tile, pred, PRED_COLOUR, scale)
            tiles.append(_titled(tile, f'{name} #{index}'))
        rows.append(np.concatenate(tiles, axis=1))
    return np.concatenate(rows)
