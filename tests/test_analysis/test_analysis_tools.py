"""tools/analysis: complexity, benchmark and token visualiser end to end."""
import csv
import json

import cv2
import mmcv
import numpy as np
import pytest

from tool_runner import call_main, run_tool

DET_DEMO = 'configs/det/sdtv3_tp_coco_demo.py'
SEG_DEMO = 'configs/seg/sdtv3_tp_ade20k_demo.py'
IMAGE = 'data/mini_coco_textured/val/000003.jpg'


def test_complexity_tool_json(tmp_path):
    out = tmp_path / 'report.json'
    stdout = run_tool('tools/analysis/complexity.py', DET_DEMO, '--shape',
                      '64', '96', '--keep', '1.0', '0.5', '--out', str(out))
    assert 'GSOPs' in stdout and 'realised keep ratio per block' in stdout
    report = json.loads(out.read_text())
    dense, pruned = report['settings']
    assert pruned['backbone_gmacs'] < dense['backbone_gmacs']
    assert pruned['scorer_gmacs'] > 0 == dense['scorer_gmacs']
    assert all(abs(v - 0.5) < 0.1 for v in pruned['realised_keep'].values())
    assert report['num_images'] == 2


def test_benchmark_tool_runs_on_tiny_model(tmp_path):
    table = tmp_path / 'bench.csv'
    stdout = run_tool('tools/analysis/benchmark.py', SEG_DEMO, '--shape', '64',
                      '64', '--repeats', '2', '--warmup', '1', '--keep',
                      '0.5', '--csv', str(table))
    assert 'ideal speed-up' in stdout
    rows = list(csv.DictReader(table.open()))
    assert [float(r['keep']) for r in rows] == [1.0, 0.5]
    assert float(rows[0]['speedup']) == 1.0
    assert float(rows[1]['gmacs']) < float(rows[0]['gmacs'])


def _table_rows(stdout: str, first_cell: str):
    return [[cell.strip() for cell in line.strip('|').split('|')]
            for line in stdout.splitlines()
            if line.startswith(f'| {first_cell}')]


@pytest.mark.parametrize('mode', ['inference', 'train'])
def test_speed_profile_compares_config_with_its_dense_self(mode):
    stdout = run_tool('tools/analysis/speed_profile.py',
                      'configs/det/sdtv3_tp_fast_coco_demo.py', '--shape',
                      '64', '96', '--with-neck', '--repeats', '1', '--mode',
                      mode, '--batch', '1')
    (dense, ), (pruned, ) = (_table_rows(stdout, name)
                             for name in ('dense', 'pruned'))
    assert dense[3] == '1.00x'
    # GMACs: the fast config skips work in the transformer stages
    assert float(pruned[2]) < float(dense[2])
    stages = [row[0] for row in _table_rows(stdout, 'st')]
    assert stages == ['stage', 'stem', 'stages.0', 'stages.1', 'stages.2',
                      'stages.3']  # the header, then one row per stage
    (stem, ) = _table_rows(stdout, 'stem')
    assert stem[-1] == '1.00x'  # the fast config leaves the conv stages
    assert _table_rows(stdout, 'neck')


@pytest.mark.slow  # two backbones profiled end to end
def test_speed_profile_breaks_down_tile_stopping():
    """--conv-keep / --conv-tile stop tiles in the conv stages; the
    breakdown shows the pruned stem's gathers, which the dense one has
    not."""
    result = call_main('tools/analysis/speed_profile.py',
                       'configs/det/sdtv3_tp_fast_coco_demo.py', '--shape',
                       '64', '96', '--repeats', '1', '--conv-keep', '0.5',
                       '--conv-tile', '4', '--breakdown')
    assert result.returncode == 0, result.stderr
    assert 'conv_tile=4' in result.stdout
    (stem, ) = [row for row in _table_rows(result.stdout, 'stem |')
                if len(row) == 7]
    assert float(stem[-1].rstrip('x')) > 1.3  # the stem's ideal
    rows = {(row[0].rstrip(' *'), row[1]): row[2:]
            for row in _table_rows(result.stdout, 'st')
            if len(row) == 4}
    dense_ms, pruned_ms = map(float, rows[('stem', 'gathers')])
    assert dense_ms == 0 and pruned_ms > 0
    assert float(rows[('stages.0', 'convs')][0]) > 0


