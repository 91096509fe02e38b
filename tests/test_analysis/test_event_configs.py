"""The analysis tools on an event config: inputs are the samples of its
test set, through its own pipeline (untrained model, BN statistics set from
those samples)."""
import csv
import json

import cv2
import pytest
import torch

from mmtpspike.analysis import model_io
from mmtpspike.analysis.object_tokens import instance_masks, size_group
from mmtpspike.analysis.task_metrics import task_metrics
from mmtpspike.utils.config import SetupError, load_config
from tool_runner import call_main

EVENT_DEMO = 'configs/event_det/sdtv3_tp_gen1_demo.py'
#: the demo's padded input (120 x 152 representation, padded to 32)
PADDED_SHAPE = (128, 160)


@pytest.fixture(scope='module')
def event_test_set():
    """The demo config's test dataset, with its own pipeline."""
    from mmengine.registry import DATASETS, init_default_scope
    init_default_scope('mmdet')
    return DATASETS.build(
        model_io.test_dataset_cfg(load_config(EVENT_DEMO)))


def test_complexity_counts_event_samples(tmp_path):
    out = tmp_path / 'report.json'
    result = call_main('tools/analysis/complexity.py', EVENT_DEMO, '--keep',
                       '1.0', '0.56', '--num-images', '2', '--out', str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report['shape'] == [120, 152]  # Gen1 downsampled by 2
    assert report['images'] == ['demo_test_00_100000us',
                                'demo_test_00_150000us']
    dense, pruned = report['settings']
    assert dense['gsops'] > 0
    assert pruned['backbone_gmacs'] < dense['backbone_gmacs']
    assert 'zero-padded' not in result.stdout + result.stderr
    assert '2 event sample(s)' in result.stdout
    assert 'the encoding conv reads event counts' in result.stdout


def test_energy_depends_on_the_event_samples(tmp_path, event_test_set):
    result = call_main('tools/analysis/energy.py', EVENT_DEMO,
                       '--num-images', '2', '--keep', '1.0',
                       '--out-dir', str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert 'input: event frames' in result.stdout
    summary = json.loads((tmp_path / 'summary.json').read_text())
    assert summary['input'] == 'event sample(s)'
    assert summary['images'] == ['demo_test_00_100000us',
                                 'demo_test_00_150000us']
    total = summary['settings'][0]['total']
    # two windows with different events fire differently
    assert total['gsops']['std'] > 0
    # event counts are integer spikes: the encoding conv counts SOPs
    assert total['mac_layer_gmacs']['mean'] == 0
    assert summary['timesteps'] == 4
    with open(tmp_path / 'layers.csv') as file:
        encoding = next(csv.DictReader(file))
    assert encoding['layer'].endswith('encode_conv')
    assert encoding['kind'] == 'AC'
    # its input firing rate is the events per padded input neuron
    rates = torch.tensor([
        float(event_test_set[i]['inputs'].sum()) /
        (4 * 2 * PADDED_SHAPE[0] * PADDED_SHAPE[1]) for i in range(2)])
    assert rates.min() > 0 and rates[0] != rates[1]
    assert float(encoding['firing_rate_mean']) == pytest.approx(
        float(rates.mean()), rel=1e-5)
    assert float(encoding['firing_rate_std']) == pytest.approx(
        float(rates.std(unbiased=False)), rel=1e-4)


def test_token_maps_are_drawn_over_event_frames(tmp_path):
    result = call_main('tools/analysis/visualize_tokens.py', EVENT_DEMO,
                       'none', '--num-images', '1', '--out-dir',
                       str(tmp_path))
    assert result.returncode == 0, result.stderr
    grid = cv2.imread(str(tmp_path / 'demo_test_00_100000us_tokens.png'))
    # 8 blocks of 152-pixel tiles; the first tile of the top row is the
    # event picture with stopped tokens tinted: mostly white background,
    # and event pixels, red (ON) or blue (OFF)
    assert grid.shape[1] == 8 * 152
    tile = grid[20:130, :152].reshape(-1, 3).astype(int)
    assert (tile == 255).all(1).mean() > 0.2
    assert ((tile[:, 2] > 200) & (tile[:, 0] < 80)).any()


@pytest.mark.parametrize('tool, args', [
    ('tools/analysis/complexity.py', ['--images', 'x.jpg']),
    ('tools/analysis/visualize_tokens.py', ['none', 'x.jpg', '--out-dir',
                                            'unused']),
])
def test_image_arguments_are_refused_for_event_configs(tool, args):
    result = call_main(tool, EVENT_DEMO, *args)
    assert result.returncode == 1
    assert 'samples of its test set' in result.stderr


def test_event_boxes_are_masked_at_the_representation_scale(
        event_test_set):
    sample = event_test_set[0]['data_samples']
    boxes = sample.gt_instances.bboxes.tensor
    info = event_test_set.get_data_info(0)
    # the boxes stay in sensor pixels; the masks follow scale_factor (0.5)
    assert torch.allclose(boxes, torch.tensor(
        [instance['bbox'] for instance in info['instances']]))
    masks, areas = instance_masks(sample, PADDED_SHAPE)
    for mask, (x1, y1, x2, y2) in zip(masks, boxes.tolist()):
        rows, cols = mask.nonzero(as_tuple=True)
        assert (int(rows.min()), int(cols.min())) == (int(y1 / 2),
                                                      int(x1 / 2))
        assert (int(rows.max()), int(cols.max())) == (int(y2 / 2),
                                                      int(x2 / 2))
    assert areas == pytest.approx([(x2 - x1) * (y2 - y1)
                                   for x1, y1, x2, y2 in boxes.tolist()])


def test_object_shares_come_from_the_event_boxes(tmp_path, event_test_set):
    out = tmp_path / 'shares.json'
    result = call_main('tools/analysis/object_tokens.py', EVENT_DEMO, 'none',
                       '--num-images', '3', '--out', str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    expected = {}
    for index in range(3):
        for instance in event_test_set.get_data_info(index)['instances']:
            x1, y1, x2, y2 = instance['bbox']
            group = size_group((x2 - x1) * (y2 - y1))
            expected[group] = expected.get(group, 0) + 1
    found = {group: n for group, n in report['objects'].items() if n}
    assert expected and found == expected
    for shares in report['shares'].values():
        for group in expected:
            assert 0 <= shares[group] <= 1


@pytest.mark.parametrize('config, main_metric', [
    (EVENT_DEMO, 'prophesee/mAP'),
    ('configs/det/sdtv3_coco_demo.py', 'coco/bbox_mAP'),
    ('configs/seg/sdtv3_ade20k_demo.py', 'mIoU'),
])
def test_task_metrics_follow_the_test_evaluator(config, main_metric):
    assert task_metrics(load_config(config))[0][0] == main_metric


def test_unknown_evaluators_are_named():
    cfg = load_config(EVENT_DEMO)
    cfg.test_evaluator = [dict(type='VOCMetric')]
    with pytest.raises(SetupError, match='VOCMetric'):
        task_metrics(cfg)


def test_sweep_scores_event_configs_by_the_prophesee_protocol(tmp_path):
    out = tmp_path / 'sweep.json'
    # samples 9 and 10 lie after the first 0.5 s, where boxes are scored
    result = call_main('tools/analysis/sweep.py', EVENT_DEMO, 'none',
                       '--num-images', '10', '--out', str(out),
                       '--cfg-options', f'work_dir={tmp_path}')
    assert result.returncode == 0, result.stderr
    assert '| w_s | w_t | k | keep | prophesee/mAP |' in result.stdout
    row, = json.loads(out.read_text())['rows']
    assert 0 <= row['prophesee/mAP'] <= 1


def test_pruning_report_tabulates_prophesee_metrics(tmp_path):
    from mmtpspike.analysis.model_io import build_model
    model, _ = build_model('configs/event_det/sdtv3_gen1_demo.py',
                           with_pruning=False)
    checkpoint = tmp_path / 'dense.pth'
    torch.save(dict(state_dict=model.state_dict()), checkpoint)
    rows_file = tmp_path / 'rows.json'
    result = call_main('tools/analysis/pruning_report.py',
                       'configs/event_det/sdtv3_gen1_demo.py', '--work-dir',
                       tmp_path / 'report', '--checkpoint', checkpoint,
                       '--variants', 'random', '--keep', '0.56',
                       '--diagnostic-images', '2', '--json', rows_file)
    assert result.returncode == 0, result.stderr
    assert '| mAP (Prophesee) | AP50 (Prophesee) |' in result.stdout
    assert 'the encoding conv reads event counts' in result.stdout
    dense, pruned = json.loads(rows_file.read_text())
    assert 0 <= dense['prophesee/mAP_50'] <= 1
    # the demo's boxes are all medium-sized: shares there, none for large
    assert 0 <= pruned['medium'] <= 1 and pruned['large'] != pruned['large']
    assert pruned['gmacs'] < dense['gmacs']
