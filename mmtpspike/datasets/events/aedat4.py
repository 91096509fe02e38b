"""AEDAT 4.0 files (iniVation DV software, DAVIS346 cameras; FE108, VisEvent
and FELT ship them): a writer and a reader of the events and frame
timestamps.

Layout: the magic line ``#!AER-DAT4.0\\r\\n``, a little-endian uint32 length
and the IOHeader flatbuffer (identifier ``IOHE``: ``compression`` int32,
``file_data_position`` int64, -1 when the file has no data table, and
``description``, an XML document whose ``outInfo`` node names each stream
by id with its ``typeIdentifier``, ``EVTS`` events or ``FRME`` frames, and
its ``info`` node's ``sizeX`` / ``sizeY``), then packets: int32 stream id,
int32 byte size and a size-prefixed flatbuffer (identifier ``EVTS``: an
``EventPacket`` whose ``elements`` are 16-byte ``Event`` structs, int64
``t`` in microseconds, int16 ``x``, int16 ``y``, bool ``on``; identifier
``FRME``: one ``Frame`` table with its timestamps, size and pixels).

:func:`write_aedat4` writes uncompressed packets by hand (no flatbuffers
package needed); :class:`Aedat4Recording` reads any AEDAT4 file (also LZ4 /
Zstd compressed ones) through the ``aedat`` package (extra
``events-aedat``).
"""
import os.path as osp
import struct
from typing import Optional, Sequence, Tuple

import numpy as np

from mmtpspike.utils.config import SetupError
from .events import Events
from .file_output import check_writable, written_in_place

MAGIC = b'#!AER-DAT4.0\r\n'
#: stream ids written by :func:`write_aedat4`
EVENTS_STREAM_ID = 0
FRAMES_STREAM_ID = 1
#: (width, height) of the frames :func:`write_aedat4` writes (timestamps
#: only)
PLACEHOLDER_FRAME = (1, 1)
#: events per written event packet at most
PACKET_EVENTS = 1 << 15
#: one ``Event`` struct as a flatbuffer stores it (16 bytes, 8-aligned)
EVENT_STRUCT_DTYPE = np.dtype({
    'names': ['t', 'x', 'y', 'on'],
    'formats': ['<i8', '<i2', '<i2', 'u1'],
    'offsets': [0, 8, 10, 12],
    'itemsize': 16
})
#: the fix named when the reader's package is missing
INSTALL_HINT = ('pip install "mmtpspike[events-aedat]" (or pip install '
                'aedat)')
_STREAM_XML = (
    '<node name="{id}" path="/mainloop/Recorder/outInfo/{id}/">'
    '<attr key="compression" type="string">NONE</attr>'
    '<attr key="originalModuleName" type="string">mmtpspike</attr>'
    '<attr key="originalOutputName" type="string">{name}</attr>'
    '<attr key="typeIdentifier" type="string">{type}</attr>'
    '<node name="info" path="/mainloop/Recorder/outInfo/{id}/info/">'
    '<attr key="sizeX" type="int">{width}</attr>'
    '<attr key="sizeY" type="int">{height}</attr>'
    '<attr key="source" type="string">mmtpspike</attr>'
    '</node></node>')


def _pad(size: int, alignment: int) -> int:
    """Bytes that bring ``size`` to a multiple of ``alignment``."""
    return -size % alignment


def _vtable(field_offsets: Sequence[int], table_size: int) -> bytes:
    """A flatbuffer vtable: its size, the table size, each field's offset
    in the table (0 = absent)."""
    return struct.pack(f'<{2 + len(field_offsets)}H',
                       4 + 2 * len(field_offsets), table_size,
                       *field_offsets)


def _size_prefixed(identifier: bytes, vtable: bytes, table: bytes,
                   tail: bytes) -> bytes:
    """Lay out ``[size][root][identifier][vtable][table][tail]``, padded
    to a multiple of 8 bytes.

    The table starts 8-aligned at :func:`_table_position` (the caller
    computes the table's offsets from it) and ``tail`` right after it.
    """
    table_pos = _table_position(len(vtable))
    head = bytearray(12)
    struct.pack_into('<I4s', head, 4, table_pos - 4, identifier)
    body = (bytes(head) + vtable + bytes(table_pos - 12 - len(vtable))
            + table + tail)
    body += bytes(_pad(len(body), 8))
    return struct.pack('<I', len(body) - 4) + body[4:]


def _table_position(vtable_size: int) -> int:
    """Position of the table after the 12-byte head and the vtable,
    8-aligned."""
    end = 12 + vtable_size
    return end + _pad(end, 8)


