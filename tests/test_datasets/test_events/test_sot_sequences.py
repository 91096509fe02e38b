"""load_sequence / find_sequences on tiny FE108, VisEvent and FELT
sequence folders, and every bad-input error."""
import os

import numpy as np
import pytest

from mmtpspike.datasets.events import sot_sequences
from mmtpspike.datasets.events.aedat4 import write_aedat4
from mmtpspike.datasets.events.events import Events
from mmtpspike.datasets.events.sot_sequences import (EventSequence,
                                                     find_sequences,
                                                     load_sequence)
from mmtpspike.utils.config import SetupError

pytest.importorskip('aedat')

WIDTH, HEIGHT = 32, 24
TIMES = [1000, 2000, 3000, 4000]
BOXES = np.array([[1, 2, 5, 4], [2, 2, 5, 4], [3, 3, 5, 4], [4, 3, 6, 4]],
                 np.float64)
EVENTS = Events.from_arrays(t=[900, 1500, 1500, 2500, 3999, 4200],
                            x=[0, 31, 5, 6, 7, 8], y=[0, 23, 1, 2, 3, 4],
                            p=[1, 0, 1, 0, 1, 0])


def write_gt(path, boxes, sep=','):
    with open(path, 'w') as file:
        for box in boxes:
            file.write(sep.join(f'{value:g}' for value in box) + '\n')
        file.write('\n')  # trailing empty line, as some files have


def write_sequence(folder, layout, boxes=BOXES, times=TIMES, absent=None,
                   events_name=None):
    """One sequence folder of ``layout``; returns its path."""
    os.makedirs(folder)
    name = os.path.basename(folder)
    gt_name, default_events, absent_name = {
        'fe108': ('groundtruth_rect.txt', 'events.aedat4', None),
        'visevent': ('groundtruth.txt', f'{name}.aedat4', 'absent_label.txt'),
        'felt': ('groundtruth.txt', f'{name}_dvs.aedat4', 'absent.txt'),
    }[layout]
    write_aedat4(os.path.join(folder, events_name or default_events), EVENTS,
                 WIDTH, HEIGHT, frame_times_us=times)
    write_gt(os.path.join(folder, gt_name), boxes,
             sep=',' if layout != 'fe108' else ' ')
    if absent_name is not None:
        flags = np.zeros(len(boxes), int) if absent is None else absent
        with open(os.path.join(folder, absent_name), 'w') as file:
            file.write(''.join(f'{int(flag)}\n' for flag in flags))
    return str(folder)


@pytest.fixture
def logs(monkeypatch):
    """Messages of the module's print_log calls."""
    messages = []
    monkeypatch.setattr(sot_sequences, 'print_log',
                        lambda message, *args, **kwargs:
                        messages.append(message))
    return messages


@pytest.mark.parametrize('layout', ['fe108', 'visevent', 'felt'])
def test_each_layout_loads_back(tmp_path, layout):
    path = write_sequence(tmp_path / 'seq_a', layout)
    seq = load_sequence(path, layout)
    assert isinstance(seq, EventSequence) and seq.name == 'seq_a'
    assert (seq.width, seq.height) == (WIDTH, HEIGHT)
    assert seq.frame_times_us.dtype == np.int64
    np.testing.assert_array_equal(seq.frame_times_us, TIMES)
    assert seq.boxes.dtype == np.float64
    np.testing.assert_array_equal(seq.boxes, BOXES)
    if layout == 'fe108':
        assert seq.absent is None
    else:
        np.testing.assert_array_equal(seq.absent, [False] * 4)
    window = seq.recording.read(1500, 3999)
    np.testing.assert_array_equal(window.t, [1500, 1500, 2500])
    np.testing.assert_array_equal(window.p, [0, 1, 0])


def test_visevent_events_name_and_absent_flags(tmp_path, logs):
    boxes = BOXES.copy()
    boxes[1] = 0  # absent, flagged
    boxes[2] = np.nan  # absent, flagged
    path = write_sequence(tmp_path / 'v', 'visevent', boxes=boxes,
                          absent=[0, 1, 1, 0], events_name='events.aedat4')
    seq = load_sequence(path, 'visevent')
    np.testing.assert_array_equal(seq.absent, [False, True, True, False])
    np.testing.assert_array_equal(seq.boxes[1], [0, 0, 0, 0])
    assert np.isnan(seq.boxes[2]).all()
    assert len(logs) == 1 and '2 of 4 box(es)' in logs[0]


