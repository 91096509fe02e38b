"""Event windows as dense frames ``[T, 2, H, W]``: stacked histograms (RVT)
and binary spike frames (SpikeYOLO style).

Both split a window of events into ``T`` time bins and fill, per bin and
polarity (channel 0 = OFF, 1 = ON), one map of the sensor. The layout is
time-major, ``[T, 2, H, W]``, because the spiking backbones read the bins as
their ``T`` timesteps; RVT stores the same counts polarity-major
(``[2, T, H, W]`` flattened to ``2T`` channels) for a non-spiking network.

Options that reproduce RVT's ``StackedHistogram`` (public code,
``data/utils/representations.py`` and ``scripts/genx/preprocess_dataset.py``):

- ``time_span='events'``: the bins divide the span from the window's first
  to its last event (RVT), rather than the window itself
  (``time_span='window'``: bin ``i`` always covers the same
  ``window / T`` microseconds);
- ``downsample_mode='nearest'``: RVT downsamples the full-resolution
  histogram by nearest-exact interpolation (1Mpx, factor 2), which keeps
  pixel ``(f * i + f // 2)`` of each ``f x f`` block; ``'sum'`` bins every
  event into its block instead (no event is lost).

Windows are half-open, ``[t_end - window, t_end)`` (the readers'
convention); RVT's preprocessing takes ``[t - 50 ms, t]``, so it also counts
the events stamped exactly at the label time. Events outside the window are
an error, not dropped: read the window with
``recording.read(t_end - window, t_end)``.

Counting is one flat pixel index per event and one ``np.bincount`` per time
bin (``tools/analysis/benchmark_events.py`` times a 50 ms Gen1 window).
"""
from typing import Tuple

import numpy as np

from .events import Events

#: how the time bins divide a window (see the module docstring)
TIME_SPANS = ('window', 'events')
#: how a frame is downsampled (see the module docstring)
DOWNSAMPLE_MODES = ('nearest', 'sum')


def frame_size(height: int, width: int, downsample: int) -> Tuple[int, int]:
    """``(H', W')`` of frames downsampled by ``downsample`` (rounded down:
    the last ``H % f`` rows and ``W % f`` columns are dropped)."""
    return height // downsample, width // downsample


def check_frame_options(num_bins: int, downsample: int, time_span: str,
                        downsample_mode: str) -> None:
    """Raise a ValueError naming the first bad representation option."""
    if num_bins < 1:
        raise ValueError(f'num_bins must be >= 1, got {num_bins}')
    if int(downsample) != downsample or downsample < 1:
        raise ValueError(
            f'downsample must be an integer >= 1, got {downsample}')
    if time_span not in TIME_SPANS:
        raise ValueError(
            f'time_span must be one of {TIME_SPANS}, got {time_span!r}')
    if downsample_mode not in DOWNSAMPLE_MODES:
        raise ValueError(f'downsample_mode must be one of '
                         f'{DOWNSAMPLE_MODES}, got {downsample_mode!r}')


def _check_events(events: Events, t_end_us: int, window_us: int,
                  height: int, width: int) -> None:
    """Events must lie in ``[t_end - window, t_end)`` and on the sensor."""
    if not len(events):
        return
    t_start = t_end_us - window_us
    if events.t[0] < t_start or events.t[-1] >= t_end_us:
        raise ValueError(
            f'events span [{events.t[0]}, {events.t[-1]}] us, outside the '
            f'window [{t_start}, {t_end_us}) us: read the window with '
            'recording.read(t_end - window, t_end)')
    if events.x.max() >= width or events.y.max() >= height:
        raise ValueError(
            f'events reach x = {events.x.max()}, y = {events.y.max()}, '
            f'outside the {width} x {height} sensor: set height / width '
            'to the recording\'s size')


def _bin_starts(times: np.ndarray, t_end_us: int, window_us: int,
                num_bins: int, time_span: str) -> np.ndarray:
    """``[T + 1]`` index of the first event of each time bin (and the
    number of events): event ``i`` with time ``t`` falls into bin
    ``min(floor((t - first) * T / span), T - 1)``, and times are sorted,
    so each bin is a slice."""
    if time_span == 'window':
        first, span = t_end_us - window_us, window_us
    else:
        first, span = int(times[0]), max(int(times[-1] - times[0]), 1)
    # bin >= k  <=>  t - first >= ceil(k * span / T)
    steps = np.arange(1, num_bins, dtype=np.int64) * span
    edges = first + (steps + num_bins - 1) // num_bins
    starts = np.searchsorted(times, edges, side='left')
    return np.concatenate([[0], starts, [len(times)]])


