"""The event detection demo through tools/train.py and tools/test.py: a
short training of the TP demo detector on the bundled recordings, then the
Prophesee-protocol evaluation of its checkpoint, dense and pruned (slow
tier); the error of a missing event folder (quick)."""
import pytest
import torch

from run_logs import evaluation_metrics, logged_scalars
from tool_runner import call_main, run_tool

DENSE = 'configs/event_det/sdtv3_gen1_demo.py'
PRUNED = 'configs/event_det/sdtv3_tp_gen1_demo.py'
KEYS = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')
ONE_EPOCH = [
    'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
    'default_hooks.checkpoint.interval=1'
]


@pytest.fixture(scope='module')
def pruned_run(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('event_det')
    run_tool('tools/train.py', PRUNED, '--work-dir', str(work_dir),
             '--cfg-options', *ONE_EPOCH)
    return work_dir


@pytest.mark.slow
def test_train_reports_prophesee_metrics_and_keeps_78_percent(pruned_run):
    records = logged_scalars(str(pruned_run))
    train = [r for r in records if 'loss' in r]
    val = [r for r in records if 'prophesee/mAP' in r]
    assert train and all(torch.isfinite(torch.tensor(r['loss']))
                         for r in train)
    assert len(val) == 1
    assert all(-1 <= val[0][f'prophesee/{key}'] <= 1 for key in KEYS)
    assert train[-1]['tokens/keep_stages.2.blocks.0'] == pytest.approx(
        0.78, abs=0.02)


@pytest.mark.slow
@pytest.mark.parametrize('config', [DENSE, PRUNED])
def test_test_tool_prints_the_protocol(pruned_run, tmp_path, config):
    drawing = ['--show-dir', 'vis', '--show-tokens'] if config == PRUNED \
        else []
    out = run_tool('tools/test.py', config, str(pruned_run / 'epoch_1.pth'),
                   '--work-dir', str(tmp_path), *drawing)
    assert ('Prophesee protocol (RVT), camera gen1, evaluation frame '
            '152 x 120 (sensor / 2)') in out
    assert 't > 500000 us, diagonal >= 15 px and sides >= 5 px' in out
    metrics = evaluation_metrics(str(tmp_path))
    assert set(f'prophesee/{key}' for key in KEYS) <= set(metrics)
    if drawing:
        # detections and token maps over the event frames of every sample
        # (78 labelled timestamps of 2 test recordings)
        (vis, ) = tmp_path.glob('*/vis')
        detections = sorted(p.name for p in vis.glob('*.png'))
        tokens = sorted(p.name for p in (vis / 'tokens').glob('*.png'))
        assert len(detections) == len(tokens) == 78
        assert 'demo_test_01_1350000us.png' in detections
        assert detections == tokens


def test_missing_events_folder_is_one_line(tmp_path):
    result = call_main('tools/train.py', DENSE, '--cfg-options',
                       f'train_dataloader.dataset.data_root={tmp_path}/')
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert "Gen1Dataset: no folder" in last and 'train/' in last
