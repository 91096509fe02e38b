"""One-pass evaluation (OPE) of single-object tracking, as OTB / got10k /
LaSOT define it: per-frame overlap and centre error of the predicted box
against the ground truth, summarised as the success AUC, the precision at
20 px and the normalised precision.

Boxes are ``[N, 4]`` arrays of ``(x, y, w, h)`` (top-left corner and size,
pixels), one row per frame. Definitions (checked against the got10k
toolkit 0.1.3 ``ExperimentOTB``, pytracking's ``extract_results`` and the
LaSOT MATLAB toolkit):

- IoU: continuous boxes, ``overlap / union``. The toolkits' ``+1`` pixel
  conventions (pytracking, OTB: right edge ``x + w - 1``, overlap
  ``r - l + 1``) give the same overlap, so no ``+1`` is applied.
- Centre error: Euclidean distance of the box centres in pixels. The
  toolkits' centre ``x + (w - 1) / 2`` shifts both centres alike, so the
  distance is that of ``x + w / 2``.
- Success curve: share of frames with IoU strictly above each threshold of
  :data:`IOU_THRESHOLDS` (0, 0.05, ..., 1); success AUC = mean of the 21
  values (OTB, got10k ``success_score``, pytracking AUC). GOT-10k's own
  benchmark reports the average overlap instead (the limit of this mean
  for many thresholds; its curve has 101 thresholds).
- Precision curve: share of frames with a centre error of at most each of
  :data:`PIXEL_THRESHOLDS` (0, 1, ..., 50 px); precision = the value at
  20 px.
- Normalised precision (LaSOT, TrackingNet): the centre offset divided per
  axis by the ground-truth width / height, then its length; curve over
  :data:`NORMALISED_THRESHOLDS` (0, 0.01, ..., 0.5); normalised
  precision = the value at 0.2, as the LaSOT toolkit ranks and pytracking
  reports (``normalised_precision_auc``, the mean over the curve, is the
  TrackingNet paper's / got10k-LaSOT fork's variant).
- Frames whose ground truth is missing (NaN) or empty (``w <= 0`` or
  ``h <= 0``: the target is absent) are left out of every curve (got10k's
  UAV123 / LaSOT experiments; the LaSOT toolkit and pytracking keep them in
  the denominator as failures).
"""
from typing import Dict

import numpy as np

#: IoU thresholds of the success plot (OTB, got10k: 0, 0.05, ..., 1)
IOU_THRESHOLDS = np.linspace(0, 1, 21)
#: centre-error thresholds of the precision plot, pixels (0, 1, ..., 50)
PIXEL_THRESHOLDS = np.arange(0, 51)
#: precision is read at this centre error, pixels
PRECISION_AT_PIXELS = 20
#: thresholds of the normalised precision plot (LaSOT: 0, 0.01, ..., 0.5)
NORMALISED_THRESHOLDS = np.arange(0, 51) / 100
#: normalised precision is read at this normalised centre error
NORMALISED_PRECISION_AT = 0.2


def scored_frames(gt_xywh: np.ndarray) -> np.ndarray:
    """``[N]`` bool: frames whose ground truth is a finite box of positive
    size."""
    gt_xywh = np.asarray(gt_xywh, dtype=np.float64)
    finite = np.isfinite(gt_xywh).all(1)
    sized = np.zeros(len(gt_xywh), dtype=bool)
    sized[finite] = (gt_xywh[finite, 2] > 0) & (gt_xywh[finite, 3] > 0)
    return sized


def box_ious(pred_xywh: np.ndarray, gt_xywh: np.ndarray) -> np.ndarray:
    """``[N]`` IoU of each frame's predicted and ground-truth box, in
    [0, 1] (0 when they do not overlap or the prediction is empty)."""
    pred = np.asarray(pred_xywh, dtype=np.float64)
    gt = np.asarray(gt_xywh, dtype=np.float64)
    top_left = np.maximum(pred[:, :2], gt[:, :2])
    bottom_right = np.minimum(pred[:, :2] + pred[:, 2:], gt[:, :2] + gt[:, 2:])
    overlap = np.clip(bottom_right - top_left, 0, None).prod(1)
    union = (np.clip(pred[:, 2:], 0, None).prod(1) + gt[:, 2:].prod(1) -
             overlap)
    # clipped: in floating point (x + w) - x can exceed w, which would put
    # a perfect prediction above the last success threshold (IoU 1)
    return np.clip(overlap / np.maximum(union, np.finfo(np.float64).eps), 0,
                   1)


