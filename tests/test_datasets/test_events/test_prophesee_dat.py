import pickle

import numpy as np
import pytest

from mmtpspike.datasets.events.events import Events
from mmtpspike.datasets.events.prophesee_dat import (RECORD_DTYPE,
                                                     DatRecording,
                                                     decode_records,
                                                     encode_records,
                                                     write_dat)
from mmtpspike.utils.config import SetupError
from event_streams import assert_events_equal, random_events

MAX_COORDINATE = 2**14 - 1
#: the largest sensor a .dat file can describe
FULL_RANGE = dict(width=MAX_COORDINATE + 1, height=MAX_COORDINATE + 1)


def write_raw(path, records, header=b'% Width 304\n% Height 240\n',
              type_and_size=(0, 8)):
    """A .dat file as given, byte for byte."""
    with open(path, 'wb') as file:
        file.write(header + bytes(type_and_size if header else ()))
        file.write(records.tobytes())
    return str(path)


def test_decode_records_unpacks_the_bit_fields():
    records = np.zeros(3, RECORD_DTYPE)
    records['t'] = [7, 2**32 - 1, 0]
    records['_'] = [(1 << 28) | (5 << 14) | 9,
                    (MAX_COORDINATE << 14) | MAX_COORDINATE,
                    (1 << 28) | 0x60000000]  # bits above p are ignored
    events = decode_records(records)
    assert events.t.tolist() == [7, 2**32 - 1, 0]
    assert events.x.tolist() == [9, MAX_COORDINATE, 0]
    assert events.y.tolist() == [5, MAX_COORDINATE, 0]
    assert events.p.tolist() == [1, 0, 1]
    assert_events_equal(decode_records(encode_records(events)), events)


def test_round_trip_with_header(tmp_path):
    events = random_events(5000, **FULL_RANGE)
    path = tmp_path / 'rec_td.dat'
    write_dat(path, events, width=16384, height=16384)
    recording = DatRecording(path)
    assert (recording.width, recording.height) == (16384, 16384)
    assert recording.header['Version'] == '2'
    assert recording.num_events == 5000
    assert recording.time_range() == (events.t[0], events.t[-1])
    assert_events_equal(recording.read_all(), events)
    assert set(np.unique(events.p)) == {0, 1}
    recording.validate(chunk_events=777)


def test_headerless_file(tmp_path):
    events = random_events(300, seed=1, width=304, height=304)
    path = tmp_path / 'old_td.dat'
    write_dat(path, events, 304, 240 + 304, header=False)
    assert path.stat().st_size == 300 * RECORD_DTYPE.itemsize
    recording = DatRecording(path)
    assert recording.header == {}
    assert (recording.width, recording.height) == (None, None)
    assert_events_equal(recording.read_all(), events)
    assert_events_equal(recording.read(100, 5000),
                        events[(events.t >= 100) & (events.t < 5000)])


def test_window_reads_equal_slicing(tmp_path):
    events = random_events(4000, seed=2, t_max=2000, **FULL_RANGE)
    path = tmp_path / 'rec_td.dat'
    write_dat(path, events, 16384, 16384)
    recording = DatRecording(path)
    rng = np.random.default_rng(3)
    boundaries = [(-50, 0), (-50, 10), (0, 0), (500, 500), (600, 400),
                  (1999, 2**40), (2100, 3000), (-(2**40), 2**40)]
    equal_times = [(t, t) for t in events.t[::500]]
    equal_times += [(t, t + 1) for t in events.t[::400]]
    random_windows = rng.integers(-100, 2100, (300, 2))
    for t_start, t_end in boundaries + equal_times + list(random_windows):
        expected = events[(events.t >= t_start) & (events.t < t_end)]
        assert_events_equal(recording.read(t_start, t_end), expected)
    times, counts = np.unique(events.t, return_counts=True)
    shared = times[counts.argmax()]
    assert counts.max() > 1
    assert len(recording.read(shared, shared + 1)) == counts.max()


def test_pickle_drops_the_memory_map(tmp_path):
    events = random_events(20_000, seed=4, **FULL_RANGE)
    path = tmp_path / 'rec_td.dat'
    write_dat(path, events, 16384, 16384)
    recording = DatRecording(path)
    recording.read(0, 100)
    copy = pickle.loads(pickle.dumps(recording))
    assert len(pickle.dumps(recording)) < 2000
    assert_events_equal(copy.read(300, 900), recording.read(300, 900))


def test_empty_recording(tmp_path):
    path = tmp_path / 'empty_td.dat'
    write_dat(path, Events.empty(), 304, 240)
    recording = DatRecording(path)
    assert recording.num_events == 0
    assert recording.time_range() is None
    assert len(recording.read(0, 10**6)) == 0
    recording.validate()


@pytest.mark.parametrize('lines, size', [
    (b'% geometry 304x240\n', (304, 240)),
    (b'% format EVT2;height=720;width=1280\n', (1280, 720)),
    (b'% width 640\n% height 480\n% geometry 640x480\n', (640, 480)),
    (b'% Date 2019-02-03 12:00:00\n', (None, None)),
])
def test_header_sizes(tmp_path, lines, size):
    path = write_raw(tmp_path / 'a_td.dat', np.zeros(2, RECORD_DTYPE),
                     header=lines)
    recording = DatRecording(path)
    assert (recording.width, recording.height) == size
    assert recording.num_events == 2


