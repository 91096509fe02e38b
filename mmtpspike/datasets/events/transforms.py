"""Event pipelines: read a sample's window, turn it into frames.

A Gen1 / 1Mpx sample (:mod:`.prophesee_dataset`) names a recording and a
label time; ``LoadEventWindow`` reads the events before it and
``EventHistogram`` / ``EventSpikeFrames`` turn them into ``img``, an
``[H, W, T * 2]`` float32 array with channel ``t * 2 + polarity`` (mm's
image layout, so ``RandomFlip``, ``Pad`` and ``PackDetInputs`` apply
unchanged). ``EventDetDataPreprocessor`` unfolds the batch to
``[B, T, 2, H, W]``.
"""
import logging
import os
from typing import Any, Callable, Dict

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.logging import print_log
from mmengine.registry import TRANSFORMS

from mmtpspike.utils.config import SetupError

from .precomputed_frames import (frames_path, read_frames,
                                 read_settings)
from .recordings import open_recording
from .representations import (check_frame_options, spike_frames,
                              stacked_histogram)


class PerProcessFiles:
    """Files opened by this process, by path: each DataLoader worker opens
    its own (memory maps, h5 and zip handles are not shared across a fork).

    Args:
        open_fn (Callable[[str], Any]): Opens one path.
    """

    def __init__(self, open_fn: Callable[[str], Any]) -> None:
        self.open_fn = open_fn
        self._pid = None
        self._files: Dict[str, Any] = {}

    def __call__(self, path: str) -> Any:
        if self._pid != os.getpid():
            self._pid, self._files = os.getpid(), {}
        if path not in self._files:
            self._files[path] = self.open_fn(path)
        return self._files[path]


@TRANSFORMS.register_module()
class LoadEventWindow(BaseTransform):
    """Read the events of ``[t - window_us, t)`` before a sample's label
    time ``t``.

    Required keys: ``recording_path``, ``timestamp_us``, ``height``,
    ``width`` (the sensor size, from the dataset).

    Added keys: ``events`` (:class:`~.events.Events`), ``window_us``,
    ``window_end_us`` (``t``), ``ori_shape`` ``(height, width)``.

    The window is half-open like the readers' ``read`` (RVT's preprocessing
    also counts the events stamped exactly at ``t``). An empty window is
    allowed (its frames are zero) and counted: the first one in a process
    is logged with its recording and time, and every tenth after it with
    the count.

    Args:
        window_us (int): Window length in microseconds (RVT: 50000).
            Default: 50000.
    """

    def __init__(self, window_us: int = 50000) -> None:
        if window_us <= 0:
            raise ValueError(f'window_us must be > 0, got {window_us}')
        self.window_us = window_us
        self._recordings = PerProcessFiles(open_recording)
        self.num_empty = 0

    def transform(self, results: dict) -> dict:
        """Read the window of ``results`` (see the class docstring)."""
        path, t_end = results['recording_path'], int(results['timestamp_us'])
        events = self._recordings(path).read(t_end - self.window_us, t_end)
        if not len(events):
            self._count_empty(path, t_end)
        results['events'] = events
        results['window_us'] = self.window_us
        results['window_end_us'] = t_end
        results['ori_shape'] = (results['height'], results['width'])
        return results

    def _count_empty(self, path: str, t_end: int) -> None:
        self.num_empty += 1
        if self.num_empty % 10 == 1:
            print_log(
                f'{path}: no events in the {self.window_us} us before '
                f't = {t_end} us; its frames are zero ({self.num_empty} '
                'empty window(s) in this process so far)', 'current',
                level=logging.WARNING)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(window_us={self.window_us})'


class EventFrames(BaseTransform):
    """Base of the transforms that turn ``events`` into ``img``.

    Required keys: ``events``, ``window_end_us``, ``window_us``,
    ``ori_shape``; optional ``gt_bboxes``.

    Modified keys: ``img`` (``[H', W', T * 2]`` float32, channel
    ``t * 2 + polarity``), ``img_shape`` ``(H', W')``, ``scale_factor``
    ``(1 / f, 1 / f)``, ``gt_bboxes`` (scaled by ``1 / f``),
    ``event_repr_shape`` ``(T, 2)``; ``events`` is removed.

    Args:
        num_bins (int): ``T``, time bins of the window.
        downsample (int): Integer factor ``f``.
        time_span (str): How the bins divide the window, see
            :mod:`.representations`.
        downsample_mode (str): ``'nearest'`` or ``'sum'``, see
            :mod:`.representations`.
    """
    #: representation function (events, t_end_us, window_us, num_bins,
    #: height, width, **options) -> [T, 2, H', W']
    frames_fn: Callable = None

    def __init__(self, num_bins: int, downsample: int, time_span: str,
                 downsample_mode: str) -> None:
        check_frame_options(num_bins, downsample, time_span, downsample_mode)
        self.num_bins = num_bins
        self.downsample = downsample
        self.time_span = time_span
        self.downsample_mode = downsample_mode

    def options(self) -> dict:
        """Keyword arguments of :attr:`frames_fn` beyond the window."""
        return dict(downsample=self.downsample, time_span=self.time_span,
                    downsample_mode=self.downsample_mode)

    def transform(self, results: dict) -> dict:
        """Replace ``events`` by ``img`` (see the class docstring)."""
        height, width = results['ori_shape']
        frames = self.frames_fn(
            results.pop('events'), results['window_end_us'],
            results['window_us'], self.num_bins, height, width,
            **self.options())
        return self.pack(results, frames)

    def pack(self, results: dict, frames: np.ndarray) -> dict:
        """Put ``[T, 2, H', W']`` frames into ``results`` as ``img`` and
        rescale the boxes."""
        num_bins, channels, height, width = frames.shape
        results['img'] = np.ascontiguousarray(
            frames.reshape(num_bins * channels, height, width).transpose(
                1, 2, 0), dtype=np.float32)
        results['img_shape'] = (height, width)
        results['event_repr_shape'] = (num_bins, channels)
        scale = 1 / self.downsample
        results['scale_factor'] = (scale, scale)
        if results.get('gt_bboxes') is not None and self.downsample > 1:
            results['gt_bboxes'].rescale_((scale, scale))
            results['gt_bboxes'].clip_((height, width))
        return results

    def __repr__(self) -> str:
        options = ', '.join(f'{k}={v!r}' for k, v in self.options().items())
        return f'{type(self).__name__}(num_bins={self.num_bins}, {options})'


