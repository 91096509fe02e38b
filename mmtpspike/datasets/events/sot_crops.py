"""Square crops around a tracked box: the geometry shared by the training
pipeline (template and search crops, :class:`~.sot_transforms.SOTPairCrops`)
and the tracker (test-time search crops), in torch so that both run the one
implementation.

Conventions (OSTrack / SDTrack):

- boxes are ``(x, y, w, h)``: top-left corner and size, in pixels, with
  pixel ``(i, j)`` (row, column) covering the unit square
  ``[j, j + 1) x [i, i + 1)``;
- a crop window is ``(x0, y0, side)``: the square
  ``[x0, x0 + side) x [y0, y0 + side)`` centred on the box, of side
  ``context * sqrt(w * h)`` (template context 2, search context 4);
- a window is resampled to ``out_size x out_size`` crop pixels, so one crop
  pixel is ``side / out_size`` frame pixels; :func:`box_to_crop` and
  :func:`box_from_crop` map boxes between the two (exact inverses).

Resampling is the area-weighted mean (``cv2.INTER_AREA`` generalised to
fractional windows): each crop pixel is the mean of the frame over its
square footprint, frame pixels counting by the area they share with it, and
everything outside the frame reads as zero ("no events"). Event counts
thus keep their per-pixel scale whatever the window size (a box twice as
large does not give twice the counts), no event between samples is lost
when the window is shrunk (bilinear sampling would drop most of them), and
the sum over a crop is the sum over the window times
``(out_size / side) ** 2``. It is separable: two batched matrix products
with ``[N, S, H]`` and ``[N, S, W]`` overlap matrices.
"""
from typing import Optional

import torch
from torch import Tensor


def _as_boxes(boxes, name: str) -> Tensor:
    """``[N, 4]`` float64 tensor of ``boxes`` (``[4]`` or ``[N, 4]``)."""
    boxes = torch.as_tensor(boxes, dtype=torch.float64)
    if boxes.ndim == 1:
        boxes = boxes[None]
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f'{name} must be [4] or [N, 4] (x, y, w, h), got '
                         f'shape {tuple(boxes.shape)}')
    return boxes


def _as_windows(windows) -> Tensor:
    """``[N, 3]`` float64 tensor of ``windows`` (``[3]`` or ``[N, 3]``)."""
    windows = torch.as_tensor(windows, dtype=torch.float64)
    if windows.ndim == 1:
        windows = windows[None]
    if windows.ndim != 2 or windows.shape[1] != 3:
        raise ValueError('windows must be [3] or [N, 3] (x0, y0, side), got '
                         f'shape {tuple(windows.shape)}')
    if not bool((windows[:, 2] > 0).all()):
        raise ValueError('crop windows need a side > 0; a box of zero size '
                         'has no window (the target is absent)')
    return windows


def crop_window(box_xywh, context: float,
                jitter: Optional[Tensor] = None) -> Tensor:
    """The square window of side ``context * sqrt(w * h)`` centred on each
    box.

    Args:
        box_xywh (Tensor): ``[N, 4]`` (or ``[4]``) boxes ``(x, y, w, h)``,
            frame pixels, of positive size.
        context (float): Side of the window over the box's geometric mean
            side (OSTrack / SDTrack: template 2, search 4).
        jitter (Tensor, optional): ``[N, 4]`` (or ``[4]``) ``(dx, dy, sw,
            sh)``: the window is that of the box moved by ``(dx, dy)``
            pixels and scaled by ``(sw, sh)`` about its centre (see
            :func:`sample_jitter`). Default: None.

    Returns:
        Tensor: ``[N, 3]`` float64 ``(x0, y0, side)``.

    Example:
        >>> crop_window(torch.tensor([10., 20.5, 4., 9.]), 2.)
        tensor([[ 6., 19., 12.]], dtype=torch.float64)
    """
    boxes = _as_boxes(box_xywh, 'box_xywh')
    if context <= 0:
        raise ValueError(f'context must be > 0, got {context}')
    centre = boxes[:, :2] + boxes[:, 2:] / 2
    size = boxes[:, 2:]
    if jitter is not None:
        jitter = _as_boxes(jitter, 'jitter')
        centre = centre + jitter[:, :2]
        size = size * jitter[:, 2:]
    if not bool((size > 0).all()):
        raise ValueError('crop_window needs boxes of positive width and '
                         'height; zero-size boxes mark an absent target')
    side = context * size.prod(1).sqrt()
    return torch.cat([centre - side[:, None] / 2, side[:, None]], 1)