def centre_errors(pred_xywh: np.ndarray, gt_xywh: np.ndarray,
                  normalised: bool = False) -> np.ndarray:
    """``[N]`` distance between box centres, in pixels, or with each axis
    divided by the ground-truth box's size (``normalised``)."""
    pred = np.asarray(pred_xywh, dtype=np.float64)
    gt = np.asarray(gt_xywh, dtype=np.float64)
    offset = (pred[:, :2] + pred[:, 2:] / 2) - (gt[:, :2] + gt[:, 2:] / 2)
    if normalised:
        offset = offset / gt[:, 2:]
    return np.sqrt((offset**2).sum(1))


def ope_scores(pred_xywh: np.ndarray, gt_xywh: np.ndarray) -> Dict:
    """Success, precision and normalised precision of one sequence.

    Args:
        pred_xywh (np.ndarray): ``[N, 4]`` predicted boxes.
        gt_xywh (np.ndarray): ``[N, 4]`` ground-truth boxes.

    Returns:
        dict: The summary of :func:`summarise_curves` (``success_auc``,
        ``precision``, ``normalised_precision``,
        ``normalised_precision_auc``), the three curves
        (``success_curve`` over :data:`IOU_THRESHOLDS`,
        ``precision_curve`` over :data:`PIXEL_THRESHOLDS`,
        ``normalised_precision_curve`` over
        :data:`NORMALISED_THRESHOLDS`) and ``num_frames`` scored.

    Raises:
        ValueError: The two arrays differ in length or are not ``[N, 4]``,
            or no frame has a ground-truth box.

    Example:
        >>> gt = np.array([[10., 10., 20., 20.]] * 4)
        >>> pred = gt + [[0, 0, 0, 0], [5, 0, 0, 0], [30, 0, 0, 0],
        ...              [0, 0, 0, 0]]
        >>> scores = ope_scores(pred, gt)
        >>> round(scores['precision'], 2), scores['num_frames']
        (0.75, 4)
    """
    pred = np.asarray(pred_xywh, dtype=np.float64)
    gt = np.asarray(gt_xywh, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim != 2 or pred.shape[1] != 4:
        raise ValueError(f'OPE needs [N, 4] predictions and ground truth of '
                         f'one length, got {pred.shape} and {gt.shape}')
    scored = scored_frames(gt)
    if not scored.any():
        raise ValueError('OPE: no frame has a ground-truth box to score')
    pred, gt = pred[scored], gt[scored]
    ious = box_ious(pred, gt)
    errors = centre_errors(pred, gt)
    normalised = centre_errors(pred, gt, normalised=True)
    success = (ious[None] > IOU_THRESHOLDS[:, None]).mean(1)
    precision = (errors[None] <= PIXEL_THRESHOLDS[:, None]).mean(1)
    normalised_precision = (
        normalised[None] <= NORMALISED_THRESHOLDS[:, None]).mean(1)
    return dict(
        summarise_curves(success, precision, normalised_precision),
        success_curve=success,
        precision_curve=precision,
        normalised_precision_curve=normalised_precision,
        num_frames=int(scored.sum()))


def summarise_curves(success_curve: np.ndarray, precision_curve: np.ndarray,
                     normalised_precision_curve: np.ndarray) -> Dict:
    """The OPE numbers of a success, precision and normalised precision
    curve (one sequence's, or their mean over sequences).

    Returns:
        dict: ``success_auc`` (mean of the success curve),
        ``precision`` (precision curve at 20 px), ``normalised_precision``
        (normalised curve at 0.2) and ``normalised_precision_auc`` (mean of
        the normalised curve), floats in [0, 1].
    """
    at_normalised = int(
        np.argmin(np.abs(NORMALISED_THRESHOLDS - NORMALISED_PRECISION_AT)))
    return dict(
        success_auc=float(np.mean(success_curve)),
        precision=float(precision_curve[PRECISION_AT_PIXELS]),
        normalised_precision=float(normalised_precision_curve[at_normalised]),
        normalised_precision_auc=float(np.mean(normalised_precision_curve)))
