"""Event recordings in h5, as RVT's downloads store them (``*_td.dat.h5``
for Gen1, ``*_td.h5`` for 1Mpx) and as :func:`write_h5` converts them.

Layout: one dataset per column, ``events/t`` (microseconds), ``events/x``,
``events/y``, ``events/p`` (``p <= 0`` is OFF, as RVT reads it), and the
sensor size as the scalar datasets ``events/width`` / ``events/height``
(RVT) or as attributes of the ``events`` group. RVT's files are compressed
with filters that ``hdf5plugin`` registers; both packages are the optional
extra ``events-h5``.
"""
import bisect
import os
from typing import Optional, Sequence, Tuple

import numpy as np

from mmtpspike.utils.config import SetupError
from .events import Events
from .file_output import check_writable, written_in_place
from .prophesee_dat import (UNSORTED_FIX, check_events, check_window_edges,
                            overlapping_chunks)

#: h5 group holding the event columns
EVENTS_GROUP = 'events'
COLUMNS = ('t', 'x', 'y', 'p')
#: a binary search reads single timestamps until its range is this short,
#: then reads the range at once
SEARCH_BLOCK = 4096


def import_h5py():
    """``h5py``, with the compression filters of ``hdf5plugin`` registered.

    Raises:
        SetupError: The optional extra ``events-h5`` is not installed.
    """
    try:
        import h5py
        import hdf5plugin  # noqa: F401 (registers the filters on import)
    except ImportError as error:
        raise SetupError(
            f'Reading and writing .h5 event recordings needs h5py and '
            f'hdf5plugin ({error}): pip install "mmtpspike[events-h5]"'
        ) from error
    return h5py


def search_sorted(times: Sequence, t_us: int) -> int:
    """Index of the first of the sorted ``times`` at or after ``t_us``,
    reading ``log2(N / SEARCH_BLOCK)`` single values and one block.

    Args:
        times (Sequence): A sorted 1-d h5 dataset or array.
        t_us (int): Time searched for.
    """
    low, high = 0, len(times)
    while high - low > SEARCH_BLOCK:
        middle = (low + high) // 2
        if times[middle] < t_us:
            low = middle + 1
        else:
            high = middle
    return low + bisect.bisect_left(np.asarray(times[low:high]), t_us)