def test_header_lines_are_kept(tmp_path):
    path = write_raw(tmp_path / 'a_td.dat', np.zeros(1, RECORD_DTYPE),
                     header=b'% Date 2019-02-03 12:00:00\n% end\n')
    header = DatRecording(path).header
    assert header == {'Date': '2019-02-03 12:00:00', 'end': ''}


def test_conflicting_header_sizes(tmp_path):
    path = write_raw(tmp_path / 'a_td.dat', np.zeros(1, RECORD_DTYPE),
                     header=b'% Width 304\n% Height 240\n'
                     b'% geometry 1280x720\n')
    with pytest.raises(SetupError, match='a_td.dat.*different sensor size'):
        DatRecording(path)


def test_truncated_file(tmp_path):
    path = tmp_path / 'cut_td.dat'
    write_dat(path, random_events(10, width=304, height=304), 304, 304)
    with open(path, 'ab') as file:
        file.write(b'\x01\x02\x03')
    with pytest.raises(SetupError, match='cut_td.dat.*3 trailing bytes'):
        DatRecording(path)


def test_file_ending_in_header(tmp_path):
    path = tmp_path / 'cut_td.dat'
    path.write_bytes(b'% Width 304\n% Height 240\n')
    with pytest.raises(SetupError, match='cut_td.dat.*truncated'):
        DatRecording(path)


@pytest.mark.parametrize('type_and_size', [(12, 8), (0, 16)])
def test_unsupported_event_type(tmp_path, type_and_size):
    path = write_raw(tmp_path / 'cd_td.dat', np.zeros(2, RECORD_DTYPE),
                     type_and_size=type_and_size)
    with pytest.raises(SetupError, match='cd_td.dat.*unsupported event'):
        DatRecording(path)


def test_events_outside_the_header_size(tmp_path):
    events = random_events(100, width=240, height=240)
    records = encode_records(events)
    records['_'][60] = (240 << 14) | 5  # y = 240 on a 240-row sensor
    path = write_raw(tmp_path / 'big_td.dat', records)
    recording = DatRecording(path)
    t_bad = events.t[60]
    recording.read(0, events.t[59])
    with pytest.raises(SetupError, match='big_td.dat: event 60 has y = 240'):
        recording.read(t_bad, t_bad + 1)
    with pytest.raises(SetupError, match='big_td.dat.*y = 240'):
        recording.read_all()
    with pytest.raises(SetupError, match='big_td.dat.*different size'):
        recording.validate(chunk_events=16)


def unsorted_recording(tmp_path, index):
    """Times 100, 110, 120, ... with event ``index`` set back to 95."""
    times = np.arange(100, 1100, 10)
    times[index] = 95
    records = np.zeros(len(times), RECORD_DTYPE)
    records['t'] = times
    return DatRecording(write_raw(tmp_path / 'unsorted_td.dat', records))


def test_unsorted_times_inside_a_window(tmp_path):
    recording = unsorted_recording(tmp_path, 50)
    with pytest.raises(SetupError, match='unsorted_td.dat.*not sorted'):
        recording.read(500, 700)
    assert len(recording.read(700, 800)) == 10
    with pytest.raises(SetupError, match='near event 49'):
        recording.read_all()


@pytest.mark.parametrize('t_start, t_end', [(601, 700), (500, 600)])
def test_unsorted_times_next_to_a_window(tmp_path, t_start, t_end):
    # event 50 (t = 95) sits just outside both windows: only the check of
    # the window's neighbours sees that the search went wrong
    recording = unsorted_recording(tmp_path, 50)
    with pytest.raises(SetupError, match='unsorted_td.dat.*not sorted'):
        recording.read(t_start, t_end)


@pytest.mark.parametrize('index', [1, 15, 16, 17, 99])
def test_validate_finds_unsorted_times_across_chunks(tmp_path, index):
    recording = unsorted_recording(tmp_path, index)
    with pytest.raises(SetupError, match='unsorted_td.dat.*not sorted'):
        recording.validate(chunk_events=16)


def test_write_refuses_to_overwrite(tmp_path):
    path = tmp_path / 'rec_td.dat'
    write_dat(path, random_events(10, width=304, height=304), 304, 304)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match='rec_td.dat.*overwrite=True'):
        write_dat(path, random_events(20, width=304, height=304), 304, 304)
    assert path.read_bytes() == before
    write_dat(path, random_events(20, width=304, height=304), 304, 304,
              overwrite=True)
    assert DatRecording(path).num_events == 20
    assert [p.name for p in tmp_path.iterdir()] == ['rec_td.dat']


@pytest.mark.parametrize('change, message', [
    (dict(x=[304, 0]), 'x = 304'),
    (dict(y=[0, 240]), 'y = 240'),
    (dict(p=[0, 2]), 'polarity 2'),
    (dict(t=[2, 1]), 'not sorted'),
    (dict(t=[-1, 0]), 'unsigned 32 bits'),
    (dict(t=[0, 2**32]), 'unsigned 32 bits'),
])
def test_write_rejects_bad_events(tmp_path, change, message):
    columns = dict(t=[0, 1], x=[0, 303], y=[239, 0], p=[0, 1])
    columns.update(change)
    path = tmp_path / 'bad_td.dat'
    with pytest.raises(ValueError, match=f'bad_td.dat.*{message}'):
        write_dat(path, Events.from_arrays(**columns), 304, 240)
    assert not path.exists()


def test_write_rejects_sizes_beyond_14_bits(tmp_path):
    with pytest.raises(ValueError, match='big_td.dat.*16385x240'):
        write_dat(tmp_path / 'big_td.dat', Events.empty(), 16385, 240)
