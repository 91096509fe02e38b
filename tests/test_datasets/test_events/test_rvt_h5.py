import pickle

import numpy as np
import pytest

from mmtpspike.datasets.events import rvt_h5
from mmtpspike.datasets.events.events import Events
from mmtpspike.datasets.events.rvt_h5 import (H5Recording, search_sorted,
                                              write_h5)
from mmtpspike.utils.config import SetupError
from event_streams import assert_events_equal, random_events

h5py = pytest.importorskip('h5py')


def write_rvt_style(path, t, x, y, p, **sizes):
    """An h5 file laid out as RVT's downloads: columns in ``events/``, the
    sensor size as scalar datasets (when given)."""
    with h5py.File(path, 'w') as file:
        group = file.create_group('events')
        for name, values in dict(t=t, x=x, y=y, p=p, **sizes).items():
            group[name] = values
    return str(path)


def test_round_trip(tmp_path):
    events = random_events(3000, t_max=20_000)
    path = tmp_path / 'rec_td.h5'
    write_h5(path, events, 304, 240)
    recording = H5Recording(path)
    assert (recording.width, recording.height) == (304, 240)
    assert recording.num_events == 3000
    assert recording.time_range() == (events.t[0], events.t[-1])
    assert_events_equal(recording.read_all(), events)
    recording.validate(chunk_events=500)


def test_window_reads_equal_slicing(tmp_path, monkeypatch):
    monkeypatch.setattr(rvt_h5, 'SEARCH_BLOCK', 8)  # exercise the bisection
    events = random_events(2000, seed=1, t_max=1500)
    path = tmp_path / 'rec_td.h5'
    write_h5(path, events, 304, 240)
    recording = H5Recording(path)
    rng = np.random.default_rng(2)
    windows = [(-10, 0), (0, 0), (700, 650), (1499, 10**12), (1600, 1700)]
    windows += [(t, t + 1) for t in events.t[::300]]
    for t_start, t_end in windows + list(rng.integers(-50, 1550, (100, 2))):
        expected = events[(events.t >= t_start) & (events.t < t_end)]
        assert_events_equal(recording.read(t_start, t_end), expected)


@pytest.mark.parametrize('block', [1, 3, 4096])
def test_search_sorted(monkeypatch, block):
    monkeypatch.setattr(rvt_h5, 'SEARCH_BLOCK', block)
    times = np.array([0, 2, 2, 2, 5, 9, 9, 12])
    for t in range(-1, 14):
        assert search_sorted(times, t) == np.searchsorted(times, t), t


def test_rvt_layout(tmp_path):
    # RVT stores p as -1 / 1 in some files and reads p <= 0 as OFF
    path = write_rvt_style(
        tmp_path / 'a_td.dat.h5', t=np.array([5, 7, 7], np.int64),
        x=np.array([1, 2, 3], np.int16), y=np.array([4, 5, 6], np.int16),
        p=np.array([-1, 1, 0], np.int8), width=304, height=240)
    recording = H5Recording(path)
    assert (recording.width, recording.height) == (304, 240)
    events = recording.read(6, 8)
    assert events.t.tolist() == [7, 7]
    assert events.x.tolist() == [2, 3] and events.y.tolist() == [5, 6]
    assert events.p.tolist() == [1, 0]
    assert recording.read_all().p.tolist() == [0, 1, 0]


def test_size_as_attributes_or_absent(tmp_path):
    columns = dict(t=[1, 2], x=[0, 1], y=[0, 1], p=[0, 1])
    path = write_rvt_style(tmp_path / 'a_td.h5', **columns)
    recording = H5Recording(path)
    assert (recording.width, recording.height) == (None, None)
    with h5py.File(path, 'a') as file:
        file['events'].attrs.update(width=640, height=480)
    recording = H5Recording(path)
    assert (recording.width, recording.height) == (640, 480)


def test_unsorted_times_and_repair(tmp_path):
    t = np.arange(100, 1100, 10)
    t[50] = 95
    path = write_rvt_style(tmp_path / 'u_td.h5', t=t, x=np.zeros(100, int),
                           y=np.zeros(100, int), p=np.ones(100, int))
    with pytest.raises(SetupError,
                       match='u_td.h5.*not sorted.*repair_time=True'):
        H5Recording(path).read(500, 700)
    with pytest.raises(SetupError, match='u_td.h5.*not sorted'):
        H5Recording(path).validate(chunk_events=16)
    repaired = H5Recording(path, repair_time=True)
    events = repaired.read(500, 700)  # t[50] becomes t[49] = 590
    assert events.t.tolist() == list(range(500, 600, 10)) + [590] + list(
        range(610, 700, 10))
    repaired.validate()


def test_events_outside_the_sensor(tmp_path):
    path = write_rvt_style(tmp_path / 'b_td.h5', t=[1, 2], x=[0, 304],
                           y=[0, 0], p=[0, 1], width=304, height=240)
    with pytest.raises(SetupError, match='b_td.h5: event 1 has x = 304'):
        H5Recording(path).read(0, 10)


def test_missing_columns(tmp_path):
    with h5py.File(tmp_path / 'c_td.h5', 'w') as file:
        file['events/t'] = [1, 2]
        file['events/x'] = [1, 2]
        file['events/y'] = [1, 2]
    with pytest.raises(SetupError, match=r"c_td.h5: no dataset events/p "
                       r"\(found \['t', 'x', 'y'\]\)"):
        H5Recording(tmp_path / 'c_td.h5')
    with h5py.File(tmp_path / 'd_td.h5', 'w') as file:
        file['t'] = [1, 2]
    with pytest.raises(SetupError, match='d_td.h5: no "events" group'):
        H5Recording(tmp_path / 'd_td.h5')


def test_unequal_columns(tmp_path):
    path = write_rvt_style(tmp_path / 'e_td.h5', t=[1, 2, 3], x=[0, 1],
                           y=[0, 1], p=[0, 1])
    with pytest.raises(SetupError, match='e_td.h5: the event columns differ'):
        H5Recording(path)


def test_pickle_and_reopen_in_another_process(tmp_path, monkeypatch):
    path = tmp_path / 'rec_td.h5'
    write_h5(path, random_events(500, t_max=20_000), 304, 240)
    recording = H5Recording(path)
    expected = recording.read(1000, 5000)
    copy = pickle.loads(pickle.dumps(recording))
    assert copy._file is None
    assert_events_equal(copy.read(1000, 5000), expected)
    handle = recording._file
    monkeypatch.setattr(rvt_h5.os, 'getpid', lambda: -1)  # as after a fork
    assert_events_equal(recording.read(1000, 5000), expected)
    assert recording._file is not handle


def test_write_refuses_overwrite_and_bad_events(tmp_path):
    path = tmp_path / 'rec_td.h5'
    write_h5(path, random_events(10), 304, 240)
    with pytest.raises(FileExistsError, match='rec_td.h5.*overwrite=True'):
        write_h5(path, random_events(20), 304, 240)
    assert H5Recording(path).num_events == 10
    write_h5(path, random_events(20), 304, 240, overwrite=True)
    assert H5Recording(path).num_events == 20
    off_sensor = Events.from_arrays(t=[0, 1], x=[0, 0], y=[0, 240], p=[0, 1])
    with pytest.raises(ValueError, match='new_td.h5.*y = 240'):
        write_h5(tmp_path / 'new_td.h5', off_sensor, 304, 240)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['rec_td.h5']
