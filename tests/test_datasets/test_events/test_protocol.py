"""RVT's label filters and evaluation filter on hand-made boxes."""
import numpy as np
import pytest

from mmtpspike.datasets.events.protocol import (CAMERAS, EvaluationFilter,
                                                check_downsample_factor,
                                                clip_boxes, get_camera,
                                                label_boxes_xyxy,
                                                max_training_box_width,
                                                sanitize_labels, size_mask)
from mmtpspike.utils.config import SetupError

BBOX_DTYPE = np.dtype([('t', '<i8'), ('x', '<f4'), ('y', '<f4'),
                       ('w', '<f4'), ('h', '<f4'), ('class_id', '<u4'),
                       ('track_id', '<u4'), ('class_confidence', '<f4')])


def bbox_rows(rows):
    """``*_bbox.npy`` rows from (x, y, w, h, class_id) tuples; t and
    track_id number the rows."""
    labels = np.zeros(len(rows), dtype=BBOX_DTYPE)
    for name, column in zip(('x', 'y', 'w', 'h', 'class_id'), zip(*rows)):
        labels[name] = column
    labels['t'] = 1000 * np.arange(len(rows))
    labels['track_id'] = np.arange(len(rows))
    return labels


def test_cameras():
    gen1, mpx = CAMERAS['gen1'], CAMERAS['1mpx']
    assert (gen1.width, gen1.height) == (304, 240)
    assert gen1.classes == ('car', 'pedestrian')
    assert (gen1.min_box_diag, gen1.min_box_side) == (30, 10)
    assert (mpx.width, mpx.height) == (1280, 720)
    assert mpx.classes == ('pedestrian', 'two-wheeler', 'car')
    assert (mpx.min_box_diag, mpx.min_box_side) == (60, 20)
    assert get_camera('1mpx') is mpx and get_camera(gen1) is gen1
    with pytest.raises(SetupError, match=r"'gen4'.*\['1mpx', 'gen1'\]"):
        get_camera('gen4')


def test_clip_boxes_to_last_pixel():
    boxes = np.array([[-5, -1, 310, 100], [10, 20, 30, 250]], np.float32)
    clipped = clip_boxes(boxes, width=304, height=240)
    # RVT clips corners into [0, W - 1] x [0, H - 1]
    np.testing.assert_array_equal(clipped,
                                  [[0, 0, 303, 100], [10, 20, 30, 239]])
    assert clipped.dtype == np.float32
    assert boxes[0, 0] == -5  # the input is left alone


def test_sanitize_labels_clips_and_counts_drops():
    labels = bbox_rows([
        (-10, 5, 40, 20, 0),  # left part outside: clipped to x 0, w 30
        (350, 5, 30, 20, 1),  # right of the frame: empty after clipping
        (50, 225, 40, 20, 1),  # bottom part outside: clipped to h 14
        (60, 60, 0, 20, 0),  # zero width
        (70, 70, 30, 30, 1),  # inside
        (100, 100, 9, 40, 0),  # side 9 < Gen1's label side 10
        (120, 100, 20, 20, 0),  # diagonal 28 < Gen1's label diagonal 30
    ])
    kept, dropped = sanitize_labels(labels, 'gen1')
    assert dropped == {
        'unscored class': 0,
        'empty after clipping to the frame': 2,
        'under the label size': 2,
    }
    np.testing.assert_array_equal(kept['track_id'], [0, 2, 4])
    np.testing.assert_array_equal(kept['t'], [0, 2000, 4000])
    np.testing.assert_array_equal(
        label_boxes_xyxy(kept),
        [[0, 5, 30, 25], [50, 225, 90, 239], [70, 70, 100, 100]])
    assert labels['x'][0] == -10  # the input is left alone


def test_1mpx_label_size_is_rvts_conservative_side():
    labels = bbox_rows([(10, 10, 4, 30, 0), (10, 10, 5, 5, 0)])
    kept, dropped = sanitize_labels(labels, '1mpx')
    assert dropped['under the label size'] == 1
    np.testing.assert_array_equal(kept['w'], [5])