def event_packet(events: Events) -> bytes:
    """A size-prefixed ``EventPacket`` flatbuffer (identifier ``EVTS``).

    Args:
        events (Events): The packet's events.

    Returns:
        bytes: ``[size][root][EVTS][vtable][table][vector]``, the vector of
        16-byte ``Event`` structs 8-aligned.
    """
    vtable = _vtable([4], 8)
    table_pos = _table_position(len(vtable))
    # the vector's length word sits 4 bytes before its 8-aligned elements
    vector_pos = table_pos + 8 + 4
    elements = np.zeros(len(events), EVENT_STRUCT_DTYPE)
    elements['t'] = events.t
    elements['x'] = events.x
    elements['y'] = events.y
    elements['on'] = events.p
    table = struct.pack('<iI', table_pos - 12, vector_pos - (table_pos + 4))
    tail = bytes(4) + struct.pack('<I', len(events)) + elements.tobytes()
    return _size_prefixed(b'EVTS', vtable, table, tail)


def frame_packet(t_us: int, width: int, height: int) -> bytes:
    """A size-prefixed grey ``Frame`` flatbuffer (identifier ``FRME``) of
    zero pixels whose every timestamp (``t``, ``begin_t``, ``end_t``,
    exposure begin and end) is ``t_us``.

    Args:
        t_us (int): The frame's timestamp in microseconds.
        width (int): Frame width.
        height (int): Frame height.

    Returns:
        bytes: The packet payload.
    """
    # table: soffset, pixels offset, 5 int64 times, 4 int16 sizes, format
    field_offsets = [8, 16, 24, 32, 40, 56, 48, 50, 52, 54, 4]
    vtable = _vtable(field_offsets, 64)
    table_pos = _table_position(len(vtable))
    vector_pos = table_pos + 64
    table = struct.pack('<iI5q4hb7x', table_pos - 12,
                        vector_pos - (table_pos + 4), *([t_us] * 5), width,
                        height, 0, 0, 0)
    tail = struct.pack('<I', width * height) + bytes(width * height)
    return _size_prefixed(b'FRME', vtable, table, tail)


def io_header(width: int, height: int, frames: bool) -> bytes:
    """The IOHeader flatbuffer (identifier ``IOHE``) of an uncompressed
    file without data table, preceded by its uint32 length.

    Args:
        width (int): Sensor width (``sizeX`` of each stream).
        height (int): Sensor height (``sizeY``).
        frames (bool): Describe a frames stream as well as the events.
    """
    streams = [(EVENTS_STREAM_ID, 'events', 'EVTS')]
    if frames:
        streams.append((FRAMES_STREAM_ID, 'frames', 'FRME'))
    description = ('<dv version="2.0"><node name="outInfo" '
                   'path="/mainloop/Recorder/outInfo/">' + ''.join(
                       _STREAM_XML.format(id=stream_id, name=name,
                                          type=kind, width=width,
                                          height=height)
                       for stream_id, name, kind in streams)
                   + '</node></dv>').encode('utf-8')
    # not size-prefixed: position 0 is the root offset
    vtable = _vtable([4, 8, 16], 20)
    vtable_pos = 8
    table_pos = vtable_pos + len(vtable)
    table_pos += _pad(table_pos, 8)
    string_pos = table_pos + 24
    head = struct.pack('<I4s', table_pos, b'IOHE')
    table = struct.pack('<iiqI4x', table_pos - vtable_pos, 0, -1,
                        string_pos - (table_pos + 16))
    buffer = (head + vtable + bytes(table_pos - vtable_pos - len(vtable))
              + table + struct.pack('<I', len(description)) + description
              + b'\0')
    buffer += bytes(_pad(len(buffer), 8))
    return struct.pack('<I', len(buffer)) + buffer


