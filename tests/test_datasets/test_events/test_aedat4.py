"""write_aedat4 and Aedat4Recording: round trips through the aedat
package's decoder and the reader, windows, frame times and errors."""
import builtins

import numpy as np
import pytest

from mmtpspike.datasets.events import aedat4
from mmtpspike.datasets.events.aedat4 import Aedat4Recording, write_aedat4
from mmtpspike.datasets.events.events import Events
from mmtpspike.datasets.events.recordings import open_recording
from mmtpspike.utils.config import SetupError

aedat = pytest.importorskip('aedat')

WIDTH, HEIGHT = 346, 260  # DAVIS346
FRAME_TIMES = [0, 25_000, 50_000, 75_000, 100_000]


def random_events(num=3000, seed=0):
    """Sorted events over a DAVIS346 with both corners and polarities."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, 120_000, num))
    x = rng.integers(0, WIDTH, num)
    y = rng.integers(0, HEIGHT, num)
    x[:2], y[:2] = [0, WIDTH - 1], [0, HEIGHT - 1]
    return Events.from_arrays(t=t, x=x, y=y, p=rng.integers(0, 2, num))


def decode(path):
    """Events columns and frame times as aedat.Decoder reads them."""
    decoder = aedat.Decoder(str(path))
    streams = decoder.id_to_stream()
    parts, times = [], []
    for packet in decoder:
        if 'events' in packet:
            parts.append(packet['events'])
        else:
            times.append(packet['frame']['t'])
            # timestamp-only placeholders
            assert packet['frame']['pixels'].shape == (1, 1)
    return streams, np.concatenate(parts), times


def assert_events_equal(actual, expected):
    for name in ('t', 'x', 'y', 'p'):
        np.testing.assert_array_equal(getattr(actual, name),
                                      getattr(expected, name))


def test_round_trip_through_the_aedat_decoder(tmp_path, monkeypatch):
    monkeypatch.setattr(aedat4, 'PACKET_EVENTS', 700)  # several packets
    events = random_events()
    path = tmp_path / 'a.aedat4'
    write_aedat4(path, events, WIDTH, HEIGHT, frame_times_us=FRAME_TIMES)
    streams, records, times = decode(path)
    assert streams == {
        0: dict(type='events', width=WIDTH, height=HEIGHT),
        1: dict(type='frame', width=WIDTH, height=HEIGHT)
    }
    np.testing.assert_array_equal(records['t'], events.t)
    np.testing.assert_array_equal(records['x'], events.x)
    np.testing.assert_array_equal(records['y'], events.y)
    np.testing.assert_array_equal(records['on'], events.p.astype(bool))
    assert times == FRAME_TIMES
    assert set(np.unique(events.p)) == {0, 1}


def test_recording_reads_events_windows_and_frame_times(tmp_path):
    events = random_events()
    path = tmp_path / 'a.aedat4'
    write_aedat4(path, events, WIDTH, HEIGHT, frame_times_us=FRAME_TIMES)
    recording = open_recording(path)
    assert isinstance(recording, Aedat4Recording)
    assert (recording.width, recording.height) == (WIDTH, HEIGHT)
    assert recording.num_events == len(events)
    assert recording.time_range() == (events.t[0], events.t[-1])
    assert recording.frame_times_us.dtype == np.int64
    np.testing.assert_array_equal(recording.frame_times_us, FRAME_TIMES)
    assert_events_equal(recording.read_all(), events)
    for t0, t1 in [(0, 10_000), (33_333, 66_667), (100_000, 10**9),
                   (5, 5), (9, 2)]:
        mask = (events.t >= t0) & (events.t < t1)
        start = int(np.argmax(mask)) if mask.any() else 0
        expected = events[start:start + int(mask.sum())]
        assert_events_equal(recording.read(t0, t1), expected)


def test_no_frames_and_no_events(tmp_path):
    path = tmp_path / 'empty.aedat4'
    write_aedat4(path, Events.empty(), 8, 4)
    recording = Aedat4Recording(path)
    assert recording.num_events == 0 and recording.time_range() is None
    assert len(recording.frame_times_us) == 0
    assert len(recording.read(0, 100)) == 0
    assert aedat.Decoder(str(path)).id_to_stream() == {
        0: dict(type='events', width=8, height=4)
    }


def test_overwrite_refused_and_bad_events(tmp_path):
    events = random_events(10)
    path = tmp_path / 'a.aedat4'
    write_aedat4(path, events, WIDTH, HEIGHT)
    with pytest.raises(FileExistsError, match='a.aedat4 exists; pass '
                       'overwrite=True'):
        write_aedat4(path, events, WIDTH, HEIGHT)
    write_aedat4(path, events[:3], WIDTH, HEIGHT, overwrite=True)
    assert Aedat4Recording(path).num_events == 3
    with pytest.raises(ValueError, match='coordinates reach x = 345'):
        write_aedat4(tmp_path / 'b.aedat4', random_events(), 300, HEIGHT)
    unsorted = Events.from_arrays(t=[5, 1], x=[0, 0], y=[0, 0], p=[0, 1])
    with pytest.raises(ValueError, match='not sorted'):
        write_aedat4(tmp_path / 'b.aedat4', unsorted, WIDTH, HEIGHT)
    with pytest.raises(ValueError, match='frame_times_us is not a sorted'):
        write_aedat4(tmp_path / 'b.aedat4', events, WIDTH, HEIGHT,
                     frame_times_us=[3, 1])
    assert not (tmp_path / 'b.aedat4').exists()


def test_reader_errors_name_the_file(tmp_path):
    with pytest.raises(SetupError, match='nope.aedat4: no such AEDAT4'):
        Aedat4Recording(tmp_path / 'nope.aedat4')
    bad = tmp_path / 'bad.aedat4'
    bad.write_bytes(b'not an aedat file at all')
    with pytest.raises(SetupError, match='bad.aedat4: not a readable AEDAT4'):
        Aedat4Recording(bad)


def test_unsorted_file_is_refused(tmp_path, monkeypatch):
    path = tmp_path / 'u.aedat4'
    monkeypatch.setattr(aedat4, '_check_writable_events',
                        lambda *args: None)
    unsorted = Events.from_arrays(t=[5, 9, 1], x=[0, 1, 2], y=[0, 0, 0],
                                  p=[0, 1, 1])
    write_aedat4(path, unsorted, 4, 4)
    with pytest.raises(SetupError, match=r'u.aedat4: event timestamps '
                       r'decrease at event 2 \(9 then 1 us\)'):
        Aedat4Recording(path)


def test_missing_extra_names_it(tmp_path, monkeypatch):
    path = tmp_path / 'a.aedat4'
    write_aedat4(path, random_events(10), WIDTH, HEIGHT)
    real_import = builtins.__import__

    def import_without_aedat(name, *args, **kwargs):
        if name == 'aedat':
            raise ImportError('No module named aedat')
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, '__import__', import_without_aedat)
    with pytest.raises(ImportError, match=r'mmtpspike\[events-aedat\]'):
        Aedat4Recording(path)


def test_two_event_streams_are_refused(tmp_path, monkeypatch):
    path = tmp_path / 'two.aedat4'
    # describe the frames stream as a second events stream
    monkeypatch.setattr(aedat4, '_STREAM_XML', aedat4._STREAM_XML.replace(
        '{type}', 'EVTS'))
    write_aedat4(path, random_events(10), WIDTH, HEIGHT, frame_times_us=[])
    with pytest.raises(SetupError, match=r'two.aedat4: 2 event streams .*'
                       r'exactly one is read'):
        Aedat4Recording(path)