def test_sanitize_labels_keeps_1mpx_scored_classes():
    labels = bbox_rows([(10, 10, 30, 30, class_id) for class_id in range(7)])
    kept, dropped = sanitize_labels(labels, '1mpx')
    np.testing.assert_array_equal(kept['class_id'], [0, 1, 2])
    assert dropped['unscored class'] == 4
    # Gen1 has two classes: an id 2 there is not scored either
    kept, dropped = sanitize_labels(labels[:3], 'gen1')
    np.testing.assert_array_equal(kept['class_id'], [0, 1])


@pytest.mark.parametrize('camera,width', [('gen1', 273), ('1mpx', 1152)])
def test_max_training_box_width_is_rvts(camera, width):
    # RVT: w <= (9 * W) // 10
    assert width == (9 * CAMERAS[camera].width) // 10
    assert max_training_box_width(camera, 0.9) == width


def test_sanitize_labels_training_width_filter():
    labels = bbox_rows([(0, 0, 273, 20, 0), (0, 30, 273.5, 20, 0),
                        (10, 60, 300, 20, 1)])
    kept, dropped = sanitize_labels(labels, 'gen1', max_box_width_ratio=0.9)
    # the third box is clipped to 293 px before the width test
    np.testing.assert_array_equal(kept['w'], [273])
    assert dropped['wider than 0.9 W'] == 2
    kept, dropped = sanitize_labels(labels, 'gen1')
    assert len(kept) == 3 and 'wider than 0.9 W' not in dropped


def test_size_mask_bounds_are_inclusive():
    boxes = np.array([
        [0, 0, 10, 30],  # side 10, diagonal 31.6: kept
        [0, 0, 9.9, 30],  # side under 10
        [0, 0, 21, 21],  # sides fine, diagonal 29.7 under 30
        [0, 0, 21.22, 21.22],  # diagonal 30.01
        [0, 0, 18, 24],  # diagonal exactly 30
    ])
    np.testing.assert_array_equal(
        size_mask(boxes, min_box_diag=30, min_box_side=10),
        [True, False, False, True, True])


def test_evaluation_filter_thresholds():
    assert EvaluationFilter.for_camera('gen1') == EvaluationFilter(
        500_000, 30, 10)
    assert EvaluationFilter.for_camera('1mpx') == EvaluationFilter(
        500_000, 60, 20)
    # RVT evaluates 1Mpx at 640 x 360 with halved thresholds
    assert EvaluationFilter.for_camera('1mpx', 2) == EvaluationFilter(
        500_000, 30, 10)
    assert EvaluationFilter.for_camera(
        'gen1', 2, skip_first_us=0, min_box_diag=40,
        min_box_side=8) == EvaluationFilter(0, 20, 4)


def test_evaluation_filter_masks():
    box_filter = EvaluationFilter.for_camera('gen1')
    boxes = np.array([[0, 0, 50, 50]] * 3 + [[0, 0, 5, 50]], np.float32)
    times = np.array([500_000, 500_001, 2_000_000, 2_000_000])
    masks = box_filter.masks(boxes, times)
    assert list(masks) == [
        't > 500000 us', 'diagonal >= 30 px and sides >= 10 px'
    ]
    assert list(masks) == list(box_filter.criteria)
    # t = 0.5 s itself is skipped (RVT: t > skip)
    np.testing.assert_array_equal(masks['t > 500000 us'],
                                  [False, True, True, True])
    np.testing.assert_array_equal(
        box_filter.keep_mask(boxes, times), [False, True, True, False])


def test_downsampled_filter_keeps_a_box_between_thresholds():
    # 25 x 25 px in the evaluation frame: diagonal 35.4, between the halved
    # 30 and the full 60 of 1Mpx
    boxes = np.array([[100, 100, 125, 125]], np.float32)
    times = np.array([1_000_000])
    full = EvaluationFilter.for_camera('1mpx', downsample_factor=1)
    halved = EvaluationFilter.for_camera('1mpx', downsample_factor=2)
    assert not full.keep_mask(boxes, times)[0]
    assert halved.keep_mask(boxes, times)[0]


@pytest.mark.parametrize('factor', [0, -2, 1.5, True, '2'])
def test_bad_downsample_factor(factor):
    with pytest.raises(ValueError, match='downsample_factor'):
        check_downsample_factor(factor)
    with pytest.raises(ValueError, match='downsample_factor'):
        EvaluationFilter.for_camera('1mpx', factor)
