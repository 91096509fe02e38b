"""Exponentially decayed event frames (SDTrack-like), the third event
representation beside the stacked histogram and the spike frames of
:mod:`.representations`.

A window ``[t_end - window, t_end)`` is split into ``T`` equal time bins
(bin ``k`` ends at ``e_k = t_end - (T - 1 - k) * window / T``). Per bin and
polarity, each event of the bin adds ``exp(-(e_k - t) / tau)`` to its
pixel: recent events count about 1, older ones fade, so one frame shows
where the target is now and, fainter, where it came from. With ``T = 1``
this is one accumulated frame of the whole window, each event weighted by
``exp(-(t_end - t) / tau)`` (SDTrack accumulates a frame interval this
way); ``T > 1`` gives ``T`` such decayed stacks, one per bin, for the
spiking backbones' timesteps. Sums are clipped at ``clip`` and kept as
float32 (they are not integer counts).

Downsampling by an integer factor ``f`` adds the events of each ``f x f``
block (``'sum'``; no event is dropped).
"""
import numpy as np
from mmengine.registry import TRANSFORMS

from .events import Events
from .representations import _bin_starts, _check_events, frame_size
from .transforms import EventFrames


def decayed_frames(events: Events,
                   t_end_us: int,
                   window_us: int,
                   num_bins: int,
                   height: int,
                   width: int,
                   tau_us: float = 10000.,
                   clip: float = 10.,
                   downsample: int = 1,
                   time_span: str = 'window',
                   downsample_mode: str = 'sum') -> np.ndarray:
    """Per time bin and polarity, the events of each pixel weighted by
    ``exp(-(bin end - t) / tau)`` (see the module docstring).

    Args:
        events (Events): The events of ``[t_end_us - window_us,
            t_end_us)``, sorted by time.
        t_end_us (int): End of the window (excluded), microseconds.
        window_us (int): Window length, microseconds.
        num_bins (int): ``T``.
        height (int): Sensor height ``H``.
        width (int): Sensor width ``W``.
        tau_us (float): Decay time constant, microseconds. Default: 10000.
        clip (float): Sums are clipped to ``[0, clip]``. Default: 10.
        downsample (int): Integer factor ``f``. Default: 1.
        time_span (str): Only ``'window'``: the bins divide the window.
        downsample_mode (str): Only ``'sum'``.

    Returns:
        np.ndarray: ``[T, 2, H // f, W // f]`` float32.

    Example:
        >>> events = Events.from_arrays(t=[0, 90], x=[0, 0], y=[0, 0],
        ...                             p=[1, 1])
        >>> frames = decayed_frames(events, 100, 100, 1, 1, 1, tau_us=10)
        >>> round(float(frames[0, 1, 0, 0]), 4)  # e^-10 + e^-1
        0.3679
    """
    if time_span != 'window' or downsample_mode != 'sum':
        raise ValueError(
            "decayed_frames supports time_span='window' and "
            f"downsample_mode='sum' only, got {time_span!r} / "
            f'{downsample_mode!r}')
    if tau_us <= 0 or clip <= 0:
        raise ValueError(f'tau_us and clip must be > 0, got {tau_us} and '
                         f'{clip}')
    if window_us <= 0 or num_bins < 1:
        raise ValueError(f'window_us and num_bins must be > 0, got '
                         f'{window_us} and {num_bins}')
    _check_events(events, t_end_us, window_us, height, width)
    out_height, out_width = frame_size(height, width, downsample)
    frames = np.zeros((num_bins, 2, out_height, out_width), np.float32)
    keep = ((events.x < out_width * downsample) &
            (events.y < out_height * downsample))
    events = events[keep]
    if not len(events):
        return frames
    pixels = ((events.p.astype(np.int64) * out_height +
               events.y // downsample) * out_width + events.x // downsample)
    starts = _bin_starts(events.t, t_end_us, window_us, num_bins, 'window')
    bin_size = 2 * out_height * out_width
    for index, (start, stop) in enumerate(zip(starts[:-1], starts[1:])):
        if stop == start:
            continue
        bin_end = t_end_us - (num_bins - 1 - index) * window_us / num_bins
        weights = np.exp(-(bin_end - events.t[start:stop]) / tau_us)
        sums = np.bincount(pixels[start:stop], weights=weights,
                           minlength=bin_size)
        frames[index] = np.minimum(sums, clip).reshape(2, out_height,
                                                       out_width)
    return frames


@TRANSFORMS.register_module()
class EventDecayFrames(EventFrames):
    """Exponentially decayed event frames (:func:`decayed_frames`); keys as
    :class:`~.transforms.EventFrames`, so it also fits the detection
    pipelines, and the SOT loader takes it as its ``representation``.

    Args:
        num_bins (int): ``T``; 1 gives one decayed frame of the window.
            Default: 1.
        tau_us (float): Decay time constant, microseconds. Default: 10000.
        clip (float): Clipping of the sums. Default: 10.
        downsample (int): Factor ``f`` (events of a block are added).
            Default: 1.
    """
    frames_fn = staticmethod(decayed_frames)

    def __init__(self,
                 num_bins: int = 1,
                 tau_us: float = 10000.,
                 clip: float = 10.,
                 downsample: int = 1) -> None:
        super().__init__(num_bins, downsample, 'window', 'sum')
        if tau_us <= 0 or clip <= 0:
            raise ValueError(f'tau_us and clip must be > 0, got {tau_us} '
                             f'and {clip}')
        self.tau_us = tau_us
        self.clip = clip

    def options(self) -> dict:
        return dict(tau_us=self.tau_us, clip=self.clip, **super().options())
