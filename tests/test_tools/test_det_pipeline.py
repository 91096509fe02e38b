"""Detection end to end through tools/train.py and tools/test.py on the
bundled mini COCO sets (CPU): a briefly trained dense demo detector, evaluated
dense, at keep 1.0 and pruned.

The trained-model checks run on the tinted set (``data/mini_coco``): within
the 16 epochs a test can afford, the detector learns its bright shapes
(measured below), while on the textured demo set it reaches only 0.05 bbox
mAP (0.25 after the demo's 36 epochs), too little for a bound on pruning to
mean anything. The one-epoch training test runs the demo config as it is.
The trainings and evaluations are the slow tier (``-m slow``).
"""
import glob
import os
import pickle
import shutil

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmtpspike  # noqa: F401
from run_logs import evaluation_metrics, logged_scalars
from tool_runner import call_main, run_tool

DENSE = 'configs/det/sdtv3_coco_demo.py'
PRUNED = 'configs/det/sdtv3_tp_coco_demo.py'
METRICS = ('coco/bbox_mAP', 'coco/segm_mAP')
BOUNDED = ('coco/bbox_mAP_50', 'coco/segm_mAP_50')
# A short version of the demo schedule (36 epochs, steps at 27 and 33):
# EPOCHS epochs with the LR steps at STEPS, from a fixed seed (see
# test_pruned_demo_stays_near_dense).
EPOCHS = 16
STEPS = [12, 15]
SHORT_SCHEDULE = [
    'randomness.seed=0',
    f'train_cfg.max_epochs={EPOCHS}', f'train_cfg.val_interval={EPOCHS}',
    f'default_hooks.checkpoint.interval={EPOCHS}',
    f'param_scheduler.1.end={EPOCHS}', f'param_scheduler.1.milestones={STEPS}'
]
TINTED = 'data/mini_coco/'
ON_TINTED = [
    f'{loader}.dataset.data_root={TINTED}'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')
] + [
    f'{evaluator}.ann_file={TINTED}annotations/instances_val.json'
    for evaluator in ('val_evaluator', 'test_evaluator')
]
ONE_EPOCH = [
    'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
    'default_hooks.checkpoint.interval=1'
]
# see test_pruned_demo_stays_near_dense
DENSE_FLOOR = 0.05
PRUNED_FRACTION = 0.5


@pytest.fixture(scope='module')
def dense_checkpoint(tmp_path_factory):
    """The dense demo detector after the short schedule."""
    work_dir = tmp_path_factory.mktemp('dense_det')
    run_tool('tools/train.py', DENSE, '--work-dir', str(work_dir),
             '--cfg-options', *SHORT_SCHEDULE, *ON_TINTED)
    return str(work_dir / f'epoch_{EPOCHS}.pth')


def evaluate(tmp_path_factory, name, config, checkpoint, *args, options=()):
    """Run tools/test.py on the tinted set; return its work dir and COCO
    metrics."""
    work_dir = tmp_path_factory.mktemp(name)
    run_tool('tools/test.py', config, checkpoint, '--work-dir', str(work_dir),
             '--out', str(work_dir / 'results.pkl'), *args, '--cfg-options',
             *ON_TINTED, *options)
    return work_dir, evaluation_metrics(str(work_dir))


@pytest.fixture(scope='module')
def dense_eval(tmp_path_factory, dense_checkpoint):
    return evaluate(tmp_path_factory, 'eval_dense', DENSE, dense_checkpoint)


@pytest.fixture(scope='module')
def pruned_eval(tmp_path_factory, dense_checkpoint):
    """The dense checkpoint evaluated training-free with the TP config (78 %
    retention), drawing predictions and kept-token maps."""
    return evaluate(tmp_path_factory, 'eval_pruned', PRUNED,
                    dense_checkpoint, '--show-dir', 'vis', '--show-tokens')


def load_predictions(work_dir):
    with open(os.path.join(work_dir, 'results.pkl'), 'rb') as file:
        return sorted(pickle.load(file), key=lambda sample: sample['img_id'])


@pytest.mark.slow
def test_keep_one_reproduces_dense_exactly(tmp_path_factory,
                                           dense_checkpoint, dense_eval):
    """The TP config at keep 1.0 gives the dense config's boxes, scores,
    labels and masks bit for bit, hence the same COCO metrics."""
    dense_dir, dense = dense_eval
    keep_one_dir, keep_one = evaluate(
        tmp_path_factory, 'eval_keep_one', PRUNED, dense_checkpoint,
        options=['model.backbone.pruning.keep_ratios=1.0'])
    coco = [key for key in dense if key.startswith('coco/')]
    assert {key: keep_one[key] for key in coco} == \
        {key: dense[key] for key in coco}
    expected, got = load_predictions(dense_dir), load_predictions(keep_one_dir)
    assert [s['img_id'] for s in got] == [s['img_id'] for s in expected]
    assert sum(len(s['pred_instances']['scores']) for s in expected) > 0
    for want, have in zip(expected, got):
        want, have = want['pred_instances'], have['pred_instances']
        for key in ('bboxes', 'scores', 'labels'):
            assert torch.equal(have[key], want[key]), key
        assert have['masks'] == want['masks']