def sample_jitter(box_xywh, center_jitter: float, scale_jitter: float,
                  generator: Optional[torch.Generator] = None) -> Tensor:
    """Random ``(dx, dy, sw, sh)`` for :func:`crop_window`, as OSTrack
    jitters its crops.

    The size is scaled by ``exp(N(0, scale_jitter))`` per axis, then the
    centre moved by ``U(-0.5, 0.5) * center_jitter * sqrt(w' * h')`` per
    axis, ``(w', h')`` the scaled size (OSTrack's search crops:
    ``center_jitter=3``, ``scale_jitter=0.25``; templates: 0 and 0). With a
    ``center_jitter`` below the window's ``context`` the box centre stays
    inside the window.

    Args:
        box_xywh (Tensor): ``[N, 4]`` (or ``[4]``) boxes.
        center_jitter (float): Largest centre shift over the jittered
            box's geometric mean side, both directions together.
        scale_jitter (float): Standard deviation of the log scale.
        generator (torch.Generator, optional): Random source.

    Returns:
        Tensor: ``[N, 4]`` float64.
    """
    boxes = _as_boxes(box_xywh, 'box_xywh')
    num = len(boxes)
    log_scale = torch.randn(num, 2, generator=generator, dtype=torch.float64)
    scale = torch.exp(log_scale * scale_jitter)
    mean_side = (boxes[:, 2:] * scale).prod(1).sqrt()
    uniform = torch.rand(num, 2, generator=generator, dtype=torch.float64)
    shift = (uniform - 0.5) * center_jitter * mean_side[:, None]
    return torch.cat([shift, scale], 1)


def _overlaps(starts: Tensor, step: Tensor, out_size: int,
              length: int) -> Tensor:
    """``[N, S, L]``: share of each frame pixel ``l`` in the footprint
    ``[start + s * step, start + (s + 1) * step)`` of crop pixel ``s``,
    over the footprint's length (rows sum to 1 inside the frame)."""
    index = torch.arange(out_size, dtype=torch.float64)
    low = (starts[:, None] + index * step[:, None])[:, :, None]
    high = low + step[:, None, None]
    pixel = torch.arange(length, dtype=torch.float64)
    shared = (torch.minimum(high, pixel + 1) -
              torch.maximum(low, pixel)).clamp_(min=0)
    return shared / step[:, None, None]


def crop_frames(frames: Tensor, windows, out_size: int) -> Tensor:
    """Resample a square window of each frame to ``out_size x out_size``.

    Area-weighted mean, zero outside the frame (see the module docstring).

    Args:
        frames (Tensor): ``[N, C, H, W]`` float (e.g. event counts with
            ``C = T * 2``).
        windows (Tensor): ``[N, 3]`` ``(x0, y0, side)``, frame pixels.
        out_size (int): ``S``, side of the crops in pixels.

    Returns:
        Tensor: ``[N, C, S, S]``, dtype and device of ``frames``.

    Example:
        >>> frames = torch.zeros(1, 1, 4, 4)
        >>> frames[0, 0, 1, 2] = 1.
        >>> crop_frames(frames, torch.tensor([[0., 0., 4.]]), 2)[0, 0]
        tensor([[0.0000, 0.2500],
                [0.0000, 0.0000]])
    """
    if frames.ndim != 4:
        raise ValueError(f'frames must be [N, C, H, W], got shape '
                         f'{tuple(frames.shape)}')
    if out_size < 1:
        raise ValueError(f'out_size must be >= 1, got {out_size}')
    windows = _as_windows(windows)
    if len(windows) != len(frames):
        raise ValueError(f'{len(frames)} frames but {len(windows)} windows: '
                         'give one window per frame')
    height, width = frames.shape[-2:]
    step = windows[:, 2] / out_size
    rows = _overlaps(windows[:, 1], step, out_size, height)
    cols = _overlaps(windows[:, 0], step, out_size, width)
    rows, cols = (m.to(frames.device, frames.dtype) for m in (rows, cols))
    # [N, S, H] x [N, C, H, W] x [N, W, S]
    out = torch.einsum('nsh,nchw->ncsw', rows, frames)
    return torch.einsum('ncsw,ntw->ncst', out, cols)


def box_to_crop(box_xywh, window, out_size: int) -> Tensor:
    """Boxes in frame pixels to the pixels of their crops.

    Args:
        box_xywh (Tensor): ``[N, 4]`` (or ``[4]``) boxes, frame pixels.
        window (Tensor): ``[N, 3]`` (or ``[3]``) crop windows.
        out_size (int): ``S``, side of the crops.

    Returns:
        Tensor: ``[N, 4]`` float64 boxes, crop pixels.

    Example:
        >>> box_to_crop(torch.tensor([10., 20., 4., 8.]),
        ...             torch.tensor([8., 16., 16.]), 32)
        tensor([[ 4.,  8.,  8., 16.]], dtype=torch.float64)
    """
    boxes, windows = _as_boxes(box_xywh, 'box_xywh'), _as_windows(window)
    scale = (out_size / windows[:, 2])[:, None]
    return torch.cat([(boxes[:, :2] - windows[:, :2]) * scale,
                      boxes[:, 2:] * scale], 1)


def box_from_crop(box_in_crop, window, out_size: int) -> Tensor:
    """Boxes in crop pixels back to frame pixels (the inverse of
    :func:`box_to_crop`).

    Args:
        box_in_crop (Tensor): ``[N, 4]`` (or ``[4]``) boxes, crop pixels.
        window (Tensor): ``[N, 3]`` (or ``[3]``) crop windows.
        out_size (int): ``S``, side of the crops.

    Returns:
        Tensor: ``[N, 4]`` float64 boxes, frame pixels.
    """
    boxes, windows = _as_boxes(box_in_crop, 'box_in_crop'), _as_windows(
        window)
    scale = (windows[:, 2] / out_size)[:, None]
    return torch.cat([boxes[:, :2] * scale + windows[:, :2],
                      boxes[:, 2:] * scale], 1)