def test_fe108_zero_boxes_are_counted_as_absent(tmp_path, logs):
    boxes = BOXES.copy()
    boxes[3, 2:] = 0
    seq = load_sequence(write_sequence(tmp_path / 'f', 'fe108', boxes),
                        'fe108')
    np.testing.assert_array_equal(seq.boxes[3], [4, 3, 0, 0])
    assert len(logs) == 1
    assert 'groundtruth_rect.txt: 1 of 4 box(es)' in logs[0]


@pytest.mark.parametrize('layout', ['visevent', 'felt'])
def test_unflagged_empty_box_is_an_error(tmp_path, layout):
    boxes = BOXES.copy()
    boxes[2, 2] = -1
    path = write_sequence(tmp_path / 's', layout, boxes=boxes)
    with pytest.raises(SetupError, match=r'groundtruth.txt: 1 box\(es\) of '
                       r'zero / negative size .* line 3'):
        load_sequence(path, layout)


def test_count_mismatch_names_both_counts(tmp_path):
    path = write_sequence(tmp_path / 's', 'fe108', times=TIMES[:3])
    with pytest.raises(SetupError, match=r'groundtruth_rect.txt: 4 '
                       r'annotation lines but .*events.aedat4 holds 3 '
                       r'frame timestamps'):
        load_sequence(path, 'fe108')


def test_frame_times_must_increase(tmp_path):
    path = write_sequence(tmp_path / 's', 'felt',
                          times=[1000, 2000, 2000, 3000])
    with pytest.raises(SetupError, match=r's_dvs.aedat4: frame timestamps '
                       r'are not increasing at frame 2 \(2000 then 2000'):
        load_sequence(path, 'felt')


def test_missing_files_name_the_expected_paths(tmp_path):
    path = write_sequence(tmp_path / 's', 'visevent')
    os.remove(os.path.join(path, 's.aedat4'))
    with pytest.raises(SetupError, match=r"no events file of the 'visevent' "
                       r"layout; expected .*s.aedat4 or .*events.aedat4"):
        load_sequence(path, 'visevent')
    path = write_sequence(tmp_path / 'g', 'fe108')
    os.remove(os.path.join(path, 'groundtruth_rect.txt'))
    with pytest.raises(SetupError, match=r"no annotation file of the "
                       r"'fe108' layout; expected .*groundtruth_rect.txt"):
        load_sequence(path, 'fe108')
    path = write_sequence(tmp_path / 'a', 'felt')
    os.remove(os.path.join(path, 'absent.txt'))
    with pytest.raises(SetupError, match=r"no absent file of the 'felt' "
                       r"layout; expected .*absent.txt or "
                       r".*absent_label.txt"):
        load_sequence(path, 'felt')
    with pytest.raises(SetupError, match="nope: no such sequence folder"):
        load_sequence(str(tmp_path / 'nope'), 'fe108')
    with pytest.raises(ValueError, match="unknown SOT layout 'otb'"):
        load_sequence(path, 'otb')


def test_bad_annotation_and_absent_lines(tmp_path):
    path = write_sequence(tmp_path / 's', 'visevent')
    write_gt(os.path.join(path, 'groundtruth.txt'), [*BOXES[:3], [1, 2, 3]])
    with pytest.raises(SetupError, match=r"groundtruth.txt: line 4 "
                       r"\('1,2,3'\) is not four numbers"):
        load_sequence(path, 'visevent')
    path = write_sequence(tmp_path / 'a', 'visevent')
    with open(os.path.join(path, 'absent_label.txt'), 'w') as file:
        file.write('0\n2\n0\n0\n')
    with pytest.raises(SetupError, match=r"absent_label.txt: line 2 "
                       r"\('2'\) is not 0 or 1"):
        load_sequence(path, 'visevent')
    path = write_sequence(tmp_path / 'n', 'felt', absent=[0, 0, 0])
    with pytest.raises(SetupError, match=r"absent.txt: 3 lines but "
                       r".*groundtruth.txt has 4"):
        load_sequence(path, 'felt')


def test_find_sequences(tmp_path, logs):
    for name in ('b', 'a'):
        write_sequence(tmp_path / 'train' / name, 'fe108')
    os.makedirs(tmp_path / 'train' / 'notes')
    (tmp_path / 'train' / 'list.txt').write_text('a\nb\n')
    found = find_sequences(str(tmp_path), 'fe108', split='train')
    assert found == [str(tmp_path / 'train' / 'a'),
                     str(tmp_path / 'train' / 'b')]
    assert len(logs) == 1 and "without groundtruth_rect.txt" in logs[0]
    assert find_sequences(str(tmp_path / 'train'), 'visevent') == []
    with pytest.raises(SetupError, match="test: no such folder; the 'fe108'"):
        find_sequences(str(tmp_path), 'fe108', split='test')
    with pytest.raises(ValueError, match='unknown SOT layout'):
        find_sequences(str(tmp_path), 'lasot')
