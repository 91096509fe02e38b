"""Detection end to end through tools/train.py and tools/test.py on the
bundled mini COCO set (CPU, a few iterations)."""
import glob
import os
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmtpspike  # noqa: F401
from tool_runner import run_tool

DENSE = 'configs/det/sdtv3_coco_demo.py'
PRUNED = 'configs/det/sdtv3_tp_coco_demo.py'
ONE_EPOCH = [
    'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
    'default_hooks.checkpoint.interval=1'
]


@pytest.fixture(scope='module')
def dense_checkpoint(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('dense_det')
    run_tool('tools/train.py', DENSE, '--work-dir', str(work_dir),
             '--cfg-options', *ONE_EPOCH)
    return str(work_dir / 'epoch_1.pth')


def test_train_pruned_demo_reports_coco_metrics(tmp_path):
    out = run_tool('tools/train.py', PRUNED, '--work-dir', str(tmp_path),
                   '--cfg-options', *ONE_EPOCH)
    assert 'coco/bbox_mAP:' in out and 'coco/segm_mAP:' in out
    assert 'tokens/keep_stages.2.blocks.0' in out
    assert (tmp_path / 'epoch_1.pth').is_file()


def test_dense_checkpoint_evaluates_pruned(tmp_path, dense_checkpoint):
    out = run_tool('tools/test.py', PRUNED, dense_checkpoint, '--work-dir',
                   str(tmp_path), '--out', str(tmp_path / 'r.pkl'),
                   '--show-dir', 'vis', '--show-tokens', '--cfg-options',
                   'model.backbone.pruning.keep_ratios=0.56')
    assert 'coco/bbox_mAP:' in out and 'coco/segm_mAP:' in out
    assert 'tokens/keep_mean: 0.56' in out
    assert (tmp_path / 'r.pkl').is_file()
    drawn = glob.glob(str(tmp_path / '*' / 'vis' / '*.jpg'))
    tokens = glob.glob(str(tmp_path / '*' / 'vis' / 'tokens' / '*.png'))
    assert len(drawn) == 8 and len(tokens) == 8


def test_resume_training(tmp_path, dense_checkpoint):
    import shutil
    shutil.copy(dense_checkpoint, tmp_path / 'epoch_1.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_1.pth'))
    out = run_tool('tools/train.py', DENSE, '--work-dir', str(tmp_path),
                   '--resume', '--cfg-options', 'train_cfg.max_epochs=2',
                   'train_cfg.val_interval=2',
                   'default_hooks.checkpoint.interval=1')
    assert 'resumed epoch: 1' in out
    assert (tmp_path / 'epoch_2.pth').is_file()


def test_missing_data_root_one_line(repo_root):
    result = subprocess.run([
        sys.executable, 'tools/train.py', PRUNED, '--cfg-options',
        'train_dataloader.dataset.data_root=data/nowhere/'
    ],
                            cwd=repo_root,
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert result.returncode == 1
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
