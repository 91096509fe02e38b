"""Latency and peak-memory measurement of backbones, one process per run.

Each setting runs in a fresh (spawned) process, so its peak memory is its own:
on CPU the peak resident set size during the forwards minus the size before
them; on CUDA ``torch.cuda.max_memory_allocated``. glibc keeps freed heap
memory and reuses it unevenly, which makes CPU peaks of similar runs differ
by tens of MiB; :data:`EXACT_MEMORY_ENV` makes every large allocation an
``mmap`` returned at once, so the resident peak is the live peak. It also
slows allocation down, so tools measure latency and memory in separate runs.
"""
import multiprocessing
import os
import resource
import statistics
import time
from typing import Callable, Dict, List, Optional

import torch


def _rss_mib() -> float:
    with open('/proc/self/statm') as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_forward(model: Callable, inputs: tuple, warmup: int, repeats: int,
                 device: str = 'cpu') -> Dict:
    """Median latency and peak memory of ``model(*inputs)`` (no grad).

    Returns:
        dict: ``times`` (s), ``median`` (s), ``peak_mib`` and the last
        ``outputs``.
    """
    cuda = device.startswith('cuda')
    with torch.no_grad():
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        else:
            base = _rss_mib()
        outputs = None
        times: List[float] = []
        for index in range(warmup + repeats):
            start = time.perf_counter()
            outputs = model(*inputs)
            if cuda:
                torch.cuda.synchronize()
            if index >= warmup:
                times.append(time.perf_counter() - start)
        if cuda:
            peak = (torch.cuda.max_memory_allocated() - base) / 2**20
        else:
            peak = max(_peak_rss_mib() - base, 0.)
    return dict(times=times, median=statistics.median(times), peak_mib=peak,
                outputs=outputs)


EXACT_MEMORY_ENV = {'MALLOC_MMAP_THRESHOLD_': '131072'}


def run_isolated(func: Callable, *args, env: Optional[Dict] = None):
    """Run ``func(*args)`` in a fresh spawned process and return its result.

    Args:
        func (callable): an importable (module-level) function.
        env (dict, optional): extra environment variables of the process
            (e.g. :data:`EXACT_MEMORY_ENV`).
    """
    context = multiprocessing.get_context('spawn')
    saved = {key: os.environ.get(key) for key in env or {}}
    os.environ.update(env or {})
    try:
        with context.Pool(1) as pool:
            return pool.apply(func, args)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key)
            else:
                os.environ[key] = value
