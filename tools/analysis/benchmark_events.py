"""Benchmark of the event layer: `.dat` decoding and the 50 ms histogram.

    python tools/analysis/benchmark_events.py [--num-events 20000000]
        [--window-events 500000] [--repeats 5] [--seed 0]

Writes a synthetic Gen1 recording (304 x 240, ``--num-events`` events at a
steady rate over 60 s) into a temporary folder and measures, in one run and
on one thread, the median of ``--repeats`` runs. Run as a script, the tool
sets ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` and ``OPENBLAS_NUM_THREADS``
to 1 before numpy loads; the measured steps (element-wise numpy,
``np.searchsorted``, ``np.bincount``, ``np.add.at``) use no thread pool in
any case, so ``main(argv)`` called in a process is single-threaded too.

1. **decode throughput** (events per second) of the whole file: ours
   (``DatRecording.read_all``: memory map, one pass per field) against the
   obvious numpy code (``np.fromfile`` of the record dtype, then
   ``x = v & 0x3FFF`` ... as default integer arrays); and the time of one
   50 ms window read: ours (bisection on the memory-mapped times) against
   masking the whole decoded file;
2. **representation time** of a 50 ms Gen1 window of ``--window-events``
   events into ``[10, 2, 240, 304]`` (RVT's stacked histogram): ours
   (``stacked_histogram``: one ``np.bincount`` per time bin) against the
   obvious code (``np.add.at`` per event into a zero array, then clip).

Prints each ratio and the targets (decode >= 100 M events/s, a window in
under 5 ms); the page with measured numbers is
``docs/benchmarks/event_layer.md``.
"""
import argparse
import os
import os.path as osp
import statistics
import tempfile
import time
from typing import Callable, Tuple

THREAD_VARIABLES = ('OMP_NUM_THREADS', 'MKL_NUM_THREADS',
                    'OPENBLAS_NUM_THREADS')
if __name__ == '__main__':
    # thread pools are sized when numpy loads, so before the imports below
    os.environ.update({variable: '1' for variable in THREAD_VARIABLES})

import numpy as np  # noqa: E402

from mmtpspike.datasets.events import (DatRecording, Events,  # noqa: E402
                                       stacked_histogram, write_dat)
from mmtpspike.datasets.events.prophesee_dat import RECORD_DTYPE  # noqa

GEN1_SIZE = (240, 304)  # (H, W)
WINDOW_US = 50_000
NUM_BINS = 10
CLIP = 10
DECODE_TARGET = 100e6  # events per second
WINDOW_TARGET_MS = 5.0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--num-events', type=int, default=20_000_000,
                        help='events in the synthetic recording')
    parser.add_argument('--window-events', type=int, default=500_000,
                        help='events in the 50 ms window (a busy Gen1 '
                        'scene: 10 M events/s)')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def random_events(rng: np.random.Generator, num: int,
                  duration_us: int) -> Events:
    """``num`` uniform Gen1 events over ``[0, duration_us)``, sorted."""
    height, width = GEN1_SIZE
    return Events.from_arrays(
        t=np.sort(rng.integers(0, duration_us, num)),
        x=rng.integers(0, width, num), y=rng.integers(0, height, num),
        p=rng.integers(0, 2, num))


