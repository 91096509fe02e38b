"""Segmentation end to end through tools/train.py and tools/test.py on the
bundled mini ADE20K-format set (CPU): a briefly trained dense demo
segmentor, evaluated dense, at keep 1.0 and pruned: all in the slow tier
(``-m slow``)."""
import glob
import os

import pytest

from run_logs import evaluation_metrics, logged_scalars
from tool_runner import run_tool

pytestmark = pytest.mark.slow

DENSE = 'configs/seg/sdtv3_ade20k_demo.py'
PRUNED = 'configs/seg/sdtv3_tp_ade20k_demo.py'
METRICS = ('mIoU', 'mAcc', 'aAcc')
# A short version of the demo schedule (1000 iterations, poly decay)
ITERS = 400
SHORT_SCHEDULE = [
    f'train_cfg.max_iters={ITERS}', f'train_cfg.val_interval={ITERS}',
    f'default_hooks.checkpoint.interval={ITERS}',
    f'param_scheduler.1.end={ITERS}'
]
FEW_ITERS = [
    'train_cfg.max_iters=4', 'train_cfg.val_interval=4',
    'default_hooks.checkpoint.interval=4', 'default_hooks.logger.interval=1'
]
# see test_pruned_demo_stays_near_dense
DENSE_FLOOR = 20.0
MAX_DROP = 8.0


@pytest.fixture(scope='module')
def dense_checkpoint(tmp_path_factory):
    """The dense demo segmentor after the short schedule."""
    work_dir = tmp_path_factory.mktemp('dense_seg')
    run_tool('tools/train.py', DENSE, '--work-dir', str(work_dir),
             '--cfg-options', *SHORT_SCHEDULE)
    return str(work_dir / f'iter_{ITERS}.pth')


def evaluate(tmp_path_factory, name, config, checkpoint, *args):
    """Run tools/test.py writing label PNGs; return its work dir and
    metrics."""
    work_dir = tmp_path_factory.mktemp(name)
    run_tool('tools/test.py', config, checkpoint, '--work-dir', str(work_dir),
             '--out', str(work_dir / 'pred'), *args)
    return work_dir, evaluation_metrics(str(work_dir))


def label_maps(work_dir):
    """``{file name: PNG bytes}`` of the predicted label maps."""
    paths = sorted(glob.glob(os.path.join(work_dir, 'pred', '*.png')))
    return {os.path.basename(p): open(p, 'rb').read() for p in paths}


@pytest.fixture(scope='module')
def dense_eval(tmp_path_factory, dense_checkpoint):
    return evaluate(tmp_path_factory, 'eval_dense', DENSE, dense_checkpoint)


def test_keep_one_reproduces_dense_exactly(tmp_path_factory,
                                           dense_checkpoint, dense_eval):
    """The TP config at keep 1.0 predicts the dense config's label maps
    byte for byte, hence the same mIoU / mAcc / aAcc."""
    dense_dir, dense = dense_eval
    keep_one_dir, keep_one = evaluate(
        tmp_path_factory, 'eval_keep_one', PRUNED, dense_checkpoint,
        '--cfg-options', 'model.backbone.pruning.keep_ratios=1.0')
    assert {key: keep_one[key] for key in METRICS} == \
        {key: dense[key] for key in METRICS}
    expected = label_maps(dense_dir)
    assert len(expected) == 8
    assert label_maps(keep_one_dir) == expected


def test_pruned_demo_stays_near_dense(tmp_path_factory, dense_checkpoint,
                                      dense_eval):
    """Training-free pruning at the TP config's 56 % loses at most MAX_DROP
    mIoU points, and the dense model clears DENSE_FLOOR mIoU.

    Measured on 2 CPU cores on the textured demo set (after issue 23, two
    runs alike): after this 400-iteration schedule the dense model reached
    47.6 mIoU (aAcc 89.7), pruned at 56 % 43.0; at 78 % in the modes of
    test_dense_checkpoint_evaluates_pruned, padded whole image 41.8 against
    dense 47.3, sliding window 36.4 against dense 41.0. A model that
    predicts only background scores 15.4 mIoU there (77 % of the labelled
    validation pixels are background, the four region classes score 0), so
    the floor shows that it learned the regions. The bound is loose for the
    same reason as in the detection test: it guards against pruning
    breaking the model, not against a change of scorer."""
    _, dense = dense_eval
    _, pruned = evaluate(tmp_path_factory, 'eval_pruned', PRUNED,
                         dense_checkpoint)
    assert dense['mIoU'] >= DENSE_FLOOR
    assert pruned['mIoU'] >= dense['mIoU'] - MAX_DROP, (dense, pruned)


def test_train_pruned_demo_reports_miou(tmp_path):
    run_tool('tools/train.py', PRUNED, '--work-dir', str(tmp_path),
             '--cfg-options', *FEW_ITERS)
    records = logged_scalars(str(tmp_path))
    val = [r for r in records if 'mIoU' in r]
    assert len(val) == 1
    assert all(0 <= val[0][key] <= 100 for key in METRICS)
    train = [r for r in records if 'loss' in r]
    assert train[-1]['tokens/keep_stages.2.blocks.0'] == pytest.approx(
        0.56, abs=0.02)


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
def test_dense_checkpoint_evaluates_pruned(tmp_path_factory,
                                           dense_checkpoint, mode_options):
    """Padded whole-image and sliding-window inference with pruning at
    78 %: every image gets a label map and the mIoU stays near the dense
    model's in the same inference mode (sliding 96 x 96 crops changes the
    dense mIoU itself: comparing against whole-image dense would charge
    the crops' loss to pruning)."""
    _, dense = evaluate(tmp_path_factory, 'eval_mode_dense', DENSE,
                        dense_checkpoint, '--cfg-options', *mode_options)
    work_dir, pruned = evaluate(
        tmp_path_factory, 'eval_mode', PRUNED, dense_checkpoint,
        '--show-dir', 'vis', '--cfg-options',
        'model.backbone.pruning.keep_ratios=0.78', *mode_options)
    assert pruned['mIoU'] >= dense['mIoU'] - MAX_DROP, (dense, pruned)
    assert len(label_maps(work_dir)) == 8
    assert len(
        glob.glob(str(work_dir / '**' / 'vis' / '**' / '*.png'),
                  recursive=True)) >= 8
