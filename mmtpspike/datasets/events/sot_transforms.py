"""Single-object tracking pipelines: event frames of the annotated frames
a sample needs, template / search crops, packing.

A training pair (:class:`~.sot_dataset.EventSOTDataset`, ``test_mode``
False) runs::

    LoadSOTEventFrames -> SOTPairCrops -> PackSOTInputs

and gives ``inputs=dict(template=[T, 2, St, St], search=[T, 2, Ss, Ss])``;
a test frame runs ``LoadSOTEventFrames -> PackSOTInputs`` and gives
``inputs=dict(frame=[T, 2, H, W])`` (the tracker crops its search region
itself, with the same :mod:`.sot_crops`). ``SOTDataPreprocessor`` stacks
the batch.
"""
import logging
from typing import Optional, Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.logging import print_log
from mmengine.registry import TRANSFORMS

from mmtpspike.structures import TrackDataSample
from . import sot_representation  # noqa: F401 (registers EventDecayFrames)
from .sot_crops import box_to_crop, crop_frames, crop_window, sample_jitter
from .sot_sequences import load_sequence
from .transforms import PerProcessFiles

#: the roles of the frames of a sample
FRAME_ROLES = ('template', 'search', 'frame')


def _open_recording(key):
    """The recording of a ``(sequence path, layout)``."""
    return load_sequence(*key).recording


@TRANSFORMS.register_module()
class LoadSOTEventFrames(BaseTransform):
    """Event frames of each annotated frame a sample names.

    Required keys: ``sequence_path``, ``layout``, ``height``, ``width``,
    ``frame_roles`` and, per role (``template`` / ``search`` or
    ``frame``), ``<role>_window_us`` ``(t_prev, t)``.

    Added keys: ``<role>`` (``[T, 2, H, W]`` float32 ndarray, the sensor's
    full frame), ``ori_shape`` ``(H, W)``.

    Frame ``i`` shows the events of ``(t_{i-1}, t_i]``, or of the
    ``window_us`` before ``t_i`` when that is set, turned into frames by
    ``representation`` over that window. An empty window is allowed (its
    frames are zero) and counted in :attr:`num_empty`: the first one in a
    process is logged with its sequence and time, and every tenth after it
    with the count.

    Args:
        representation (dict): Config of ``EventHistogram``,
            ``EventSpikeFrames`` or ``EventDecayFrames`` (its ``num_bins``
            is ``T``); ``downsample`` must be 1 (the crops resample).
            Default: ``dict(type='EventHistogram', num_bins=1)``.
        window_us (int, optional): Fixed window before each frame time.
            Default: None (the frame interval).
    """

    def __init__(self,
                 representation: dict = dict(type='EventHistogram',
                                             num_bins=1),
                 window_us: Optional[int] = None) -> None:
        self.representation = TRANSFORMS.build(representation)
        if getattr(self.representation, 'downsample', None) != 1:
            raise ValueError(
                'LoadSOTEventFrames needs a representation with '
                'downsample=1 (template and search crops resample the '
                'frames; set search_size instead)')
        if window_us is not None and window_us <= 0:
            raise ValueError(f'window_us must be > 0, got {window_us}')
        self.window_us = window_us
        self._recordings = PerProcessFiles(_open_recording)
        self.num_empty = 0

    def frames(self, results: dict, role: str) -> np.ndarray:
        """``[T, 2, H, W]`` float32 frames of one role's window."""
        t_prev, t_end = results[f'{role}_window_us']
        if self.window_us is not None:
            t_prev = t_end - self.window_us
        recording = self._recordings(
            (results['sequence_path'], results['layout']))
        # (t_prev, t_end] of integer microseconds
        events = recording.read(t_prev + 1, t_end + 1)
        if not len(events):
            self._count_empty(results, role, t_prev, t_end)
        rep = self.representation
        frames = rep.frames_fn(events, t_end + 1, t_end - t_prev,
                               rep.num_bins, results['height'],
                               results['width'], **rep.options())
        return frames.astype(np.float32)

    def transform(self, results: dict) -> dict:
        """Add the frames of every role of ``results``."""
        for role in results['frame_roles']:
            if role not in FRAME_ROLES:
                raise ValueError(f'unknown frame role {role!r}; expected '
                                 f'one of {FRAME_ROLES}')
            results[role] = self.frames(results, role)
        results['ori_shape'] = (results['height'], results['width'])
        return results

    def _count_empty(self, results: dict, role: str, t_prev: int,
                     t_end: int) -> None:
        self.num_empty += 1
        if self.num_empty % 10 == 1:
            print_log(
                f'{results["sequence_path"]}: no events in ({t_prev}, '
                f'{t_end}] us for the {role}; its frames are zero '
                f'({self.num_empty} empty window(s) in this process so far)',
                'current', level=logging.WARNING)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(representation='
                f'{self.representation!r}, window_us={self.window_us})')