def median_seconds(fn: Callable, repeats: int) -> float:
    """Median wall time of ``repeats`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def baseline_decode(path: str, offset: int) -> Tuple[np.ndarray, ...]:
    """The obvious decoder: read everything, one int64 array per field."""
    records = np.fromfile(path, dtype=RECORD_DTYPE, offset=offset)
    t = records['t'].astype(np.int64)
    v = records['_'].astype(np.int64)
    return t, v & 0x3FFF, (v & 0x0FFFC000) >> 14, (v & 0x10000000) >> 28


def baseline_histogram(events: Events, t_end_us: int) -> np.ndarray:
    """The obvious histogram: ``np.add.at`` per event, then clip."""
    height, width = GEN1_SIZE
    frames = np.zeros((NUM_BINS, 2, height, width), np.int64)
    t_start = t_end_us - WINDOW_US
    bins = (events.t - t_start) * NUM_BINS // WINDOW_US
    np.add.at(frames, (bins, events.p.astype(np.int64),
                       events.y.astype(np.int64), events.x.astype(np.int64)),
              1)
    return np.clip(frames, 0, CLIP).astype(np.uint8)


def data_offset(path: str, num_events: int) -> int:
    """Bytes before the first record."""
    return osp.getsize(path) - num_events * RECORD_DTYPE.itemsize


def bench_decode(args, rng, folder: str) -> None:
    duration_us = 60_000_000
    path = osp.join(folder, 'synthetic_td.dat')
    events = random_events(rng, args.num_events, duration_us)
    write_dat(path, events, width=GEN1_SIZE[1], height=GEN1_SIZE[0])
    del events
    recording = DatRecording(path)
    offset = data_offset(path, recording.num_events)
    ours = median_seconds(recording.read_all, args.repeats)
    baseline = median_seconds(lambda: baseline_decode(path, offset),
                              args.repeats)
    rate = recording.num_events / ours
    print(f'decode {recording.num_events} events (whole file, '
          f'{osp.getsize(path) / 2**20:.0f} MiB):')
    print(f'  ours {ours * 1e3:.1f} ms = {rate / 1e6:.0f} M events/s; '
          f'baseline (np.fromfile + int64 fields) {baseline * 1e3:.1f} ms '
          f'= {recording.num_events / baseline / 1e6:.0f} M events/s; '
          f'ratio {baseline / ours:.2f}x')
    print(f'  target >= {DECODE_TARGET / 1e6:.0f} M events/s: '
          f'{"met" if rate >= DECODE_TARGET else "NOT met"}')

    t_end = duration_us // 2
    window = median_seconds(
        lambda: recording.read(t_end - WINDOW_US, t_end), args.repeats)

    def masked_window():
        t, x, y, p = baseline_decode(path, offset)
        keep = (t >= t_end - WINDOW_US) & (t < t_end)
        return t[keep], x[keep], y[keep], p[keep]

    masked = median_seconds(masked_window, args.repeats)
    print(f'  one 50 ms window: ours (bisection) {window * 1e3:.3f} ms; '
          f'baseline (decode all, mask) {masked * 1e3:.1f} ms; '
          f'ratio {masked / window:.0f}x')


def bench_histogram(args, rng) -> None:
    t_end = WINDOW_US
    events = random_events(rng, args.window_events, WINDOW_US)
    height, width = GEN1_SIZE
    ours = median_seconds(
        lambda: stacked_histogram(events, t_end, WINDOW_US, NUM_BINS, height,
                                  width, clip=CLIP, time_span='window'),
        args.repeats)
    baseline = median_seconds(lambda: baseline_histogram(events, t_end),
                              args.repeats)
    np.testing.assert_array_equal(
        stacked_histogram(events, t_end, WINDOW_US, NUM_BINS, height, width,
                          clip=CLIP, time_span='window'),
        baseline_histogram(events, t_end))
    print(f'50 ms Gen1 window of {len(events)} events -> '
          f'[{NUM_BINS}, 2, {height}, {width}] (equal outputs):')
    print(f'  ours (bincount per bin) {ours * 1e3:.2f} ms '
          f'({ours / len(events) * 1e9:.1f} ns per event); baseline '
          f'(np.add.at) {baseline * 1e3:.2f} ms; ratio {baseline / ours:.1f}x')
    print(f'  target < {WINDOW_TARGET_MS:g} ms: '
          f'{"met" if ours * 1e3 < WINDOW_TARGET_MS else "NOT met"}')


def main(argv=None) -> None:
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    threads = ', '.join(f'{name}={os.environ.get(name, "unset")}'
                        for name in THREAD_VARIABLES)
    print(f'one thread ({threads}), median of {args.repeats} runs')
    with tempfile.TemporaryDirectory() as folder:
        bench_decode(args, rng, folder)
    bench_histogram(args, rng)


if __name__ == '__main__':
    main()