@TRANSFORMS.register_module()
class EventHistogram(EventFrames):
    """Stacked histogram (RVT): per time bin and polarity the events per
    pixel, clipped at ``clip``; see :class:`EventFrames` for the keys and
    :func:`~.representations.stacked_histogram` for the options.

    Args:
        num_bins (int): ``T``. Default: 10.
        clip (int): Count clipping, ``<= 255``. Default: 10.
        downsample (int): Factor ``f`` (RVT: 2 on 1Mpx). Default: 1.
        time_span (str): Default: ``'events'`` (RVT).
        downsample_mode (str): Default: ``'nearest'`` (RVT).
    """
    frames_fn = staticmethod(stacked_histogram)

    def __init__(self,
                 num_bins: int = 10,
                 clip: int = 10,
                 downsample: int = 1,
                 time_span: str = 'events',
                 downsample_mode: str = 'nearest') -> None:
        super().__init__(num_bins, downsample, time_span, downsample_mode)
        self.clip = clip

    def options(self) -> dict:
        return dict(clip=self.clip, **super().options())


@TRANSFORMS.register_module()
class EventSpikeFrames(EventFrames):
    """Binary spike frames (SpikeYOLO style): 1 where a pixel had an event
    of that polarity in that time bin; see :class:`EventFrames` and
    :func:`~.representations.spike_frames`.

    Args:
        num_bins (int): ``T``. Default: 10.
        downsample (int): Factor ``f``. Default: 1.
        time_span (str): Default: ``'window'``.
        downsample_mode (str): Default: ``'sum'``.
    """
    frames_fn = staticmethod(spike_frames)

    def __init__(self,
                 num_bins: int = 10,
                 downsample: int = 1,
                 time_span: str = 'window',
                 downsample_mode: str = 'sum') -> None:
        super().__init__(num_bins, downsample, time_span, downsample_mode)


@TRANSFORMS.register_module()
class LoadEventFrames(BaseTransform):
    """Read frames that ``precompute_event_frames.py`` stored, in place of
    ``LoadEventWindow`` + the representation; the result is the same as
    theirs (see :class:`EventFrames` for the keys).

    Required keys: ``recording``, ``timestamp_us``, ``height``, ``width``.

    Args:
        frames_folder (str): Folder of the split's ``<recording>.npz``.
        window_us (int): Window the frames must have been made with.
        representation (dict): Config of the ``EventHistogram`` /
            ``EventSpikeFrames`` they must have been made with; stored
            frames of other settings are an error, never read.
    """

    def __init__(self, frames_folder: str, window_us: int,
                 representation: dict) -> None:
        self.frames_folder = frames_folder
        self.window_us = window_us
        self.representation = TRANSFORMS.build(representation)
        self._archives = PerProcessFiles(self._open_archive)

    def settings(self) -> dict:
        """What stored frames must have been made with."""
        return frame_settings(self.window_us, self.representation)

    def _open_archive(self, path: str):
        """Open a recording's ``.npz`` once per process, checking that it
        exists and holds frames of :meth:`settings`."""
        if not os.path.isfile(path):
            raise SetupError(
                f'no precomputed frames {path}: run tools/dataset_converters/'
                'precompute_event_frames.py for this split first')
        archive = np.load(path)
        stored = read_settings(archive, path)
        if stored != self.settings():
            raise SetupError(
                f'{path} holds frames made with {stored}, the pipeline asks '
                f'for {self.settings()}: recompute them (--overwrite)')
        return archive

    def transform(self, results: dict) -> dict:
        """Load the frames of ``results`` and pack them as ``img``."""
        path = frames_path(self.frames_folder, results['recording'])
        results['ori_shape'] = (results['height'], results['width'])
        frames = read_frames(self._archives(path), path,
                             results['timestamp_us'])
        return self.representation.pack(results, frames)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(frames_folder={self.frames_folder!r},'
                f' window_us={self.window_us}, '
                f'representation={self.representation!r})')


def frame_settings(window_us: int, representation: EventFrames) -> dict:
    """The JSON-able settings that identify frames: window and
    representation with its options."""
    return dict(window_us=int(window_us),
                representation=type(representation).__name__,
                num_bins=representation.num_bins,
                **representation.options())
