"""Prophesee ``.dat`` recordings (Gen1 ``*_td.dat``, 1Mpx): a memory-mapped
reader that reads a time window by binary search, and a writer.

Layout: optional ASCII header lines that start with ``% `` (``% Width 304``,
``% Height 240``, ``% Version 2``, ...), then, only when a header exists, one
``ev_type`` byte (0 = Event2D) and one ``ev_size`` byte (8), then
little-endian records :data:`RECORD_DTYPE`: ``t`` in microseconds and one
word ``v`` with ``x = v & 0x3FFF``, ``y = (v & 0x0FFFC000) >> 14``,
``p = (v & 0x10000000) >> 28``.
"""
import bisect
import os
from typing import Dict, Iterator, Optional, Sequence, Tuple

import numpy as np

from mmtpspike.utils.config import SetupError
from .events import Events
from .file_output import check_writable, written_in_place

#: one Event2D record as stored on disk
RECORD_DTYPE = np.dtype([('t', '<u4'), ('_', '<i4')])
#: ``ev_type`` of Event2D records, the only type read here
EVENT_2D_TYPE = 0
#: bits per coordinate: x and y must be below ``2 ** COORDINATE_BITS``
COORDINATE_BITS = 14
_Y_SHIFT = COORDINATE_BITS
_P_SHIFT = 2 * COORDINATE_BITS
_COORDINATE_MASK = (1 << COORDINATE_BITS) - 1
_HEADER_PREFIX = b'% '
#: records checked on each side of a read window (see
#: ``DatRecording._check_window_edges``)
_EDGE_RECORDS = 2
#: how to fix a recording whose timestamps are not sorted
UNSORTED_FIX = 'sort the file (read_all, sort by t, write it again).'


def decode_records(records: np.ndarray) -> Events:
    """Unpack Event2D records into event columns.

    Each output column is written in one pass over the input.

    Args:
        records (np.ndarray): ``[N]`` records of :data:`RECORD_DTYPE`, e.g.
            a slice of a memory map.

    Returns:
        Events: ``t`` int64, ``x`` / ``y`` uint16, ``p`` uint8.
    """
    records = np.ascontiguousarray(records, dtype=RECORD_DTYPE)
    words = records.view('<u4').reshape(-1, 2)[:, 1]
    x = np.empty(len(records), np.uint16)
    y = np.empty(len(records), np.uint16)
    p = np.empty(len(records), np.uint8)
    np.bitwise_and(words, _COORDINATE_MASK, out=x, casting='unsafe')
    np.right_shift(words, _Y_SHIFT, out=y, casting='unsafe')
    np.bitwise_and(y, _COORDINATE_MASK, out=y)
    np.right_shift(words, _P_SHIFT, out=p, casting='unsafe')
    np.bitwise_and(p, 1, out=p)
    return Events(t=records['t'].astype(np.int64), x=x, y=y, p=p)


def encode_records(events: Events) -> np.ndarray:
    """Pack event columns into Event2D records (inverse of
    :func:`decode_records`; the caller checks the ranges).

    Args:
        events (Events): Events with ``t < 2 ** 32``, ``x, y < 2 ** 14``
            and ``p`` in {0, 1}.

    Returns:
        np.ndarray: ``[N]`` records of :data:`RECORD_DTYPE`.
    """
    records = np.empty(len(events), RECORD_DTYPE)
    records['t'] = events.t
    records['_'] = (events.x.astype(np.int32)
                    | (events.y.astype(np.int32) << _Y_SHIFT)
                    | (events.p.astype(np.int32) << _P_SHIFT))
    return records


def _parse_size(path: str, header: Dict[str, str]
                ) -> Tuple[Optional[int], Optional[int]]:
    """Sensor ``(width, height)`` named by a header, from ``Width`` /
    ``Height`` lines, a ``geometry WxH`` line or a ``format
    ...;width=W;height=H`` line; ``(None, None)`` when none names it."""
    keys = {key.lower(): value for key, value in header.items()}
    candidates = []
    if 'width' in keys or 'height' in keys:
        candidates.append(('Width/Height', keys.get('width'),
                           keys.get('height')))
    if 'geometry' in keys:
        width, _, height = keys['geometry'].partition('x')
        candidates.append(('geometry', width, height))
    if 'format' in keys:
        options = dict(
            part.split('=', 1) for part in keys['format'].split(';')
            if '=' in part)
        if 'width' in options or 'height' in options:
            candidates.append(('format', options.get('width'),
                               options.get('height')))
    sizes = {}
    for source, width, height in candidates:
        try:
            sizes[source] = tuple(
                None if value is None else int(value)
                for value in (width, height))
        except ValueError:
            raise SetupError(
                f'{path}: the header line(s) {source} do not name a sensor '
                f'size as integers (width {width!r}, height {height!r}); '
                'fix or remove those header lines.') from None
    if len(set(sizes.values())) > 1:
        raise SetupError(
            f'{path}: the header names different sensor sizes '
            f'(width, height): {sizes}; fix the header.')
    return next(iter(sizes.values()), (None, None))