def test_speed_profile_names_a_conv_tile_without_conv_keep():
    result = call_main('tools/analysis/speed_profile.py',
                       'configs/det/sdtv3_tp_fast_coco_demo.py',
                       '--conv-tile', '4')
    assert result.returncode == 1
    assert 'conv_keep_ratios is unset' in result.stderr


def test_speed_profile_refuses_a_dense_config():
    result = call_main('tools/analysis/speed_profile.py',
                       'configs/det/sdtv3_coco_demo.py')
    assert result.returncode == 1, result.stderr
    assert 'has no model.backbone.pruning' in result.stderr


def _tile(image, max_side=320):
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    return round(height * scale), round(width * scale)


def test_visualiser_writes_pngs_of_expected_size(repo_root, tmp_path):
    run_tool('tools/analysis/visualize_tokens.py', DET_DEMO, 'none', IMAGE,
             '--out-dir', str(tmp_path), '--keep', '0.5')
    drawn = cv2.imread(str(tmp_path / '000003_tokens.png'))
    assert drawn is not None
    image = mmcv.imrescale(mmcv.imread(f'{repo_root}/{IMAGE}'), (384, 256))
    height, width = _tile(image)
    num_blocks = 8
    assert drawn.shape == (2 * (height + 18), num_blocks * width, 3)
    assert not np.all(drawn == drawn[0, 0])


def test_pruning_report_rows(tmp_path):
    """One variant at one keep ratio, from given weights: the table has the
    dense row and the variant's, with cost and object-share columns."""
    import torch

    from mmtpspike.analysis.model_io import build_model
    model, _ = build_model('configs/seg/sdtv3_ade20k_demo.py',
                           with_pruning=False)
    checkpoint = str(tmp_path / 'dense.pth')
    torch.save(dict(state_dict=model.state_dict()), checkpoint)
    rows_file = tmp_path / 'rows.json'
    stdout = run_tool('tools/analysis/pruning_report.py',
                      'configs/seg/sdtv3_ade20k_demo.py', '--work-dir',
                      str(tmp_path / 'report'), '--checkpoint', checkpoint,
                      '--variants', 'ToMe merge', '--keep', '0.5',
                      '--diagnostic-images', '1', '--json', str(rows_file))
    assert '| ToMe merge | 0.50 | training-free |' in stdout
    dense, merged = json.loads(rows_file.read_text())
    assert dense['variant'] == 'dense' and dense['realised_keep'] == 1.0
    assert abs(merged['realised_keep'] - 0.5) < 0.05
    assert merged['gmacs'] < dense['gmacs']
    assert set(dense) >= {'mIoU', 'gsops', 'energy_mj', 'small', 'background'}


@pytest.mark.parametrize('variant', ['every speed option',
                                     'IRToP + conv tiles 8',
                                     'IRToP, MLP on all tokens',
                                     'IRToP (paper)'])
def test_pruning_report_finetune_ramps_every_ratio_of_a_variant(variant):
    """A fine-tune starts every ratio the variant sets at 1.0 and schedules
    it to the variant's value (RetentionScheduleHook refuses a schedule that
    leaves conv_keep_ratios / mlp_keep_ratios alone)."""
    from argparse import Namespace

    from mmtpspike.engine.hooks import RetentionScheduleHook
    from mmtpspike.models.pruning import PruningConfig
    from tool_runner import load_tool
    report = load_tool('tools/analysis/pruning_report.py')
    args = Namespace(config='configs/det/sdtv3_coco_demo.py',
                     finetune_options=None, work_dir='unused',
                     finetune_ramp=24)
    pruning = report.pruning_settings(variant, 0.56)
    cfg = report.finetune_config(args, 'dense.pth', 'v', pruning)
    start = cfg.model.backbone.pruning
    hook = dict(cfg.custom_hooks[-1])
    assert hook.pop('type') == 'RetentionScheduleHook'
    assert hook['target'] == 0.56 and start['keep_ratios'] == 1.0
    schedule = RetentionScheduleHook(**hook)
    schedule._check_matches(PruningConfig.from_dict(start))
    for field in ('mlp_keep_ratios', 'conv_keep_ratios'):
        if field in pruning:
            assert start[field] == 1.0
            assert schedule.ratios_at(24, field) == pruning[field]
    assert start.get('conv_tile') == pruning.get('conv_tile')