@TRANSFORMS.register_module()
class SOTPairCrops(BaseTransform):
    """Template and search crops of a training pair (OSTrack / SDTrack).

    The template is the window of side ``template_context * sqrt(w * h)``
    around the template frame's box, the search the window of side
    ``search_context * sqrt(w * h)`` around the search frame's box after
    OSTrack's jitter (:func:`~.sot_crops.sample_jitter`: the size scaled by
    ``exp(N(0, scale_jitter))`` per axis, the centre moved by up to
    ``center_jitter / 2`` of the jittered box's mean side per axis), each
    resampled to ``template_size`` / ``search_size`` pixels
    (:func:`~.sot_crops.crop_frames`: area-weighted mean, zero outside the
    frame). Random draws use torch's global generator (seeded per worker
    by mmengine).

    Required keys: ``template``, ``search`` (``[T, 2, H, W]``),
    ``template_box``, ``search_box`` (``[x, y, w, h]``, frame pixels).

    Modified keys: ``template`` (``[T, 2, St, St]`` float32 tensor),
    ``search`` (``[T, 2, Ss, Ss]``). Added keys: ``gt_box`` (the search
    box in search-crop pixels, ``[4]`` float32 tensor; its centre lies in
    the crop), ``template_window`` / ``search_window`` ``(x0, y0, side)``.

    Args:
        template_size (int): ``St``. Default: 128.
        search_size (int): ``Ss``. Default: 256.
        template_context (float): Default: 2.
        search_context (float): Default: 4.
        center_jitter (float): Search centre jitter factor. Default: 3.
        scale_jitter (float): Search scale jitter. Default: 0.25.
        template_center_jitter (float): Default: 0.
        template_scale_jitter (float): Default: 0.
    """

    def __init__(self,
                 template_size: int = 128,
                 search_size: int = 256,
                 template_context: float = 2.,
                 search_context: float = 4.,
                 center_jitter: float = 3.,
                 scale_jitter: float = 0.25,
                 template_center_jitter: float = 0.,
                 template_scale_jitter: float = 0.) -> None:
        if min(template_size, search_size) < 1 or min(
                template_context, search_context) <= 0:
            raise ValueError('crop sizes must be >= 1 and contexts > 0')
        for name, jitter, context in (
                ('center_jitter', center_jitter, search_context),
                ('template_center_jitter', template_center_jitter,
                 template_context)):
            if not 0 <= jitter < context:
                raise ValueError(
                    f'{name} must be in [0, its context {context}), got '
                    f'{jitter}: the target centre could leave the crop')
        if min(scale_jitter, template_scale_jitter) < 0:
            raise ValueError('scale jitters must be >= 0')
        self.sizes = dict(template=template_size, search=search_size)
        self.contexts = dict(template=template_context,
                             search=search_context)
        self.jitters = dict(template=(template_center_jitter,
                                      template_scale_jitter),
                            search=(center_jitter, scale_jitter))

    def crop(self, results: dict, role: str) -> torch.Tensor:
        """Crop one role; returns its box in crop pixels, ``[1, 4]``."""
        box = torch.tensor(results[f'{role}_box'], dtype=torch.float64)
        center_jitter, scale_jitter = self.jitters[role]
        jitter = None
        if center_jitter or scale_jitter:
            jitter = sample_jitter(box, center_jitter, scale_jitter)
        window = crop_window(box, self.contexts[role], jitter)
        frames = torch.as_tensor(results[role], dtype=torch.float32)
        num_bins, channels = frames.shape[:2]
        size = self.sizes[role]
        crop = crop_frames(frames.reshape(1, num_bins * channels,
                                          *frames.shape[2:]), window, size)
        results[role] = crop.reshape(num_bins, channels, size, size)
        results[f'{role}_window'] = tuple(float(v) for v in window[0])
        return box_to_crop(box, window, size)

    def transform(self, results: dict) -> dict:
        """Crop the template and the search frame (see the class
        docstring)."""
        self.crop(results, 'template')
        results['gt_box'] = self.crop(results, 'search')[0].float()
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(sizes={self.sizes}, contexts='
                f'{self.contexts}, jitters={self.jitters})')


@TRANSFORMS.register_module()
class PackSOTInputs(BaseTransform):
    """Pack a training pair or a test frame for the tracker.

    A training pair (``search`` in the results) gives
    ``dict(inputs=dict(template=[T, 2, St, St], search=[T, 2, Ss, Ss]),
    data_samples=TrackDataSample)``, a test frame
    ``dict(inputs=dict(frame=[T, 2, H, W]), data_samples=...)``, float32
    tensors. The sample's ``gt_box`` is ``results['gt_box']`` (search-crop
    pixels for a pair, frame pixels for a test frame); its metainfo the
    ``meta_keys`` present in the results.

    Args:
        meta_keys (Sequence[str]): Metainfo keys. Default: ``sequence``,
            ``frame_index``, ``num_frames``, ``ori_shape``,
            ``template_frame``, ``search_frame``, ``template_window``,
            ``search_window``.
    """

    def __init__(self,
                 meta_keys: Sequence[str] = (
                     'sequence', 'frame_index', 'num_frames', 'ori_shape',
                     'template_frame', 'search_frame', 'template_window',
                     'search_window')) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        """Pack ``results`` (see the class docstring)."""
        roles = ('template', 'search') if 'search' in results else (
            'frame', )
        missing = [role for role in roles if role not in results]
        if missing or 'gt_box' not in results:
            raise KeyError(
                f'PackSOTInputs needs {roles} and gt_box, missing '
                f'{missing or ["gt_box"]}: put LoadSOTEventFrames (and '
                'SOTPairCrops for training pairs) before it')
        inputs = {
            role: torch.as_tensor(results[role], dtype=torch.float32)
            for role in roles
        }
        sample = TrackDataSample(metainfo={
            key: results[key] for key in self.meta_keys if key in results})
        sample.gt_box = results['gt_box']
        return dict(inputs=inputs, data_samples=sample)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(meta_keys={self.meta_keys})'
