"""Segmentation end to end through tools/train.py and tools/test.py on the
bundled mini ADE20K-format set (CPU, a few iterations)."""
import glob

import pytest

from tool_runner import run_tool

DENSE = 'configs/seg/sdtv3_ade20k_demo.py'
PRUNED = 'configs/seg/sdtv3_tp_ade20k_demo.py'
FEW_ITERS = [
    'train_cfg.max_iters=4', 'train_cfg.val_interval=4',
    'default_hooks.checkpoint.interval=4'
]


@pytest.fixture(scope='module')
def dense_checkpoint(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('dense_seg')
    run_tool('tools/train.py', DENSE, '--work-dir', str(work_dir),
             '--cfg-options', *FEW_ITERS)
    return str(work_dir / 'iter_4.pth')


def test_train_pruned_demo_reports_miou(tmp_path):
    out = run_tool('tools/train.py', PRUNED, '--work-dir', str(tmp_path),
                   '--cfg-options', *FEW_ITERS)
    assert 'mIoU:' in out and 'mAcc:' in out and 'aAcc:' in out
    assert 'tokens/keep_stages.2.blocks.0' in out


@pytest.mark.parametrize('mode_options', [
    [
        'model.data_preprocessor.test_cfg.size_divisor=32',
        'test_dataloader.batch_size=1'
    ],
    [
        'model.test_cfg.mode=slide', 'model.test_cfg.crop_size=(96,96)',
        'model.test_cfg.stride=(64,64)'
    ],
],
                         ids=['whole_padded', 'slide'])
def test_dense_checkpoint_evaluates_pruned(tmp_path, dense_checkpoint,
                                           mode_options):
    out = run_tool('tools/test.py', PRUNED, dense_checkpoint, '--work-dir',
                   str(tmp_path), '--out', str(tmp_path / 'pred'),
                   '--show-dir', 'vis', '--cfg-options',
                   'model.backbone.pruning.keep_ratios=0.78', *mode_options)
    assert 'mIoU:' in out
    assert len(glob.glob(str(tmp_path / 'pred' / '*.png'))) == 8
    assert len(
        glob.glob(str(tmp_path / '**' / 'vis' / '**' / '*.png'),
                  recursive=True)) >= 8