def read_header(path: str) -> Tuple[Dict[str, str], int, int, int]:
    """Read the header of a ``.dat`` file.

    Args:
        path (str): ``.dat`` file.

    Returns:
        tuple: ``(header, data_offset, ev_type, ev_size)``: the ``% key
        value`` lines as a dict (key -> rest of the line), the byte offset
        of the first record, the event type and the record size in bytes.
    """
    header = {}
    with open(path, 'rb') as file:
        while True:
            offset = file.tell()
            line = file.readline()
            if not line.startswith(_HEADER_PREFIX):
                break
            key, _, value = line[len(_HEADER_PREFIX):].decode(
                'latin-1').strip().partition(' ')
            header[key] = value.strip()
        file.seek(offset)
        if not header:
            return header, offset, EVENT_2D_TYPE, RECORD_DTYPE.itemsize
        type_and_size = file.read(2)
    if len(type_and_size) < 2:
        raise SetupError(
            f'{path}: the file ends inside its header, before the ev_type '
            'and ev_size bytes; the file is truncated, copy it again.')
    ev_type, ev_size = type_and_size
    return header, offset + 2, ev_type, ev_size


def check_events(path: str, events: Events, first_index: int,
                 width: Optional[int], height: Optional[int],
                 times: Sequence, unsorted_fix: str = UNSORTED_FIX) -> None:
    """Raise when ``events`` (records ``first_index`` on of a recording)
    are not sorted by time or leave a ``width`` x ``height`` sensor.

    Args:
        path (str): The recording, named in the error.
        events (Events): Decoded records.
        first_index (int): Index of ``events[0]`` in the recording.
        width (int, optional): Sensor width, None to skip the check.
        height (int, optional): Sensor height, None to skip the check.
        times (Sequence): The recording's ``t`` column (for the message).
        unsorted_fix (str): The fix named for unsorted timestamps.

    Raises:
        SetupError: Naming the file, the first bad event and the fix.
    """
    decreasing = np.flatnonzero(events.t[1:] < events.t[:-1])
    if len(decreasing):
        raise_unsorted(path, times, first_index + int(decreasing[0]),
                       unsorted_fix)
    if len(events) == 0:
        return
    for axis, size in (('x', width), ('y', height)):
        coordinates = getattr(events, axis)
        if size is not None and coordinates.max() >= size:
            index = first_index + int(np.argmax(coordinates >= size))
            raise SetupError(
                f'{path}: event {index} has {axis} = {coordinates.max()}, '
                f'outside the sensor size {width}x{height} named by the '
                'header: the header names a different size than the events '
                'reach (wrong camera or corrupt file); fix the header.')


def check_window_edges(path: str, times: Sequence, window_times: np.ndarray,
                       start: int, end: int, t_start_us: int,
                       t_end_us: int,
                       unsorted_fix: str = UNSORTED_FIX) -> None:
    """Raise when the records around a window found by binary search
    contradict sorted timestamps.

    A sorted recording has ``t[start - 1] < t_start_us <= t[start]``,
    ``t[end - 1] < t_end_us <= t[end]`` and sorted records next to the
    window; this catches an out-of-order record at either edge, which would
    mislead the binary search (a full check reads the whole recording).

    Args:
        path (str): The recording, named in the error.
        times (Sequence): The recording's ``t`` column.
        window_times (np.ndarray): ``times[start:end]`` as read.
        start (int): First index of the window.
        end (int): End index (exclusive) of the window.
        t_start_us (int): Window start searched for.
        t_end_us (int): Window end searched for.
        unsorted_fix (str): The fix named for unsorted timestamps.
    """
    before = np.asarray(times[max(start - _EDGE_RECORDS, 0):start])
    after = np.asarray(times[end:end + _EDGE_RECORDS])
    edges = np.concatenate(
        [before, window_times[:1], window_times[-1:], after])
    if np.any(edges[1:] < edges[:-1]):
        raise_unsorted(path, times, start if len(before) else end, unsorted_fix)
    if len(before) and before[-1] >= t_start_us:
        raise_unsorted(path, times, start - 1, unsorted_fix)
    if len(window_times) and window_times[0] < t_start_us:
        raise_unsorted(path, times, start, unsorted_fix)
    if len(window_times) and window_times[-1] >= t_end_us:
        raise_unsorted(path, times, end - 1, unsorted_fix)
    if len(after) and after[0] < t_end_us and t_end_us > t_start_us:
        raise_unsorted(path, times, end, unsorted_fix)