def _check_writable_events(path: str, events: Events, width: int,
                           height: int,
                           frame_times_us: Optional[np.ndarray]) -> None:
    """Raise ValueError naming ``path`` when the events or frame times
    cannot be written."""
    limit = 1 << 15
    problems = []
    if not (0 < width < limit and 0 < height < limit):
        problems.append(f'sensor size {width}x{height} is outside 1 to '
                        f'{limit - 1} pixels a side (int16)')
    elif len(events) and (events.x.max() >= width
                          or events.y.max() >= height):
        problems.append(
            f'coordinates reach x = {events.x.max()}, y = {events.y.max()} '
            f'but the sensor is {width}x{height}')
    if len(events) and events.p.max() > 1:
        problems.append(f'polarity {events.p.max()} is not 0 or 1')
    if len(events) and events.t.min() < 0:
        problems.append(f'timestamp {events.t.min()} us is negative')
    if np.any(events.t[1:] < events.t[:-1]):
        problems.append('event timestamps are not sorted')
    if frame_times_us is not None and (
            frame_times_us.ndim != 1
            or np.any(frame_times_us[1:] < frame_times_us[:-1])):
        problems.append('frame_times_us is not a sorted 1-d array')
    if problems:
        raise ValueError(f'{path}: cannot write these events: '
                         + '; '.join(problems) + '.')


def _packets(events: Events, frame_times_us: Optional[np.ndarray]):
    """``(stream_id, payload)`` in time order: the events before each frame
    time, then that frame, in packets of at most :data:`PACKET_EVENTS`."""
    frame_times = np.zeros(0, np.int64) if frame_times_us is None \
        else frame_times_us
    bounds = np.searchsorted(events.t, frame_times, side='left')
    start = 0
    for frame_t, bound in zip(frame_times.tolist(), bounds.tolist()):
        yield from _event_packets(events, start, bound)
        yield FRAMES_STREAM_ID, frame_packet(frame_t, *PLACEHOLDER_FRAME)
        start = bound
    yield from _event_packets(events, start, len(events))


def _event_packets(events: Events, start: int, end: int):
    """Event packets of ``events[start:end]``."""
    for first in range(start, end, PACKET_EVENTS):
        last = min(first + PACKET_EVENTS, end)
        yield EVENTS_STREAM_ID, event_packet(events[first:last])


def write_aedat4(path: str,
                 events: Events,
                 width: int,
                 height: int,
                 frame_times_us: Optional[Sequence[int]] = None,
                 overwrite: bool = False) -> None:
    """Write events (and frame timestamps) as an uncompressed AEDAT 4.0
    file that DV, dv-processing and the ``aedat`` package read.

    Events go to stream 0 (``EVTS``); with ``frame_times_us``, stream 1
    (``FRME``, declared ``width`` x ``height``) holds one frame per
    timestamp, all its timestamps equal to it, so a reader recovers the
    annotated frame times as FE108's APS frames give them. The frames are
    1 x 1 placeholders of zero: our readers take only their timestamps, and
    sensor-size frames of zeros would make most of a file (1.15 MB of the
    1.6 MB of a 60-frame 160 x 120 demo sequence). Packets are in
    time order: the events before a frame time precede its frame. The file
    is written beside ``path`` and moved into place when complete.

    Args:
        path (str): Output ``.aedat4`` file.
        events (Events): Events sorted by time, ``t >= 0`` microseconds,
            ``x < width``, ``y < height``.
        width (int): Sensor width (346 for a DAVIS346), below ``2 ** 15``.
        height (int): Sensor height (260 for a DAVIS346).
        frame_times_us (Sequence[int], optional): ``[N]`` sorted frame
            timestamps in microseconds; None writes no frames stream.
        overwrite (bool): Replace an existing file.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        ValueError: Events or frame times out of range or unsorted.
    """
    path = str(path)
    check_writable(path, overwrite)
    if frame_times_us is not None:
        frame_times_us = np.asarray(frame_times_us, dtype=np.int64)
    _check_writable_events(path, events, width, height, frame_times_us)
    with written_in_place(path) as partial_path, open(partial_path,
                                                      'wb') as file:
        file.write(MAGIC)
        file.write(io_header(width, height, frame_times_us is not None))
        for stream_id, payload in _packets(events, frame_times_us):
            file.write(struct.pack('<iI', stream_id, len(payload)))
            file.write(payload)


def import_aedat():
    """The ``aedat`` module; ImportError naming the extra when missing."""
    try:
        import aedat
    except ImportError as error:
        raise ImportError(
            'Reading AEDAT4 files needs the aedat package: '
            f'{INSTALL_HINT}.') from error
    return aedat