def _frames(events: Events, t_end_us: int, window_us: int, num_bins: int,
            height: int, width: int, downsample: int, time_span: str,
            downsample_mode: str, clip: int) -> np.ndarray:
    """``[T, 2, H', W']`` uint8 event counts clipped at ``clip``.

    Counts one time bin at a time (each bin is a slice of the sorted
    events): a bin's ``[2, H', W']`` counts stay in cache, where one
    ``np.bincount`` over all bins would scatter into ``T`` times more
    memory.
    """
    check_frame_options(num_bins, downsample, time_span, downsample_mode)
    if window_us <= 0:
        raise ValueError(f'window_us must be > 0, got {window_us}')
    _check_events(events, t_end_us, window_us, height, width)
    out_height, out_width = frame_size(height, width, downsample)
    frames = np.zeros((num_bins, 2, out_height, out_width), np.uint8)
    x, y = events.x, events.y
    if downsample > 1:
        keep = (x < out_width * downsample) & (y < out_height * downsample)
        if downsample_mode == 'nearest':
            centre = downsample // 2
            keep &= (x % downsample == centre) & (y % downsample == centre)
        events = events[keep]
        x, y = events.x // downsample, events.y // downsample
    if not len(events):
        return frames
    # int32 indices build faster; they hold any sensor up to 32 k x 32 k
    bin_size = 2 * out_height * out_width
    pixels = events.p.astype(np.int32 if bin_size < 2**31 else np.int64)
    pixels *= out_height
    pixels += y
    pixels *= out_width
    pixels += x
    starts = _bin_starts(events.t, t_end_us, window_us, num_bins, time_span)
    for index, (start, stop) in enumerate(zip(starts[:-1], starts[1:])):
        if stop > start:
            counts = np.bincount(pixels[start:stop], minlength=bin_size)
            np.minimum(counts, clip, out=counts)
            frames[index] = counts.reshape(2, out_height, out_width)
    return frames


def stacked_histogram(events: Events,
                      t_end_us: int,
                      window_us: int,
                      num_bins: int,
                      height: int,
                      width: int,
                      clip: int = 10,
                      downsample: int = 1,
                      time_span: str = 'events',
                      downsample_mode: str = 'nearest') -> np.ndarray:
    """Per time bin and polarity, the events per pixel, clipped (RVT).

    Args:
        events (Events): The events of ``[t_end_us - window_us, t_end_us)``,
            sorted by time.
        t_end_us (int): End of the window (excluded), microseconds.
        window_us (int): Window length, microseconds (RVT: 50000).
        num_bins (int): ``T`` (RVT: 10).
        height (int): Sensor height ``H``.
        width (int): Sensor width ``W``.
        clip (int): Counts are clipped to ``[0, clip]``, ``clip <= 255``
            (RVT: 10). Default: 10.
        downsample (int): Integer factor ``f``. Default: 1.
        time_span (str): ``'events'`` (RVT) or ``'window'``. Default:
            ``'events'``.
        downsample_mode (str): ``'nearest'`` (RVT) or ``'sum'``. Default:
            ``'nearest'``.

    Returns:
        np.ndarray: ``[T, 2, H // f, W // f]`` uint8.

    Example:
        >>> events = Events.from_arrays(t=[0, 10, 10, 99], x=[1, 1, 1, 0],
        ...                             y=[0, 0, 0, 1], p=[1, 1, 1, 0])
        >>> frames = stacked_histogram(events, 100, 100, 2, 2, 2, clip=1,
        ...                            time_span='window')
        >>> frames.shape, int(frames[0, 1, 0, 1]), int(frames[1, 0, 1, 0])
        ((2, 2, 2, 2), 1, 1)
    """
    if not 1 <= clip <= 255:
        raise ValueError(f'clip must be in [1, 255], got {clip}')
    return _frames(events, t_end_us, window_us, num_bins, height, width,
                   downsample, time_span, downsample_mode, clip)


def spike_frames(events: Events,
                 t_end_us: int,
                 window_us: int,
                 num_bins: int,
                 height: int,
                 width: int,
                 downsample: int = 1,
                 time_span: str = 'window',
                 downsample_mode: str = 'sum') -> np.ndarray:
    """Binary spike frames: 1 where a pixel had an event of that polarity in
    that time bin (SpikeYOLO style). Arguments as
    :func:`stacked_histogram`, without ``clip``; by default the bins divide
    the window and downsampling keeps every event.

    Returns:
        np.ndarray: ``[T, 2, H // f, W // f]`` uint8 of 0 / 1.
    """
    return _frames(events, t_end_us, window_us, num_bins, height, width,
                   downsample, time_span, downsample_mode, clip=1)