class H5Recording:
    """An h5 event recording, read by time window.

    The file is opened on first use in each process (h5py handles do not
    survive a fork) and never pickled, so a recording can be handed to
    DataLoader workers. A window is found by binary search on ``events/t``
    without loading it, and checked like :class:`DatRecording`'s windows.

    RVT notes that the timestamps of its h5 files are "not sorted
    everywhere" and sorts them by a running maximum when reading;
    ``repair_time=True`` does the same (it loads ``events/t`` once per
    process, 8 bytes per event). Without it, an unsorted window is an error
    that names this option.

    Args:
        path (str): ``.h5`` file.
        repair_time (bool): Replace each timestamp by the running maximum of
            the timestamps up to it, as RVT does.
    """

    def __init__(self, path: str, repair_time: bool = False) -> None:
        self.path = str(path)
        self.repair_time = repair_time
        self._file = None
        self._file_pid = None
        self._times = None
        with import_h5py().File(self.path, 'r') as file:
            group = _events_group(self.path, file)
            lengths = {
                name: len(_column(self.path, group, name))
                for name in COLUMNS
            }
            self.width, self.height = (_sensor_size(group, name)
                                       for name in ('width', 'height'))
        if len(set(lengths.values())) != 1:
            raise SetupError(
                f'{self.path}: the event columns differ in length {lengths}; '
                'the file is damaged, convert or download it again.')
        self.num_events = lengths['t']

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.update(_file=None, _file_pid=None, _times=None)
        return state

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({self.path!r}, '
                f'{self.num_events} events, {self.width}x{self.height})')

    @property
    def group(self):
        """The ``events`` h5 group, the file opened once in each process."""
        if self._file is None or self._file_pid != os.getpid():
            self._file = import_h5py().File(self.path, 'r')
            self._file_pid = os.getpid()
            self._times = None
        return _events_group(self.path, self._file)

    def _column(self, name: str):
        return _column(self.path, self.group, name)

    @property
    def times(self) -> Sequence:
        """The ``t`` column: the h5 dataset, or with ``repair_time`` its
        running maximum in memory."""
        column = self._column('t')
        if not self.repair_time:
            return column
        if self._times is None:
            self._times = np.maximum.accumulate(np.asarray(column, np.int64))
        return self._times

    def time_range(self) -> Optional[Tuple[int, int]]:
        """``(first, last)`` timestamp in microseconds, None when empty."""
        if self.num_events == 0:
            return None
        times = self.times
        return int(times[0]), int(times[self.num_events - 1])

    def read(self, t_start_us: int, t_end_us: int) -> Events:
        """The events with ``t_start_us <= t < t_end_us``.

        Raises:
            SetupError: The window's timestamps decrease, or its events lie
                outside the sensor size.
        """
        times = self.times
        start = search_sorted(times, t_start_us)
        end = start
        if t_end_us > t_start_us:
            end = max(search_sorted(times, t_end_us), start)
        events = self._read_slice(start, end)
        self._check_window_edges(events.t, start, end, t_start_us, t_end_us)
        return events

    def read_all(self) -> Events:
        """All events of the recording, checked like a window."""
        return self._read_slice(0, self.num_events)

    def validate(self, chunk_events: int = 1 << 22) -> None:
        """Check the whole file in chunks: timestamps non-decreasing and
        coordinates inside the sensor size.

        Args:
            chunk_events (int): Events read at a time.

        Raises:
            SetupError: Naming the file, the first bad event and the fix.
        """
        for first, end in overlapping_chunks(self.num_events, chunk_events):
            self._read_slice(first, end)

    def _read_slice(self, start: int, end: int) -> Events:
        """Events ``start:end``, cast to the :class:`Events` dtypes and
        checked."""
        columns = {name: np.asarray(self._column(name)[start:end])
                   for name in ('x', 'y', 'p')}
        for axis in ('x', 'y'):
            if len(columns[axis]) and columns[axis].min() < 0:
                raise SetupError(
                    f'{self.path}: negative {axis} coordinates between '
                    f'events {start} and {end}; the file is damaged.')
        events = Events.from_arrays(
            t=self.times[start:end], x=columns['x'], y=columns['y'],
            p=columns['p'] > 0)
        check_events(self.path, events, start, self.width, self.height,
                     self.times, unsorted_fix=self._unsorted_fix())
        return events

    def _check_window_edges(self, window_times: np.ndarray, start: int,
                            end: int, t_start_us: int,
                            t_end_us: int) -> None:
        check_window_edges(self.path, self.times, window_times, start, end,
                           t_start_us, t_end_us,
                           unsorted_fix=self._unsorted_fix())

    def _unsorted_fix(self) -> str:
        if self.repair_time:
            return UNSORTED_FIX
        return ('RVT\'s h5 files are not sorted everywhere: open them with '
                'H5Recording(path, repair_time=True) to sort by a running '
                'maximum as RVT does; or ' + UNSORTED_FIX)


def _events_group(path: str, file):
    if EVENTS_GROUP not in file:
        raise SetupError(
            f'{path}: no "{EVENTS_GROUP}" group (found {sorted(file)}); '
            f'expected {EVENTS_GROUP}/t, x, y, p as RVT and write_h5 make.')
    return file[EVENTS_GROUP]


def _column(path: str, group, name: str):
    if name not in group:
        raise SetupError(
            f'{path}: no dataset {EVENTS_GROUP}/{name} (found '
            f'{sorted(group)}); expected {EVENTS_GROUP}/t, x, y, p.')
    return group[name]


def _sensor_size(group, name: str) -> Optional[int]:
    """Sensor width or height: a scalar dataset or an attribute of the
    events group; None when absent."""
    if name in group:
        return int(group[name][()])
    if name in group.attrs:
        return int(group.attrs[name])
    return None


def write_h5(path: str,
             events: Events,
             width: int,
             height: int,
             overwrite: bool = False) -> None:
    """Write events as an h5 recording that :class:`H5Recording` reads.

    Columns are gzip-compressed with their :class:`Events` dtypes; the
    sensor size is stored as ``events/width`` / ``events/height`` as in
    RVT's files.

    Args:
        path (str): Output ``.h5`` file.
        events (Events): Events sorted by time.
        width (int): Sensor width; every ``x < width``.
        height (int): Sensor height; every ``y < height``.
        overwrite (bool): Replace an existing file.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        ValueError: Events unsorted or outside the sensor.
    """
    path = str(path)
    check_writable(path, overwrite)
    try:
        check_events(path, events, 0, width, height, events.t)
    except SetupError as error:
        raise ValueError(f'cannot write these events: {error}') from None
    with written_in_place(path) as partial_path, import_h5py().File(
            partial_path, 'w') as file:
        group = file.create_group(EVENTS_GROUP)
        for name in COLUMNS:
            group.create_dataset(
                name, data=getattr(events, name),
                compression='gzip' if len(events) else None)
        group['width'] = width
        group['height'] = height
