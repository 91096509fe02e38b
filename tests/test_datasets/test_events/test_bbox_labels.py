import numpy as np
import pytest

from mmtpspike.datasets.events.bbox_labels import (BBOX_DTYPE,
                                                   LEGACY_BBOX_DTYPE,
                                                   label_path_for,
                                                   load_bbox_npy,
                                                   require_label_path,
                                                   write_bbox_npy)
from mmtpspike.utils.config import SetupError


def make_boxes():
    boxes = np.zeros(3, BBOX_DTYPE)
    boxes['t'] = [50_000, 50_000, 100_000]
    boxes['x'] = [10.5, 200.0, -3.0]
    boxes['y'] = [20.0, 30.25, 5.0]
    boxes['w'] = [40.0, 12.0, 8.0]
    boxes['h'] = [30.0, 24.5, 9.0]
    boxes['class_id'] = [0, 1, 2]
    boxes['track_id'] = [7, 8, 9]
    boxes['class_confidence'] = [1.0, 0.5, 0.25]
    return boxes


def test_both_dtypes_load_to_the_same_array(tmp_path):
    boxes = make_boxes()
    legacy = np.zeros(3, LEGACY_BBOX_DTYPE)  # as a Gen1 file stores them
    for name in ('x', 'y', 'w', 'h', 'class_id', 'track_id'):
        legacy[name] = boxes[name]
    legacy['ts'] = boxes['t']
    legacy['confidence'] = boxes['class_confidence']
    np.save(tmp_path / 'old_bbox.npy', legacy)
    write_bbox_npy(tmp_path / 'new_bbox.npy', boxes)
    write_bbox_npy(tmp_path / 'legacy_bbox.npy', boxes, legacy=True)

    assert np.load(tmp_path / 'legacy_bbox.npy').dtype == LEGACY_BBOX_DTYPE
    for name in ('old', 'new', 'legacy'):
        loaded = load_bbox_npy(tmp_path / f'{name}_bbox.npy')
        assert loaded.dtype == BBOX_DTYPE
        np.testing.assert_array_equal(loaded, boxes, err_msg=name)


def test_missing_fields(tmp_path):
    stored = np.zeros(2, [('ts', '<u8'), ('x', '<f4'), ('y', '<f4')])
    np.save(tmp_path / 'short_bbox.npy', stored)
    with pytest.raises(SetupError, match=r"short_bbox.npy.*fields \['ts', "
                       r"'x', 'y'\]; missing \['w', 'h', 'class_id'"):
        load_bbox_npy(tmp_path / 'short_bbox.npy')


def test_unsorted_boxes(tmp_path):
    boxes = make_boxes()[[0, 2, 1]]
    np.save(tmp_path / 'mixed_bbox.npy', boxes)
    with pytest.raises(SetupError,
                       match='mixed_bbox.npy.*box 2 has t = 50000'):
        load_bbox_npy(tmp_path / 'mixed_bbox.npy')
    with pytest.raises(ValueError, match='out_bbox.npy.*not sorted'):
        write_bbox_npy(tmp_path / 'out_bbox.npy', boxes)


def test_write_refuses_to_overwrite(tmp_path):
    path = tmp_path / 'a_bbox.npy'
    write_bbox_npy(path, make_boxes())
    with pytest.raises(FileExistsError, match='a_bbox.npy.*overwrite=True'):
        write_bbox_npy(path, make_boxes()[:1])
    assert len(load_bbox_npy(path)) == 3
    write_bbox_npy(path, make_boxes()[:1], overwrite=True)
    assert len(load_bbox_npy(path)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ['a_bbox.npy']


@pytest.mark.parametrize('field, value', [('t', -1), ('class_id', 256)])
def test_legacy_write_rejects_values_it_cannot_hold(tmp_path, field, value):
    boxes = make_boxes()
    boxes[field][0] = value
    boxes['t'][0] = min(boxes['t'][0], boxes['t'][1])
    with pytest.raises(ValueError, match=f'b_bbox.npy: {field} values do '
                       'not fit'):
        write_bbox_npy(tmp_path / 'b_bbox.npy', boxes, legacy=True)


@pytest.mark.parametrize('recording, labels', [
    ('/d/train/a_td.dat', '/d/train/a_bbox.npy'),
    ('/d/train/a_td.h5', '/d/train/a_bbox.npy'),
    ('/d/val/17-04-13_td.dat.h5', '/d/val/17-04-13_bbox.npy'),
])
def test_label_path_for(recording, labels):
    assert label_path_for(recording) == labels


def test_label_path_for_other_names():
    with pytest.raises(ValueError, match=r"a.dat: .*\['_td.dat.h5'"):
        label_path_for('/d/a.dat')


def test_require_label_path(tmp_path):
    recording = tmp_path / 'a_td.dat'
    with pytest.raises(SetupError,
                       match='a_td.dat has no label file: .*a_bbox.npy'):
        require_label_path(recording)
    write_bbox_npy(tmp_path / 'a_bbox.npy', make_boxes())
    assert require_label_path(recording) == str(tmp_path / 'a_bbox.npy')