def overlapping_chunks(num_events: int,
                       chunk_events: int) -> Iterator[Tuple[int, int]]:
    """``(first, end)`` index ranges that cover ``num_events`` events in
    chunks of ``chunk_events``, each starting one event before the last
    one ended, so checking each chunk also checks the order across
    chunks (``validate`` of every reader)."""
    for start in range(0, num_events, chunk_events):
        yield max(start - 1, 0), start + chunk_events


def raise_unsorted(path: str, times: Sequence, index: int,
                   fix: str = UNSORTED_FIX) -> None:
    """Raise for timestamps that are not sorted near event ``index``."""
    first = max(index - 1, 0)
    raise SetupError(
        f'{path}: timestamps are not sorted near event {index} (events '
        f'{first}.. have t = {np.asarray(times[first:index + 2]).tolist()} '
        'us); time windows need events sorted by time. Run validate() to '
        f'find every problem; {fix}')


class DatRecording:
    """A Prophesee ``.dat`` recording, memory-mapped and read by time window.

    The header is read when the object is made; the records are mapped on
    first use in each process and never pickled, so a recording can be
    handed to forked or spawned DataLoader workers. Every read checks its
    window: timestamps non-decreasing, also across the records next to the
    window (an out-of-order record at an edge would mislead the binary
    search), and coordinates inside the header's sensor size.
    :meth:`validate` checks the whole file.

    Args:
        path (str): ``.dat`` file.

    Example:
        >>> recording = DatRecording('data/gen1_demo/val/demo_val_00_td.dat')
        >>> (recording.width, recording.height)
        (304, 240)
        >>> events = recording.read(1_000_000, 1_050_000)  # a 50 ms window
        >>> int(events.t.min()) >= 1_000_000 > int(events.t.max()) - 50_000
        True
    """

    def __init__(self, path: str) -> None:
        self.path = str(path)
        self.header, self._data_offset, ev_type, ev_size = read_header(
            self.path)
        if ev_type != EVENT_2D_TYPE or ev_size != RECORD_DTYPE.itemsize:
            raise SetupError(
                f'{self.path}: unsupported event type {ev_type} of '
                f'{ev_size} bytes; only Event2D records (type '
                f'{EVENT_2D_TYPE}, {RECORD_DTYPE.itemsize} bytes: t, x, y, '
                'p) are read. Convert the file to Event2D .dat (or to h5).')
        self.width, self.height = _parse_size(self.path, self.header)
        data_bytes = os.path.getsize(self.path) - self._data_offset
        trailing = data_bytes % ev_size
        if trailing:
            raise SetupError(
                f'{self.path}: {data_bytes} bytes of events are not a '
                f'multiple of the {ev_size}-byte record ({trailing} trailing '
                'bytes): the file is truncated; copy or download it again.')
        self.num_events = data_bytes // ev_size
        self._records = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state['_records'] = None
        return state

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({self.path!r}, '
                f'{self.num_events} events, {self.width}x{self.height})')

    @property
    def records(self) -> np.ndarray:
        """``[num_events]`` records of :data:`RECORD_DTYPE`, memory-mapped
        read-only (mapped on first use in this process)."""
        if self._records is None:
            if self.num_events == 0:
                self._records = np.zeros(0, RECORD_DTYPE)
            else:
                self._records = np.memmap(
                    self.path, RECORD_DTYPE, mode='r',
                    offset=self._data_offset, shape=(self.num_events, ))
        return self._records

    def time_range(self) -> Optional[Tuple[int, int]]:
        """``(first, last)`` timestamp in microseconds, None when empty."""
        if self.num_events == 0:
            return None
        times = self.records['t']
        return int(times[0]), int(times[-1])

    def read(self, t_start_us: int, t_end_us: int) -> Events:
        """The events with ``t_start_us <= t < t_end_us``.

        Only the window is read: its bounds are found by binary search on
        the mapped ``t`` column.

        Raises:
            SetupError: The window's timestamps decrease, or its events lie
                outside the header's sensor size.
        """
        times = self.records['t']
        start = _search_sorted(times, t_start_us)
        end = start
        if t_end_us > t_start_us:
            end = max(_search_sorted(times, t_end_us), start)
        events = decode_records(self.records[start:end])
        self._check_events(events, start)
        check_window_edges(self.path, times, events.t, start, end,
                           t_start_us, t_end_us)
        return events

    def read_all(self) -> Events:
        """All events of the recording, checked like a window."""
        events = decode_records(self.records)
        self._check_events(events, 0)
        return events

    def validate(self, chunk_events: int = 1 << 22) -> None:
        """Check the whole file in chunks: timestamps non-decreasing and
        coordinates inside the header's sensor size.

        Args:
            chunk_events (int): Events decoded at a time.

        Raises:
            SetupError: Naming the file, the first bad event and the fix.
        """
        for first, end in overlapping_chunks(self.num_events, chunk_events):
            self._check_events(decode_records(self.records[first:end]), first)

    def _check_events(self, events: Events, first_index: int) -> None:
        check_events(self.path, events, first_index, self.width, self.height,
                     self.records['t'])