class Aedat4Recording:
    """An AEDAT4 recording's events and frame timestamps, decoded on open.

    AEDAT4 stores packets that may be LZ4 / Zstd compressed, so the file
    cannot be memory-mapped like ``.dat`` or read by window like ``.h5``:
    the whole file is decoded once, through ``aedat.Decoder``, into column
    arrays (about 13 bytes an event in memory), and windows are then cut
    by binary search. The first events stream gives the events and the
    sensor size; frame packets give :attr:`frame_times_us` (each frame's
    ``t``).

    Args:
        path (str): ``.aedat4`` file.

    Raises:
        ImportError: The ``aedat`` package is missing (extra
            ``events-aedat``).
        SetupError: The file cannot be decoded, holds no events stream or
            several, or its event timestamps decrease.
    """

    def __init__(self, path: str) -> None:
        self.path = str(path)
        aedat = import_aedat()
        if not osp.isfile(self.path):
            raise SetupError(f'{self.path}: no such AEDAT4 file.')
        decoder, streams = self._call(
            lambda: self._with_streams(aedat.Decoder(self.path)))
        events_ids = sorted(stream_id
                            for stream_id, stream in streams.items()
                            if stream['type'] == 'events')
        if len(events_ids) != 1:
            raise SetupError(
                f'{self.path}: {len(events_ids)} event streams '
                f'({streams}); exactly one is read. Export the recording '
                'with one events stream.')
        self.width = int(streams[events_ids[0]]['width'])
        self.height = int(streams[events_ids[0]]['height'])
        self.events, self._frame_times = self._call(
            lambda: self._decode(decoder, events_ids[0]))
        self.num_events = len(self.events)
        self.validate()

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({self.path!r}, '
                f'{self.num_events} events, {self.width}x{self.height}, '
                f'{len(self._frame_times)} frames)')

    def _call(self, function):
        """``function()``, its RuntimeError (the decoder's) turned into a
        SetupError naming the file."""
        try:
            return function()
        except RuntimeError as error:
            raise SetupError(
                f'{self.path}: not a readable AEDAT4 file ({error}); copy '
                'or download it again.') from error

    @staticmethod
    def _with_streams(decoder) -> tuple:
        """``(decoder, {stream id: stream info})``."""
        return decoder, decoder.id_to_stream()

    @staticmethod
    def _decode(decoder, events_id: int) -> Tuple[Events, np.ndarray]:
        """All events of stream ``events_id`` and every frame's ``t``."""
        parts, frame_times = [], []
        for packet in decoder:
            if packet['stream_id'] == events_id and 'events' in packet:
                parts.append(packet['events'])
            elif 'frame' in packet:
                frame_times.append(packet['frame']['t'])
        if not parts:
            return Events.empty(), np.asarray(frame_times, np.int64)
        records = np.concatenate(parts)
        events = Events(t=records['t'].astype(np.int64),
                        x=records['x'].astype(np.uint16),
                        y=records['y'].astype(np.uint16),
                        p=records['on'].astype(np.uint8))
        return events, np.asarray(frame_times, np.int64)

    @property
    def frame_times_us(self) -> np.ndarray:
        """``[N]`` int64 timestamps (``t``) of the file's frames in
        microseconds, in file order; empty without a frames stream."""
        return self._frame_times

    def time_range(self) -> Optional[Tuple[int, int]]:
        """``(first, last)`` timestamp in microseconds, None when empty."""
        if self.num_events == 0:
            return None
        return int(self.events.t[0]), int(self.events.t[-1])

    def read(self, t_start_us: int, t_end_us: int) -> Events:
        """The events with ``t_start_us <= t < t_end_us`` (a view of the
        decoded columns)."""
        start, end = np.searchsorted(self.events.t, [t_start_us, t_end_us])
        return self.events[int(start):max(int(end), int(start))]

    def read_all(self) -> Events:
        """All events."""
        return self.events

    def validate(self, chunk_events: int = 0) -> None:
        """Check the decoded events: timestamps non-decreasing and
        coordinates inside the stream's sensor size (``chunk_events`` is
        unused: the file is decoded whole).

        Raises:
            SetupError: Naming the file, the first bad event and the fix.
        """
        events = self.events
        decreasing = np.flatnonzero(events.t[1:] < events.t[:-1])
        if len(decreasing):
            index = int(decreasing[0]) + 1
            raise SetupError(
                f'{self.path}: event timestamps decrease at event {index} '
                f'({events.t[index - 1]} then {events.t[index]} us); time '
                'windows need events sorted by time. Sort the events by t '
                'and write the file again (write_aedat4).')
        for axis, size in (('x', self.width), ('y', self.height)):
            coordinates = getattr(events, axis)
            if len(events) and coordinates.max() >= size:
                raise SetupError(
                    f'{self.path}: events reach {axis} = '
                    f'{coordinates.max()}, outside the {self.width}x'
                    f'{self.height} sensor its stream info names; fix the '
                    'sizeX / sizeY of the file.')
