"""The event tracking demo through the tools (slow tier): a short training
of the TP demo tracker on the bundled sequences, tools/test.py with OPE and
per-sequence result files, the picture strip and the pruning report on its
checkpoint; the error of an empty data root (quick)."""
import numpy as np
import pytest
import torch

from run_logs import evaluation_metrics, logged_scalars
from tool_runner import call_main, run_tool

DENSE = 'configs/event_sot/sdtv3_sot_demo.py'
PRUNED = 'configs/event_sot/sdtv3_tp_sot_demo.py'
KEYS = ('sot/success_auc', 'sot/precision', 'sot/norm_precision')
SHORT = [
    'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
    'default_hooks.checkpoint.interval=1',
    'train_dataloader.dataset.samples_per_epoch=32'
]


@pytest.fixture(scope='module')
def pruned_run(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('event_sot')
    run_tool('tools/train.py', PRUNED, '--work-dir', str(work_dir),
             '--cfg-options', *SHORT)
    return work_dir


@pytest.mark.slow
def test_train_reports_ope(pruned_run):
    records = logged_scalars(str(pruned_run))
    train = [r for r in records if 'loss' in r]
    val = [r for r in records if 'sot/success_auc' in r]
    assert train and all(torch.isfinite(torch.tensor(r['loss']))
                         for r in train)
    assert len(val) == 1 and all(0 <= val[0][key] <= 1 for key in KEYS)


@pytest.mark.slow
@pytest.mark.parametrize('config', [DENSE, PRUNED])
def test_test_tool_writes_sequence_results(pruned_run, tmp_path, config):
    results = tmp_path / 'results'
    out = run_tool('tools/test.py', config, str(pruned_run / 'epoch_1.pth'),
                   '--work-dir', str(tmp_path), '--cfg-options',
                   f'test_evaluator.outfile_prefix={results}')
    assert 'OPE over 4 of 4 sequences, 240 of 240 frames scored' in out
    assert set(KEYS) <= set(evaluation_metrics(str(tmp_path)))
    files = sorted(p.name for p in results.glob('*.txt'))
    assert files == [f'demo_test_0{i}.txt' for i in range(4)]
    boxes = np.loadtxt(results / 'demo_test_00.txt', delimiter=',')
    assert boxes.shape == (60, 4) and (boxes[:, 2:] > 0).all()


@pytest.mark.slow
def test_strip_and_report_on_the_checkpoint(pruned_run, tmp_path):
    checkpoint = str(pruned_run / 'epoch_1.pth')
    strip = tmp_path / 'strip.png'
    out = run_tool('tools/analysis/visualize_tracking.py', DENSE, checkpoint,
                   '--num-frames', '3', '--variants', 'random', '--out',
                   str(strip))
    assert 'dense: success AUC' in out and 'random 0.56: success AUC' in out
    assert strip.stat().st_size > 0
    table = tmp_path / 'table.md'
    run_tool('tools/analysis/tracking_report.py', DENSE, '--work-dir',
             str(tmp_path / 'report'), '--checkpoint', checkpoint,
             '--variants', 'candidate elimination', '--keep', '0.56',
             '--out', str(table))
    rows = [line.split(' | ') for line in table.read_text().splitlines()
            if line.startswith('| dense') or
            line.startswith('| candidate')]
    assert len(rows) == 2
    # realised search keep, template stopped
    assert rows[0][5:7] == ['1.00', '0 %']
    assert rows[1][5:7] == ['0.56', '0 %']


def test_empty_data_root_is_one_line(tmp_path):
    (tmp_path / 'train').mkdir()
    result = call_main('tools/train.py', DENSE, '--work-dir',
                       str(tmp_path / 'work'), '--cfg-options',
                       f'train_dataloader.dataset.data_root={tmp_path}/')
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert 'EventSOTDataset: no fe108 sequence' in last
