"""PropheseeMetric: RVT's filters, COCO AP on hand-made samples, registry."""
import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.registry import METRICS as ROOT_METRICS
from mmengine.registry import init_default_scope

from mmtpspike.evaluation.metrics.prophesee_metric import (METRIC_KEYS,
                                                           PropheseeMetric)

GEN1_SHAPE = (240, 304)
MPX_SHAPE = (720, 1280)
CAR, PEDESTRIAN = 0, 1  # Gen1 labels

# Gen1 boxes (x1, y1, x2, y2): medium (50 x 40 = 2000 px^2), small
# (20 x 50 = 1000 px^2), large (100 x 100), and too small for the filter
MEDIUM = (10, 10, 60, 50)
SMALL = (100, 100, 120, 150)
LARGE_A = (10, 10, 110, 110)
LARGE_B = (150, 10, 250, 110)
TINY = (200, 200, 205, 205)


def sample(recording, timestamp_us, gt=(), preds=(), ori_shape=GEN1_SHAPE):
    """A data sample as mmdet's CocoMetric receives it.

    Args:
        gt: (box, label) pairs.
        preds: (box, score, label) triples.
    """
    return dict(
        recording=recording,
        timestamp_us=timestamp_us,
        ori_shape=ori_shape,
        instances=[
            dict(bbox=list(box), bbox_label=label, ignore_flag=0)
            for box, label in gt
        ],
        pred_instances=dict(
            bboxes=torch.tensor([box for box, _, _ in preds],
                                dtype=torch.float32).reshape(-1, 4),
            scores=torch.tensor([score for _, score, _ in preds]),
            labels=torch.tensor([label for _, _, label in preds],
                                dtype=torch.int64)))


def evaluate(samples, **kwargs):
    """The metric's prefixed results on ``samples``."""
    metric = PropheseeMetric(**kwargs)
    metric.process({}, samples)
    return metric.evaluate(len(samples))


def perfect_samples():
    """Predictions equal to the ground truth the filters keep; the early
    sample, the tiny box and the sample with only a tiny box are
    unpredicted ground truth that the filters drop."""
    return [
        sample('a', 1_000_000,
               gt=[(MEDIUM, CAR), (SMALL, PEDESTRIAN), (TINY, CAR)],
               preds=[(MEDIUM, 0.9, CAR), (SMALL, 0.8, PEDESTRIAN)]),
        sample('a', 400_000, gt=[(MEDIUM, CAR)]),
        sample('b', 600_000, gt=[(TINY, PEDESTRIAN)]),
    ]


def test_predictions_equal_to_filtered_ground_truth_score_one():
    results = evaluate(perfect_samples())
    assert set(results) == {f'prophesee/{key}' for key in METRIC_KEYS}
    for key in ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m'):
        assert results[f'prophesee/{key}'] == pytest.approx(1.0)
    # no large ground truth: COCO's -1
    assert results['prophesee/mAP_l'] == -1
    # unfiltered, the three dropped boxes are misses
    assert evaluate(perfect_samples(),
                    apply_filters=False)['prophesee/mAP'] < 0.9


def filtered_false_positives():
    """High-scored wrong predictions that the filters drop: tiny, early,
    and at a timestamp without ground truth after the filters."""
    samples = perfect_samples()
    samples[0]['pred_instances'] = sample(
        'a', 1_000_000,
        preds=[(MEDIUM, 0.9, CAR), (SMALL, 0.8, PEDESTRIAN),
               (TINY, 0.99, CAR), ((250, 200, 254, 230), 0.99, PEDESTRIAN)
               ])['pred_instances']
    samples[1]['pred_instances'] = sample(
        'a', 400_000, preds=[(LARGE_B, 0.99, CAR)])['pred_instances']
    samples[2]['pred_instances'] = sample(
        'b', 600_000, preds=[(LARGE_A, 0.99, PEDESTRIAN)])['pred_instances']
    return samples


def test_predictions_dropped_by_the_filters_are_ignored():
    assert evaluate(
        filtered_false_positives())['prophesee/mAP'] == pytest.approx(1.0)
    assert evaluate(filtered_false_positives(),
                    apply_filters=False)['prophesee/mAP'] < 0.9


def test_hand_computed_average_precision():
    # One car class, ground truth A and B; predictions by score: A (TP),
    # a box on nothing (FP), B (TP), at every IoU threshold.
    # recall    0.5  0.5  1.0
    # precision 1    1/2  2/3
    # Interpolated precision (best at recall >= r): 1 for r <= 0.5, 2/3
    # above. COCO's 101 recall points 0, 0.01, ..., 1: 51 points <= 0.5,
    # 50 above: AP = (51 * 1 + 50 * 2/3) / 101 = 253 / 303 = 0.834983...
    nothing = (150, 120, 250, 230)  # large too: no overlap with A or B
    samples = [
        sample('a', 1_000_000,
               gt=[(LARGE_A, CAR), (LARGE_B, CAR)],
               preds=[(LARGE_A, 0.9, CAR), (nothing, 0.8, CAR),
                      (LARGE_B, 0.7, CAR)])
    ]
    results = evaluate(samples)
    for key in ('mAP', 'mAP_50', 'mAP_75', 'mAP_l'):
        assert results[f'prophesee/{key}'] == pytest.approx(253 / 303,
                                                            abs=1e-6)
    assert results['prophesee/mAP_s'] == results['prophesee/mAP_m'] == -1


