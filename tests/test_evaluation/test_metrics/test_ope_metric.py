"""OPEMetric: whole sequences from shuffled samples, completeness errors,
absent targets, the first frame, averaging and the result files."""
import random

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import METRICS as ROOT_METRICS

from mmtpspike.analysis.task_metrics import task_metrics
from mmtpspike.evaluation.metrics.ope_metric import OPEMetric
from mmtpspike.structures.track_data_sample import TrackDataSample

BOX = [10., 10., 20., 20.]
FAR = [200., 10., 20., 20.]  # no overlap, centre error 190 px


def samples(sequence, preds, gts=None, times=None, as_dict=False):
    """One data sample per frame of ``sequence``."""
    gts = gts or [BOX] * len(preds)
    out = []
    for index, (pred, gt) in enumerate(zip(preds, gts)):
        sample = TrackDataSample(metainfo=dict(
            sequence=sequence, frame_index=index, num_frames=len(preds)))
        sample.gt_box = gt
        sample.pred_box = pred
        sample.pred_score = 0.9
        if times is not None:
            sample.set_metainfo(dict(pred_time=times[index]))
        out.append(sample.to_dict() if as_dict else sample)
    return out


def evaluate(data_samples, **kwargs):
    metric = OPEMetric(**kwargs)
    shuffled = list(data_samples)
    random.Random(0).shuffle(shuffled)
    metric.process({}, shuffled[:len(shuffled) // 2])
    metric.process({}, shuffled[len(shuffled) // 2:])
    return metric.evaluate(len(shuffled))


def test_perfect_and_lost_sequences_from_shuffled_samples():
    perfect = samples('a', [BOX] * 4, as_dict=True)
    # lost after frame 1 of 5: 2 of 5 frames tracked
    lost = samples('b', [BOX, BOX, FAR, FAR, FAR])
    results = evaluate(perfect + lost)
    assert set(results) == {'sot/success_auc', 'sot/precision',
                            'sot/norm_precision'}
    # sequence mean: (1 + 0.4) / 2 of the 20 thresholds below IoU 1
    assert results['sot/success_auc'] == pytest.approx(0.7 * 20 / 21)
    assert results['sot/precision'] == pytest.approx(0.7)
    assert results['sot/norm_precision'] == pytest.approx(0.7)
    # pooled frames: 6 of 9
    pooled = evaluate(perfect + lost, average='frame')
    assert pooled['sot/precision'] == pytest.approx(6 / 9)


def test_constant_offset_gives_known_iou_and_precision():
    offset = [BOX[0] + 5, BOX[1], BOX[2], BOX[3]]
    results = evaluate(samples('a', [BOX] + [offset] * 3),
                       score_first_frame=False)
    # IoU 0.6 (above 12 of 21 thresholds), 5 px, 0.25 normalised
    assert results['sot/success_auc'] == pytest.approx(12 / 21)
    assert results['sot/precision'] == 1.0
    assert results['sot/norm_precision'] == 0.0


def test_first_frame_is_scored_as_ground_truth_or_skipped():
    preds = [FAR, BOX, FAR, FAR]
    assert evaluate(samples('a', preds))['sot/precision'] == pytest.approx(
        0.5)
    assert evaluate(samples('a', preds), score_first_frame=False)[
        'sot/precision'] == pytest.approx(1 / 3)


def test_absent_targets_are_not_scored():
    nan = [float('nan')] * 4
    gts = [BOX, nan, BOX, [10., 10., 0., 20.]]
    results = evaluate(samples('a', [BOX, FAR, FAR, FAR], gts=gts))
    # frames 0 and 2 scored, frame 2 lost
    assert results['sot/precision'] == pytest.approx(0.5)
    # a sequence without a scored frame is skipped
    results = evaluate(
        samples('a', [BOX, BOX]) +
        samples('b', [FAR, FAR], gts=[nan, nan]))
    assert results['sot/precision'] == 1.0


def test_incomplete_and_repeated_sequences_are_errors():
    frames = samples('a', [BOX] * 4)
    with pytest.raises(ValueError, match=r"'a'.*missing frames \[2\]"):
        evaluate(frames[:2] + frames[3:])
    with pytest.raises(ValueError, match=r'repeated frames \[1\]'):
        evaluate(frames + frames[1:2])
    with pytest.raises(ValueError, match='lack'):
        OPEMetric().process({}, [dict(sequence='a')])
    with pytest.raises(ValueError, match='average'):
        OPEMetric(average='pooled')


def test_result_files_are_written_and_not_overwritten(tmp_path):
    out = tmp_path / 'tracker'
    preds = [BOX, [11.5, 12.25, 20., 19.]]
    evaluate(samples('seq-1', preds, times=[0.5, 0.25]) +
             samples('seq-2', [BOX]), outfile_prefix=str(out))
    np.testing.assert_allclose(
        np.loadtxt(out / 'seq-1.txt', delimiter=','), preds)
    np.testing.assert_allclose(np.loadtxt(out / 'seq-1_time.txt'),
                               [0.5, 0.25])
    assert (out / 'seq-2.txt').read_text() == '10.000,10.000,20.000,20.000\n'
    assert not (out / 'seq-2_time.txt').exists()
    with pytest.raises(FileExistsError, match='overwrite=True'):
        evaluate(samples('seq-2', [FAR]), outfile_prefix=str(out))
    evaluate(samples('seq-2', [FAR]), outfile_prefix=str(out),
             overwrite=True)
    assert (out / 'seq-2.txt').read_text().startswith('200.000,')


def test_registered_and_known_to_the_analysis_tools():
    assert ROOT_METRICS.get('OPEMetric') is OPEMetric
    cfg = Config(dict(test_evaluator=dict(type='OPEMetric')))
    assert [key for key, _ in task_metrics(cfg)] == [
        'sot/success_auc', 'sot/precision', 'sot/norm_precision'
    ]
    metric = ROOT_METRICS.build(dict(type='OPEMetric'))
    metric.process({}, samples('a', [torch.tensor(BOX)]))
    assert metric.evaluate(1)['sot/success_auc'] == pytest.approx(20 / 21)


def test_unequal_rank_shares_are_gathered_whole(monkeypatch):
    # SequenceSampler gives ranks whole sequences: 4 frames on rank 0, 5 on
    # rank 1; mmengine's collect_results would interleave and cut them
    import mmtpspike.evaluation.metrics.ope_metric as module
    metric = OPEMetric()
    rank1 = OPEMetric()
    metric.process({}, samples('a', [BOX] * 4))
    rank1.process({}, samples('b', [BOX, BOX, FAR, FAR, FAR]))
    monkeypatch.setattr(module, 'all_gather_object',
                        lambda results: [results, rank1.results])
    results = metric.evaluate(9)
    assert results['sot/precision'] == pytest.approx(0.7)
    assert metric.results == []