@pytest.mark.slow
def test_pruned_demo_stays_near_dense(dense_eval, pruned_eval):
    """Training-free pruning at 78 % keeps at least PRUNED_FRACTION of the
    dense bbox and segm mAP@0.5, and the dense model clears DENSE_FLOOR.

    The short schedule starts from seed 0, so a run is repeatable on one
    stack and thread count (multi-threaded CPU training is not
    bit-reproducible across thread counts). Measured on the 2-core CI
    machine (2 threads): dense bbox / segm mAP@0.5 0.204 / 0.287, pruned at
    78 % 0.257 / 0.259; on the classic stack 0.154 / 0.154 and 0.156 /
    0.153. With one thread, seeds 0-2 gave 0.22-0.38 (default stack) and
    0.15-0.33 (classic); a run without a fixed seed once reached only 0.013,
    which is why the seed is fixed. An untrained model scores 0.0, so the
    floor shows that the detector learned to find the shapes
    and the relative bound is not vacuous. mAP@0.5 rather than mAP because
    it moves less between runs of a briefly trained detector on 8
    validation images; the bound is relative for the same reason, and loose
    because this test guards against pruning breaking the model (no mAP
    left, e.g. a wrong token scattered back), not against a change of
    scorer."""
    _, dense = dense_eval
    _, pruned = pruned_eval
    for key in BOUNDED:
        assert dense[key] >= DENSE_FLOOR, (key, dense[key])
        assert pruned[key] >= PRUNED_FRACTION * dense[key], \
            (key, dense[key], pruned[key])


@pytest.mark.slow
def test_pruned_evaluation_draws_and_keeps_78_percent(pruned_eval):
    work_dir, _ = pruned_eval
    stats = logged_scalars(str(work_dir))[-1]
    assert stats['test/tokens/keep_mean'] == pytest.approx(0.78, abs=0.01)
    drawn = glob.glob(str(work_dir / '*' / 'vis' / '*.jpg'))
    tokens = glob.glob(str(work_dir / '*' / 'vis' / 'tokens' / '*.png'))
    assert len(drawn) == 8 and len(tokens) == 8
    assert len(load_predictions(work_dir)) == 8


@pytest.mark.slow
def test_train_pruned_demo_reports_coco_metrics(tmp_path):
    run_tool('tools/train.py', PRUNED, '--work-dir', str(tmp_path),
             '--cfg-options', *ONE_EPOCH)
    records = logged_scalars(str(tmp_path))
    train = [r for r in records if 'loss' in r]
    val = [r for r in records if 'coco/bbox_mAP' in r]
    assert train and all(torch.isfinite(torch.tensor(r['loss']))
                         for r in train)
    assert len(val) == 1
    assert all(0 <= val[0][key] <= 1 for key in METRICS)
    assert train[-1]['tokens/keep_stages.2.blocks.0'] == pytest.approx(
        0.78, abs=0.02)
    assert (tmp_path / 'epoch_1.pth').is_file()


@pytest.mark.slow
def test_resume_training(tmp_path, dense_checkpoint):
    resumed = tmp_path / f'epoch_{EPOCHS}.pth'
    shutil.copy(dense_checkpoint, resumed)
    (tmp_path / 'last_checkpoint').write_text(str(resumed))
    out = run_tool('tools/train.py', DENSE, '--work-dir', str(tmp_path),
                   '--resume', '--cfg-options', *SHORT_SCHEDULE, *ON_TINTED,
                   f'train_cfg.max_epochs={EPOCHS + 1}',
                   f'train_cfg.val_interval={EPOCHS + 1}',
                   'default_hooks.checkpoint.interval=1')
    assert f'resumed epoch: {EPOCHS}' in out
    assert (tmp_path / f'epoch_{EPOCHS + 1}.pth').is_file()


def test_missing_data_root_one_line():
    result = call_main('tools/train.py', PRUNED, '--cfg-options',
                       'train_dataloader.dataset.data_root=data/nowhere/')
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(
        "error: data root 'data/nowhere/'")


def test_empty_and_tiny_annotations_train(repo_root):
    from mmdet.registry import DATASETS, MODELS
    from mmengine.dataset import pseudo_collate
    init_default_scope('mmdet')
    cfg = Config.fromfile(os.path.join(repo_root, PRUNED))
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.data_root = os.path.join(repo_root, dataset_cfg.data_root)
    dataset_cfg.ann_file = 'annotations/instances_val.json'
    dataset_cfg.data_prefix = dict(img='val/')
    dataset_cfg.filter_cfg = dict(filter_empty_gt=False)
    dataset = DATASETS.build(dataset_cfg)
    items = [dataset[i] for i in range(len(dataset))]
    empty = [x for x in items if len(x['data_samples'].gt_instances) == 0]
    boxes = [x['data_samples'].gt_instances.bboxes.tensor for x in items]
    tiny = [
        x for x, b in zip(items, boxes)
        if len(b) and ((b[:, 2:] - b[:, :2]).min(1).values < 12).any()
    ]
    assert empty and tiny
    detector = MODELS.build(cfg.model).train()
    data = detector.data_preprocessor(pseudo_collate([empty[0], tiny[0]]),
                                      True)
    losses = detector.loss(data['inputs'], data['data_samples'])
    total, _ = detector.parse_losses(losses)
    assert torch.isfinite(total)
    total.backward()