def test_downsampled_frame_halves_thresholds():
    # 1Mpx at 640 x 360: a 50 x 50 sensor-pixel box is 25 x 25 there,
    # diagonal 35.4, kept by the halved 30 px (not by the full 60 px);
    # a 40 x 40 one (diagonal 28.3 there) is dropped, so it is no miss
    kept_box = (400, 300, 450, 350)
    dropped_box = (600, 300, 640, 340)
    samples = [
        sample('a', 1_000_000, ori_shape=MPX_SHAPE,
               gt=[(kept_box, 2), (dropped_box, 2)],
               preds=[(kept_box, 0.9, 2)])
    ]
    results = evaluate(samples, camera='1mpx', downsample_factor=2)
    assert results['prophesee/mAP'] == pytest.approx(1.0)
    # evaluated in 640 x 360 pixels: 25 x 25 = 625 px^2 is small
    assert results['prophesee/mAP_s'] == pytest.approx(1.0)
    # thresholds of the sensor frame on the downsampled boxes drop all
    results = evaluate(samples, camera='1mpx', downsample_factor=2,
                       min_box_diag=120, min_box_side=40)
    assert results['prophesee/mAP'] == -1


def test_ground_truth_clipped_to_the_evaluation_frame():
    # a box reaching past the frame is clipped to x2 = 303 as RVT; the
    # prediction of the clipped box would have IoU 203 / 220 < 0.95 with
    # the unclipped one
    gt_box = (100, 100, 320, 140)
    samples = [
        sample('a', 1_000_000, gt=[(gt_box, CAR)],
               preds=[((100, 100, 303, 140), 0.9, CAR)])
    ]
    assert evaluate(samples)['prophesee/mAP'] == pytest.approx(1.0)


def test_empty_cases():
    # nothing left after the filters: COCO's -1
    results = evaluate([sample('a', 100_000, gt=[(MEDIUM, CAR)])])
    assert set(results.values()) == {-1.0}
    # ground truth but no prediction: 0, as RVT
    results = evaluate([sample('a', 1_000_000, gt=[(MEDIUM, CAR)])])
    assert set(results.values()) == {0.0}


def test_log_names_the_filters_and_counts_drops(tmp_path):
    log_file = tmp_path / 'metric.log'
    MMLogger.get_instance('test_prophesee_metric', log_file=str(log_file))
    evaluate(filtered_false_positives())
    log = log_file.read_text()
    assert 'filters on ground truth and predictions: t > 500000 us, ' \
           'diagonal >= 30 px and sides >= 10 px' in log
    assert 'dropped ground-truth boxes: empty after clipping to the ' \
           'evaluation frame: 0; t > 500000 us: 1; diagonal >= 30 px and ' \
           'sides >= 10 px: 2' in log
    assert 'dropped prediction boxes: t > 500000 us: 1; diagonal >= 30 ' \
           'px and sides >= 10 px: 2; at a timestamp without ground ' \
           'truth: 1' in log
    assert 'scored 1 of 3 labelled timestamps: 2 ground-truth boxes, 2 ' \
           'predictions' in log
    assert 'Average Precision  (AP) @[ IoU=0.50:0.95' in log
    evaluate(filtered_false_positives(), apply_filters=False)
    assert 'filters on ground truth and predictions: none' \
           in log_file.read_text()


def test_bad_input_is_an_error():
    no_instances = sample('a', 1_000_000)
    del no_instances['instances']
    with pytest.raises(ValueError, match=r"lack \['instances'\].*meta_keys"):
        evaluate([no_instances])
    with pytest.raises(ValueError, match=r"ori_shape \(720, 1280\).*'gen1'"):
        evaluate([sample('a', 1_000_000, ori_shape=MPX_SHAPE)])
    with pytest.raises(ValueError, match=r"gt labels \[3\].*'1mpx'"):
        evaluate([sample('a', 1_000_000, ori_shape=MPX_SHAPE,
                         gt=[(MEDIUM, 3)])], camera='1mpx')
    with pytest.raises(ValueError, match=r'pred labels \[2\]'):
        evaluate([sample('a', 1_000_000, preds=[(MEDIUM, 0.5, 2)])])
    with pytest.raises(ValueError, match=r"\('a', 1000000\).*more than once"):
        evaluate([sample('a', 1_000_000)] * 2)
    with pytest.raises(ValueError, match='downsample_factor'):
        PropheseeMetric(downsample_factor=0)


def test_built_by_name_in_mmdet_and_root_registries():
    from mmdet.registry import METRICS as MMDET_METRICS
    metric = MMDET_METRICS.build(
        dict(type='PropheseeMetric', camera='1mpx', downsample_factor=2))
    assert isinstance(metric, PropheseeMetric)
    assert metric.box_filter.min_box_diag == 30
    init_default_scope('mmdet')
    metric = ROOT_METRICS.build(dict(type='PropheseeMetric', prefix='x'))
    assert isinstance(metric, PropheseeMetric) and metric.prefix == 'x'