def _search_sorted(times: np.ndarray, t_us: int) -> int:
    """Index of the first of the sorted ``times`` at or after ``t_us``.

    Bisection element by element: it touches ``log2(N)`` records of the
    map, where ``np.searchsorted`` would copy the whole column (the records
    after a header of odd length are not aligned).
    """
    return bisect.bisect_left(times, t_us)


def _check_encodable(path: str, events: Events, width: int,
                     height: int) -> None:
    """Raise when ``events`` cannot be stored as Event2D records of a
    ``width`` x ``height`` sensor."""
    limit = 1 << COORDINATE_BITS
    if not (0 < width <= limit and 0 < height <= limit):
        raise ValueError(
            f'{path}: sensor size {width}x{height} does not fit the .dat '
            f'format (1 to {limit} pixels a side).')
    if len(events) == 0:
        return
    problems = []
    if events.x.max() >= width or events.y.max() >= height:
        problems.append(
            f'coordinates reach x = {events.x.max()}, y = {events.y.max()} '
            f'but the sensor is {width}x{height}')
    if events.p.max() > 1:
        problems.append(f'polarity {events.p.max()} is not 0 or 1')
    if events.t.min() < 0 or events.t.max() >= 1 << 32:
        problems.append(
            f'timestamps {events.t.min()}..{events.t.max()} us do not fit '
            'unsigned 32 bits')
    if np.any(events.t[1:] < events.t[:-1]):
        problems.append('timestamps are not sorted')
    if problems:
        raise ValueError(f'{path}: cannot write these events: '
                         + '; '.join(problems) + '.')


def write_dat(path: str,
              events: Events,
              width: int,
              height: int,
              header: bool = True,
              version: int = 2,
              overwrite: bool = False) -> None:
    """Write events as a Prophesee ``.dat`` file of Event2D records.

    The file is written beside ``path`` and moved into place when complete,
    so a failed write never leaves a partial file or destroys an old one.

    Args:
        path (str): Output ``.dat`` file.
        events (Events): Events sorted by time, ``0 <= t < 2 ** 32``.
        width (int): Sensor width; every ``x < width <= 2 ** 14``.
        height (int): Sensor height; every ``y < height <= 2 ** 14``.
        header (bool): Write the ``% `` header lines (``Version``,
            ``Width``, ``Height``) and the ``ev_type`` / ``ev_size`` bytes;
            False writes bare records, as the oldest files are.
        version (int): Value of the ``% Version`` line.
        overwrite (bool): Replace an existing file.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        ValueError: Events out of range or unsorted.
    """
    path = str(path)
    check_writable(path, overwrite)
    _check_encodable(path, events, width, height)
    with written_in_place(path) as partial_path, open(partial_path,
                                                      'wb') as file:
        if header:
            file.write(
                f'% Data file containing Event2D events.\n'
                f'% Version {version}\n'
                f'% Width {width}\n'
                f'% Height {height}\n'.encode('ascii'))
            file.write(bytes([EVENT_2D_TYPE, RECORD_DTYPE.itemsize]))
        encode_records(events).tofile(file)
