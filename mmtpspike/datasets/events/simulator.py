"""A small event-camera simulator: frames of intensity in, events out.

Each pixel keeps a reference level of log intensity ``log(I + eps)``. When a
new frame moves a pixel's log intensity ``k`` contrast thresholds above
(below) its reference, the pixel emits ``k`` ON (OFF) events and its
reference moves by ``k`` thresholds. Between two frames the log intensity is
taken to change linearly in time, so each event gets the time at which its
threshold level was crossed. This is the model of ESIM and v2e, written
vectorised in numpy; neither is on PyPI.

Optional, all off by default: separate OFF threshold, per-pixel threshold
jitter, a refractory period and uniform background-noise events; the random
parts draw from one generator seeded by ``seed``.
"""
from typing import Optional, Sequence

import numpy as np

from .events import Events


class EventSimulator:
    """Turns a stream of intensity frames into events.

    Feed frames in time order with :meth:`step` (streaming) or all at once
    with :meth:`simulate`. The first frame only sets the reference levels.

    Args:
        contrast_threshold (float): Change of log intensity that makes an ON
            event (and an OFF event unless ``off_threshold`` is given).
            Defaults to 0.2.
        off_threshold (float, optional): Decrease of log intensity that
            makes an OFF event. Defaults to None: ``contrast_threshold``.
        threshold_sigma (float): Standard deviation of the per-pixel
            thresholds, relative to the nominal ones (fixed-pattern noise,
            drawn once at the first frame). Defaults to 0.
        min_threshold (float): Floor of a jittered threshold. Defaults to
            0.01.
        refractory_us (int): After an event a pixel ignores threshold
            crossings for this many microseconds (its reference still
            moves). Defaults to 0.
        noise_rate_hz (float): Rate of background-noise events per pixel
            and second, at uniform random pixels, times and polarities; they
            leave the references alone. Defaults to 0.
        eps (float): Offset of the logarithm, in the units of the frames.
            Defaults to 1e-3.
        seed (int): Seed of the jitter and noise generator. Defaults to 0.

    Example:
        >>> import numpy as np
        >>> sim = EventSimulator(contrast_threshold=0.5, eps=0.)
        >>> dark, bright = np.ones((1, 1)), np.full((1, 1), np.exp(1.25))
        >>> events = sim.simulate([dark, bright], [0, 1000])
        >>> events.t.tolist(), events.p.tolist()
        ([400, 800], [1, 1])
    """

    def __init__(self,
                 contrast_threshold: float = 0.2,
                 off_threshold: Optional[float] = None,
                 threshold_sigma: float = 0.,
                 min_threshold: float = 0.01,
                 refractory_us: int = 0,
                 noise_rate_hz: float = 0.,
                 eps: float = 1e-3,
                 seed: int = 0) -> None:
        if off_threshold is None:
            off_threshold = contrast_threshold
        if min(contrast_threshold, off_threshold, min_threshold) <= 0:
            raise ValueError(
                'EventSimulator thresholds must be positive, got '
                f'contrast_threshold={contrast_threshold}, off_threshold='
                f'{off_threshold}, min_threshold={min_threshold}')
        if threshold_sigma < 0 or refractory_us < 0 or noise_rate_hz < 0:
            raise ValueError(
                'EventSimulator threshold_sigma, refractory_us and '
                'noise_rate_hz must be >= 0, got '
                f'{threshold_sigma}, {refractory_us}, {noise_rate_hz}')
        if eps < 0:
            raise ValueError(f'EventSimulator eps must be >= 0, got {eps}')
        self.on_threshold = contrast_threshold
        self.off_threshold = off_threshold
        self.threshold_sigma = threshold_sigma
        self.min_threshold = min_threshold
        self.refractory_us = refractory_us
        self.noise_rate_hz = noise_rate_hz
        self.eps = eps
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        """Forget all frames: the next frame sets new references."""
        self.rng = np.random.default_rng(self.seed)
        self.reference = None  # [H, W] float64 log intensity
        self.last_log = None  # [H, W] log intensity of the last frame
        self.last_t = None  # time of the last frame, microseconds
        self.last_event_t = None  # [H, W] int64, for the refractory period
        self.thresholds = None  # (on, off), each [H, W] float64

    def simulate(self, frames: Sequence[np.ndarray],
                 timestamps_us: Sequence[int]) -> Events:
        """Events of a whole sequence of frames, from a fresh state.

        Args:
            frames (Sequence[np.ndarray]): Intensity frames, each
                ``[H, W]`` float, >= 0.
            timestamps_us (Sequence[int]): Time of each frame in
                microseconds, increasing.

        Returns:
            Events: Sorted by time; none at the first frame's time.
        """
        if len(frames) != len(timestamps_us):
            raise ValueError(
                f'EventSimulator.simulate got {len(frames)} frames but '
                f'{len(timestamps_us)} timestamps: give one time per frame')
        self.reset()
        return Events.concatenate([
            self.step(frame, t_us)
            for frame, t_us in zip(frames, timestamps_us)
        ])

    def step(self, frame: np.ndarray, t_us: int) -> Events:
        """Events between the previous frame and this one.

        Args:
            frame (np.ndarray): Intensity, ``[H, W]`` float, >= 0.
            t_us (int): Time of ``frame`` in microseconds, later than the
                previous frame's.

        Returns:
            Events: Sorted by time (stable), with times in ``(t_prev,
            t_us]`` up to rounding to whole microseconds; empty for the
            first frame.
        """
        log_frame = self._log_intensity(frame)
        t_us = int(t_us)
        if self.reference is None:
            self._start(log_frame, t_us)
            return Events.empty()
        if log_frame.shape != self.reference.shape:
            raise ValueError(
                f'EventSimulator frame of shape {log_frame.shape} after '
                f'frames of shape {self.reference.shape}: every frame of a '
                'stream must have the same size (call reset() to start over)')
        if t_us <= self.last_t:
            raise ValueError(
                f'EventSimulator frame at t={t_us} us does not follow the '
                f'previous one at t={self.last_t} us: timestamps must '
                'increase')
        parts = [
            self._crossings(log_frame, t_us, polarity=1),
            self._crossings(log_frame, t_us, polarity=0),
            self._noise(log_frame.shape, t_us),
        ]
        self.last_log, self.last_t = log_frame, t_us
        events = Events.concatenate(parts)
        return events[np.argsort(events.t, kind='stable')]

    def _log_intensity(self, frame: np.ndarray) -> np.ndarray:
        """``log(frame + eps)`` of a checked ``[H, W]`` frame."""
        frame = np.asarray(frame, dtype=np.float64)
        if frame.ndim != 2:
            raise ValueError(
                f'EventSimulator frames are [H, W] intensity maps, got shape '
                f'{frame.shape}: convert colour frames to grey first')
        if not np.isfinite(frame).all() or (frame < 0).any():
            raise ValueError(
                'EventSimulator frames must be finite and >= 0 (intensity); '
                'got negative or non-finite values')
        if self.eps == 0 and (frame == 0).any():
            raise ValueError(
                'EventSimulator with eps=0 got a zero intensity, whose log '
                'is -inf: use eps > 0 or strictly positive frames')
        return np.log(frame + self.eps)

    def _start(self, log_frame: np.ndarray, t_us: int) -> None:
        """Reference levels and per-pixel thresholds from the first frame."""
        self.reference = log_frame.copy()
        self.last_log, self.last_t = log_frame, t_us
        self.last_event_t = np.full(log_frame.shape,
                                    np.iinfo(np.int64).min // 2)
        self.thresholds = tuple(
            self._jittered(nominal, log_frame.shape)
            for nominal in (self.on_threshold, self.off_threshold))

    def _jittered(self, nominal: float, shape) -> np.ndarray:
        """Per-pixel thresholds around ``nominal``, ``[H, W]`` float64."""
        if self.threshold_sigma == 0:
            return np.full(shape, float(nominal))
        jitter = self.rng.normal(1., self.threshold_sigma, size=shape)
        return np.maximum(nominal * jitter, self.min_threshold)

    def _crossings(self, log_frame: np.ndarray, t_us: int,
                   polarity: int) -> Events:
        """Events of one polarity; moves the references past them.

        Args:
            log_frame (np.ndarray): ``[H, W]`` log intensity at ``t_us``.
            t_us (int): Time of ``log_frame``.
            polarity (int): 1 for increases (ON), 0 for decreases (OFF).

        Returns:
            Events: Grouped by crossing order, not sorted by time.
        """
        sign = 1. if polarity else -1.
        threshold = self.thresholds[0 if polarity else 1]
        change = sign * (log_frame - self.reference)
        counts = np.floor(change / threshold).astype(np.int64)
        ys, xs = np.nonzero(counts > 0)
        counts = counts[ys, xs]
        if not len(counts):
            return Events.empty()
        threshold = threshold[ys, xs]
        start = sign * (self.last_log[ys, xs] - self.reference[ys, xs])
        slope = sign * (log_frame[ys, xs] - self.last_log[ys, xs])
        t_prev, duration = self.last_t, t_us - self.last_t
        times, columns, rows = [], [], []
        for level in range(1, int(counts.max()) + 1):
            crossing = np.nonzero(counts >= level)[0]
            # where the linear path crosses reference + level thresholds
            fraction = (level * threshold[crossing] -
                        start[crossing]) / slope[crossing]
            t = t_prev + np.rint(fraction * duration).astype(np.int64)
            pixel = (ys[crossing], xs[crossing])
            awake = t - self.last_event_t[pixel] >= self.refractory_us
            self.last_event_t[pixel[0][awake], pixel[1][awake]] = t[awake]
            times.append(t[awake])
            rows.append(pixel[0][awake])
            columns.append(pixel[1][awake])
        self.reference[ys, xs] += sign * counts * threshold
        t = np.concatenate(times)
        return Events.from_arrays(t=t, x=np.concatenate(columns),
                                  y=np.concatenate(rows),
                                  p=np.full(len(t), polarity))

    def _noise(self, shape, t_us: int) -> Events:
        """Background-noise events in ``(last_t, t_us]``, unsorted."""
        if self.noise_rate_hz == 0:
            return Events.empty()
        height, width = shape
        expected = (self.noise_rate_hz * height * width *
                    (t_us - self.last_t) * 1e-6)
        num = int(self.rng.poisson(expected))
        return Events.from_arrays(
            t=self.rng.integers(self.last_t + 1, t_us + 1, size=num),
            x=self.rng.integers(0, width, size=num),
            y=self.rng.integers(0, height, size=num),
            p=self.rng.integers(0, 2, size=num))
