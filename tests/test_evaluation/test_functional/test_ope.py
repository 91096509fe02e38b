"""OPE success / precision / normalised precision against hand-computed
trajectories."""
import numpy as np
import pytest

from mmtpspike.evaluation.functional import (box_ious, centre_errors,
                                             ope_scores, summarise_curves)

GT = np.array([[10., 10., 20., 20.]] * 10)


def test_perfect_trajectory():
    scores = ope_scores(GT, GT)
    # IoU 1 is above every threshold but the last (1.0): 20 of 21
    assert scores['success_auc'] == pytest.approx(20 / 21)
    assert scores['precision'] == 1.0
    assert scores['normalised_precision'] == 1.0
    assert scores['normalised_precision_auc'] == 1.0
    assert scores['num_frames'] == 10


def test_offset_by_five_pixels():
    pred = GT + [5, 0, 0, 0]
    # overlap 15 x 20 = 300, union 400 + 400 - 300 = 500: IoU 0.6, above
    # the 12 thresholds 0, 0.05, ..., 0.55
    np.testing.assert_allclose(box_ious(pred, GT), 0.6)
    scores = ope_scores(pred, GT)
    assert scores['success_auc'] == pytest.approx(12 / 21)
    # centre error 5 px <= 20 px
    assert scores['precision'] == 1.0
    # normalised error 5 / 20 = 0.25: above 0.2 (LaSOT / pytracking read
    # the curve there), at or under 26 of the 51 thresholds 0, ..., 0.5
    assert scores['normalised_precision'] == 0.0
    assert scores['normalised_precision_auc'] == pytest.approx(26 / 51)
    # 3 px: 3 / 20 = 0.15 <= 0.2
    assert ope_scores(GT + [3, 0, 0, 0], GT)['normalised_precision'] == 1.0


def test_lost_after_four_frames():
    pred = GT.copy()
    pred[4:, 0] += 100  # no overlap, centre error 100 px
    scores = ope_scores(pred, GT)
    assert scores['success_auc'] == pytest.approx(0.4 * 20 / 21)
    assert scores['precision'] == pytest.approx(0.4)
    assert scores['normalised_precision'] == pytest.approx(0.4)
    np.testing.assert_allclose(scores['success_curve'][:-1], 0.4)


def test_frames_without_ground_truth_are_not_scored():
    gt = GT.copy()
    gt[1] = np.nan
    gt[2, 2] = 0  # target absent
    pred = GT + [100, 0, 0, 0]
    pred[3:] = GT[3:]
    scores = ope_scores(pred, gt)
    assert scores['num_frames'] == 8
    assert scores['precision'] == pytest.approx(7 / 8)


def test_bad_shapes_and_empty_ground_truth_are_errors():
    with pytest.raises(ValueError, match='one length'):
        ope_scores(GT[:3], GT)
    with pytest.raises(ValueError, match='no frame'):
        ope_scores(GT, np.full_like(GT, np.nan))


def test_centre_error_is_normalised_per_axis_by_the_ground_truth():
    gt = np.array([[0., 0., 10., 40.]])
    pred = gt + [3, 4, 0, 0]
    np.testing.assert_allclose(centre_errors(pred, gt), 5.0)
    np.testing.assert_allclose(
        centre_errors(pred, gt, normalised=True), np.hypot(0.3, 0.1))


def test_summarise_curves_reads_20_px_and_0_2():
    success = np.linspace(1, 0, 21)
    precision = np.arange(51) / 50
    normalised = np.arange(51) / 100
    summary = summarise_curves(success, precision, normalised)
    assert summary['success_auc'] == pytest.approx(0.5)
    assert summary['precision'] == pytest.approx(0.4)
    assert summary['normalised_precision'] == pytest.approx(0.2)
    assert summary['normalised_precision_auc'] == pytest.approx(0.25)
