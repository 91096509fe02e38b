"""OPEMetric agrees with the got10k toolkit's OTB evaluation (rect_iou,
center_error, ExperimentOTB's curves, the sequence mean of its report) on
perfect, offset, lost and random trajectories. Skipped without got10k."""
import numpy as np
import pytest

from mmtpspike.evaluation.functional import ope_scores
from mmtpspike.evaluation.metrics.ope_metric import OPEMetric
from mmtpspike.structures.track_data_sample import TrackDataSample

otb = pytest.importorskip('got10k.experiments.otb')


def trajectories(num_frames=60, seed=0):
    """``{name: (pred, gt)}`` of ``[N, 4]`` xywh boxes, float32 values (as
    ``TrackDataSample`` keeps them) in float64 arrays."""
    rng = np.random.default_rng(seed)
    gt = np.column_stack([
        rng.uniform(0, 200, (num_frames, 2)),
        rng.uniform(8, 60, (num_frames, 2))
    ])
    lost = gt.copy()
    lost[25:, :2] += 300
    jitter = gt + rng.normal(0, 6, gt.shape)
    jitter[:, 2:] = np.abs(jitter[:, 2:]) + 1
    random = np.column_stack([
        rng.uniform(0, 200, (num_frames, 2)),
        rng.uniform(8, 60, (num_frames, 2))
    ])
    pairs = dict(perfect=(gt, gt), offset=(gt + [7, -3, 0, 0], gt),
                 lost=(lost, gt), jitter=(jitter, gt), random=(random, gt))
    return {
        name: tuple(
            box.astype(np.float32).astype(np.float64) for box in pair)
        for name, pair in pairs.items()
    }


def got10k_otb_report(sequences):
    """got10k ExperimentOTB's overall success_score / precision_score:
    its per-sequence curves (first prediction set to the ground truth, as
    its report does) averaged over sequences."""
    experiment = object.__new__(otb.ExperimentOTB)
    experiment.nbins_iou, experiment.nbins_ce = 21, 51
    succ, prec = [], []
    for pred, gt in sequences.values():
        boxes = pred.copy()
        boxes[0] = gt[0]
        ious, errors = experiment._calc_metrics(boxes, gt.copy())
        curves = experiment._calc_curves(ious, errors)
        succ.append(curves[0])
        prec.append(curves[1])
    succ, prec = np.mean(succ, axis=0), np.mean(prec, axis=0)
    return float(np.mean(succ)), float(prec[20])


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_metric_agrees_with_got10k_otb(seed):
    sequences = trajectories(seed=seed)
    metric = OPEMetric()
    for name, (pred, gt) in sequences.items():
        for index in range(len(gt)):
            sample = TrackDataSample(metainfo=dict(
                sequence=name, frame_index=index, num_frames=len(gt)))
            sample.gt_box, sample.pred_box = gt[index], pred[index]
            metric.process({}, [sample])
    results = metric.evaluate(len(metric.results))
    success, precision = got10k_otb_report(sequences)
    assert results['sot/success_auc'] == pytest.approx(success, rel=1e-12)
    assert results['sot/precision'] == pytest.approx(precision, rel=1e-12)


@pytest.mark.parametrize('name', ['perfect', 'offset', 'lost', 'jitter',
                                  'random'])
def test_functional_curves_equal_got10k(name):
    from got10k.utils.metrics import center_error, rect_iou

    pred, gt = trajectories(seed=3)[name]
    scores = ope_scores(pred, gt)
    ious = rect_iou(pred.copy(), gt.copy())
    errors = center_error(pred, gt)
    experiment = object.__new__(otb.ExperimentOTB)
    experiment.nbins_iou, experiment.nbins_ce = 21, 51
    success, precision = experiment._calc_curves(ious, errors)
    np.testing.assert_array_equal(scores['success_curve'], success)
    np.testing.assert_array_equal(scores['precision_curve'], precision)
    assert scores['success_auc'] == pytest.approx(np.mean(success))
    assert scores['precision'] == pytest.approx(precision[20])
